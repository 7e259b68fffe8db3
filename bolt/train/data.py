"""SFT data as the trainer sees it: chat-templated tokens, assistant-only labels, packing.

Pure functions on token lists, tested on hand-built rows. Loss is taken on assistant
tokens only (BOLT §3.2 fine-tunes on the LongCoT answer, not on the query): every
other token's label is ``IGNORE_INDEX``. Packing concatenates examples into rows of at
most ``max_length`` tokens and restarts ``position_ids`` at 0 for each example; with no
attention mask, transformers derives a block-diagonal causal mask from those position
ids (``masking_utils.find_packed_sequence_indices``, for sdpa/eager; flash-attention
reads them as varlen boundaries), so no token attends across examples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

IGNORE_INDEX = -100


class ChatTokenizer(Protocol):
    """The part of a HF tokenizer these functions use."""

    def apply_chat_template(self, conversation: list[dict], **kwargs: Any) -> Any: ...

    def __call__(self, text: str, **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class TokenizedExample:
    input_ids: list[int]
    labels: list[int]
    truncated: bool = False

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def trained_tokens(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE_INDEX)


def assistant_char_spans(
    tokenizer: ChatTokenizer, messages: list[dict[str, str]]
) -> tuple[str, list[tuple[int, int]]]:
    """The templated text and the character span of each assistant turn in it.

    Each span runs from the end of the generation prompt that precedes the turn to the
    end of the turn as the template renders it (end-of-turn token included, so the
    model learns to stop). Works for any template that renders a conversation's
    prefix as a prefix of the whole, which is what generation relies on too.
    """
    render = lambda msgs, gen: tokenizer.apply_chat_template(
        msgs, tokenize=False, add_generation_prompt=gen
    )
    text = render(messages, False)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before, through = render(messages[:i], True), render(messages[: i + 1], False)
        if not (text.startswith(before) and text.startswith(through)):
            raise ValueError(
                "the chat template does not render a conversation's prefix as a prefix of "
                "the whole conversation; assistant tokens cannot be located"
            )
        spans.append((len(before), len(through)))
    return text, spans


def tokenize_with_labels(
    tokenizer: ChatTokenizer, messages: list[dict[str, str]], max_length: int
) -> TokenizedExample:
    """Chat-template ``messages``; labels are the token ids inside assistant turns and
    ``IGNORE_INDEX`` elsewhere; truncated to ``max_length`` tokens."""
    text, spans = assistant_char_spans(tokenizer, messages)
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = encoded["input_ids"], encoded["offset_mapping"]
    labels = [
        token if any(lo <= start < hi for lo, hi in spans) else IGNORE_INDEX
        for token, (start, _end) in zip(ids, offsets, strict=True)
    ]
    truncated = len(ids) > max_length
    return TokenizedExample(ids[:max_length], labels[:max_length], truncated)


def pack_by_best_fit(lengths: Sequence[int], max_length: int) -> list[list[int]]:
    """Indices of examples grouped into bins of at most ``max_length`` tokens.

    Best-fit decreasing: longest first, each into the fullest bin that still has room.
    Deterministic (ties keep input order), so every rank computes the same bins.
    """
    if any(n > max_length for n in lengths):
        raise ValueError(f"an example is longer than max_length={max_length}; truncate first")
    bins: list[list[int]] = []
    room: list[int] = []
    for index in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        fitting = [b for b in range(len(bins)) if room[b] >= lengths[index]]
        if fitting:
            best = min(fitting, key=lambda b: room[b])
            bins[best].append(index)
            room[best] -= lengths[index]
        else:
            bins.append([index])
            room.append(max_length - lengths[index])
    return bins


def packed_row(examples: Sequence[TokenizedExample]) -> dict[str, list[int]]:
    """Concatenate examples into one row; position ids restart at each example.

    The first label of every example is ignored: after the model's shift it would be
    the target of the previous example's last token, a prediction across examples.
    """
    row: dict[str, list[int]] = {"input_ids": [], "labels": [], "position_ids": []}
    for example in examples:
        row["input_ids"] += example.input_ids
        row["labels"] += [IGNORE_INDEX, *example.labels[1:]]
        row["position_ids"] += list(range(len(example)))
    return row


def pack_examples(examples: Sequence[TokenizedExample], max_length: int) -> list[dict]:
    bins = pack_by_best_fit([len(e) for e in examples], max_length)
    return [packed_row([examples[i] for i in indices]) for indices in bins]


def collate_packed(rows: Sequence[dict[str, list[int]]], pad_token_id: int) -> dict[str, Any]:
    """A micro-batch of packed rows, [rows, longest]: each row keeps its own attention
    blocks (rows are not flattened into one: on sdpa the mask is dense, so one long row
    would cost (rows x length)^2 attention instead of rows x length^2).

    No attention mask on purpose: the position ids carry the example boundaries. The
    few pad tokens that even out the rows form a block of their own with no loss.
    """
    import torch

    longest = max(len(row["input_ids"]) for row in rows)
    pad = lambda row: longest - len(row["input_ids"])
    return {
        "input_ids": torch.tensor([r["input_ids"] + [pad_token_id] * pad(r) for r in rows]),
        "labels": torch.tensor([r["labels"] + [IGNORE_INDEX] * pad(r) for r in rows]),
        "position_ids": torch.tensor([r["position_ids"] + list(range(pad(r))) for r in rows]),
    }


def collate_padded(rows: Sequence[dict[str, list[int]]], pad_token_id: int) -> dict[str, Any]:
    """A micro-batch padded (right) to its longest row, with an attention mask."""
    import torch

    longest = max(len(row["input_ids"]) for row in rows)
    pad = lambda values, fill: values + [fill] * (longest - len(values))
    return {
        "input_ids": torch.tensor([pad(r["input_ids"], pad_token_id) for r in rows]),
        "labels": torch.tensor([pad(r["labels"], IGNORE_INDEX) for r in rows]),
        "attention_mask": torch.tensor([pad([1] * len(r["input_ids"]), 0) for r in rows]),
    }


def trained_tokens(batch: dict[str, Any]) -> int:
    """Tokens that carry loss in a collated batch."""
    return int((batch["labels"] != IGNORE_INDEX).sum())


def input_tokens(rows: Sequence[dict[str, list[int]]]) -> int:
    """Non-pad tokens of a micro-batch (what tokens/s counts), from its rows."""
    return sum(len(row["input_ids"]) for row in rows)
