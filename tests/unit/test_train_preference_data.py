"""Cached reference log-probs: shapes, alignment with the pairs, and that a DPO loss on
cached values equals the loss with the reference computed in the same pass."""

from __future__ import annotations

import pytest
import torch

from bolt.train.data import IGNORE_INDEX
from bolt.train.dpo_loss import dpo_loss, sequence_logps
from bolt.train.preference_data import (
    TokenizedPair,
    collate_pairs,
    collate_sequences,
    reference_logps,
)


def tiny_model():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=32,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
    )
    return LlamaForCausalLM(config)


def pair(prompt: list[int], chosen: list[int], rejected: list[int]) -> TokenizedPair:
    ignore = [IGNORE_INDEX] * len(prompt)
    return TokenizedPair(
        prompt + chosen, ignore + chosen, prompt + rejected, ignore + rejected, False
    )


PAIRS = [pair([1, 2, 3], [4, 5], [6]), pair([7], [8, 9, 10, 11], [12, 13])]


def test_collate_puts_chosen_rows_first_and_masks_only_replies():
    batch = collate_pairs(PAIRS, pad_token_id=0)
    assert batch["input_ids"].shape == (4, 5)
    assert batch["input_ids"][0].tolist() == [1, 2, 3, 4, 5]
    assert batch["input_ids"][2].tolist() == [1, 2, 3, 6, 0]
    assert batch["loss_mask"][0].tolist() == [False, False, False, True, True]
    assert batch["attention_mask"][3].tolist() == [1, 1, 1, 0, 0]


def test_collate_sequences_pads_to_longest():
    batch = collate_sequences([([5], [5]), ([1, 2, 3], [IGNORE_INDEX, 2, 3])], pad_token_id=9)
    assert batch["input_ids"].tolist() == [[5, 9, 9], [1, 2, 3]]
    assert batch["labels"][0].tolist() == [5, IGNORE_INDEX, IGNORE_INDEX]


@pytest.mark.parametrize("batch_size", [1, 2])
def test_reference_logps_one_pair_per_entry_and_independent_of_batching(batch_size):
    model = tiny_model()
    cached = reference_logps(model, PAIRS, pad_token_id=0, batch_size=batch_size)
    alone = [reference_logps(model, [p], pad_token_id=0, batch_size=1)[0] for p in PAIRS]
    assert len(cached) == len(PAIRS)
    for (c, r), (c1, r1) in zip(cached, alone, strict=True):
        assert c == pytest.approx(c1, abs=1e-5) and r == pytest.approx(r1, abs=1e-5)
        assert c < 0 and r < 0


def test_loss_on_cached_reference_equals_loss_on_the_fly():
    reference, policy = tiny_model(), tiny_model()
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(0.05 * torch.randn_like(p))
    cached = torch.tensor(reference_logps(reference, PAIRS, pad_token_id=0, batch_size=2))
    batch = collate_pairs(PAIRS, pad_token_id=0)
    policy_logps = sequence_logps(
        policy(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits,
        batch["labels"],
        batch["loss_mask"],
    )
    with torch.no_grad():
        ref_logps = sequence_logps(
            reference(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits,
            batch["labels"],
            batch["loss_mask"],
        )
    on_the_fly = dpo_loss(policy_logps[:2], policy_logps[2:], ref_logps[:2], ref_logps[2:])
    from_cache = dpo_loss(policy_logps[:2], policy_logps[2:], cached[:, 0], cached[:, 1])
    assert torch.allclose(on_the_fly.losses, from_cache.losses, atol=1e-5)


def _pair(prompt_id: str):
    from bolt.records import Message, PreferencePair

    return PreferencePair(
        prompt_id=prompt_id,
        prompt=[Message(role="user", content="q")],
        chosen="a",
        rejected="b",
        chosen_reward=1.0,
        rejected_reward=0.0,
        iteration=1,
    )


def _ref(prompt_id: str, logp: float = -1.0):
    from bolt.train.preference_data import ReferenceLogps

    return ReferenceLogps(prompt_id=prompt_id, chosen_logp=logp, rejected_logp=logp - 1)


def test_reference_logps_are_joined_to_pairs_by_id_not_position():
    from bolt.train.preference_data import join_reference

    pairs = [_pair("p1"), _pair("p2"), _pair("p3")]
    refs = [_ref("p3", -3.0), _ref("p1", -1.0), _ref("p2", -2.0)]  # stored in another order
    joined = join_reference(pairs, refs, "pairsfp", "reffp")
    assert [(r.prompt_id, r.chosen_logp) for r in joined] == [
        ("p1", -1.0),
        ("p2", -2.0),
        ("p3", -3.0),
    ]


@pytest.mark.parametrize(
    ("pair_ids", "ref_ids", "problem"),
    [
        (["p1", "p2"], ["p1"], "pairs without reference log-probs: p2"),
        (["p1"], ["p1", "p9"], "reference log-probs of no pair: p9"),
        (["p1", "p1"], ["p1"], "duplicate pair ids: p1"),
        (["p1", "p2"], ["p1", "p2", "p2"], "duplicate reference ids: p2"),
    ],
)
def test_a_mismatch_names_both_manifests_and_the_ids(pair_ids, ref_ids, problem):
    from bolt.train.preference_data import ReferenceMismatch, join_reference

    with pytest.raises(ReferenceMismatch) as raised:
        join_reference([_pair(i) for i in pair_ids], [_ref(i) for i in ref_ids], "aaaa", "bbbb")
    message = str(raised.value)
    assert "online-pairs/aaaa" in message and "online-reference/bbbb" in message
    assert problem in message
