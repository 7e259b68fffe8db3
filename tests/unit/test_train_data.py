"""SFT data on hand-built rows: assistant-only labels, packing, padding, and the proof
that a packed row attends within examples only (its loss equals the separate losses)."""

from __future__ import annotations

import pytest

from bolt.train.data import (
    IGNORE_INDEX,
    TokenizedExample,
    assistant_char_spans,
    collate_packed,
    collate_padded,
    input_tokens,
    pack_by_best_fit,
    pack_examples,
    packed_row,
    tokenize_with_labels,
    trained_tokens,
)

CONVERSATIONS = [
    [
        {"role": "user", "content": "What is 2+2?"},
        {
            "role": "assistant",
            "content": "<thoughts>\nadd\n</thoughts>\n\n<response>\n4\n</response>",
        },
    ],
    [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Name a colour."},
        {
            "role": "assistant",
            "content": "<thoughts>\npick one\n</thoughts>\n\n<response>\nBlue.\n</response>",
        },
        {"role": "user", "content": "Another?"},
        {"role": "assistant", "content": "Red."},
    ],
    [
        {"role": "user", "content": "Write a haiku about rain on a tin roof at night."},
        {
            "role": "assistant",
            "content": "Drops drum the tin roof / night listens, counting softly / sleep comes in the rain",
        },
    ],
]


@pytest.fixture(scope="module")
def tokenizer(smollm2_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smollm2_path)


@pytest.fixture(scope="module")
def model(smollm2_path):
    import torch
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(1)
    m = AutoModelForCausalLM.from_pretrained(
        smollm2_path, dtype=torch.float32, attn_implementation="sdpa"
    )
    m.config.use_cache = False
    return m.eval()


def test_only_assistant_tokens_carry_labels(tokenizer):
    example = tokenize_with_labels(tokenizer, CONVERSATIONS[1], max_length=4096)
    trained = tokenizer.decode([t for t in example.labels if t != IGNORE_INDEX])
    assert "Blue." in trained and "Red." in trained and "<thoughts>" in trained
    assert (
        "Be brief" not in trained and "Name a colour" not in trained and "Another?" not in trained
    )
    assert "<|im_end|>" in trained  # the end of turn is learned, so the model stops
    assert all(
        label in (token, IGNORE_INDEX) for token, label in zip(example.input_ids, example.labels)
    )


def test_spans_cover_exactly_the_assistant_turns(tokenizer):
    text, spans = assistant_char_spans(tokenizer, CONVERSATIONS[0])
    assert len(spans) == 1
    start, end = spans[0]
    assert text[start:end].startswith("<thoughts>") and "</response>" in text[start:end]


def test_truncation_is_flagged(tokenizer):
    example = tokenize_with_labels(tokenizer, CONVERSATIONS[2], max_length=16)
    assert len(example) == 16 and example.truncated


def test_best_fit_packs_within_the_limit_and_keeps_every_example():
    lengths = [7, 3, 5, 2, 9, 4, 1]
    bins = pack_by_best_fit(lengths, max_length=10)
    assert sorted(i for b in bins for i in b) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in b) <= 10 for b in bins)
    assert len(bins) == 4  # 31 tokens need at least 4 bins of 10
    with pytest.raises(ValueError, match="max_length"):
        pack_by_best_fit([11], max_length=10)


def test_packed_row_restarts_positions_and_ignores_each_first_label():
    a = TokenizedExample([1, 2, 3], [IGNORE_INDEX, 2, 3])
    b = TokenizedExample([4, 5], [4, 5])
    row = packed_row([a, b])
    assert row["input_ids"] == [1, 2, 3, 4, 5]
    assert row["position_ids"] == [0, 1, 2, 0, 1]
    assert row["labels"] == [IGNORE_INDEX, 2, 3, IGNORE_INDEX, 5]


def test_collators():
    rows = [
        packed_row([TokenizedExample([1, 2], [1, 2]), TokenizedExample([5], [5])]),
        packed_row([TokenizedExample([3], [3])]),
    ]
    packed = collate_packed(rows, pad_token_id=0)
    assert packed["input_ids"].tolist() == [[1, 2, 5], [3, 0, 0]]
    assert packed["position_ids"].tolist() == [[0, 1, 0], [0, 0, 1]]  # pads: a block of their own
    assert packed["labels"].tolist() == [[IGNORE_INDEX, 2, IGNORE_INDEX], [IGNORE_INDEX] * 3]
    assert "attention_mask" not in packed and input_tokens(rows) == 4
    plain = [{"input_ids": [1, 2], "labels": [1, 2]}, {"input_ids": [3], "labels": [3]}]
    padded = collate_padded(plain, 0)
    assert padded["input_ids"].tolist() == [[1, 2], [3, 0]]
    assert padded["labels"].tolist() == [[1, 2], [3, IGNORE_INDEX]]
    assert padded["attention_mask"].tolist() == [[1, 1], [1, 0]]
    assert input_tokens(plain) == 3 and trained_tokens(padded) == 3


def _summed_loss(model, batch) -> tuple[float, int]:
    """Sum of token losses and the token count (the model's loss is their mean)."""
    import torch

    with torch.no_grad():
        loss = model(**batch).loss.item()
    count = int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
    return loss * count, count


def test_packed_loss_equals_separate_losses(tokenizer, model):
    """No attention across examples: the packed row gives each token the same loss as the
    example alone (sdpa on CPU, block-diagonal mask derived from the position ids)."""
    import torch

    examples = [tokenize_with_labels(tokenizer, c, max_length=512) for c in CONVERSATIONS]
    separate = [
        _summed_loss(
            model,
            {
                "input_ids": torch.tensor([e.input_ids]),
                "labels": torch.tensor([[IGNORE_INDEX, *e.labels[1:]]]),
            },
        )
        for e in examples
    ]
    # Two packed rows of different lengths: the shorter one is evened out with pads.
    packed = pack_examples(examples, max_length=len(examples[0]) + len(examples[1]))
    assert len(packed) == 2
    batch = collate_packed(packed, pad_token_id=tokenizer.pad_token_id)
    packed_sum, packed_count = _summed_loss(model, batch)
    assert packed_count == sum(c for _, c in separate)
    assert packed_sum / packed_count == pytest.approx(
        sum(s for s, _ in separate) / packed_count, rel=1e-4
    )
    # Control: the same rows without restarted positions attend across examples.
    leaky = dict(batch)
    leaky["position_ids"] = torch.arange(batch["input_ids"].shape[1]).expand_as(batch["input_ids"])
    leaky_sum, _ = _summed_loss(model, leaky)
    assert abs(leaky_sum - packed_sum) / packed_sum > 1e-3
