"""Tokenized DPO pairs and their cached reference log-probs (BOLT §3.3).

The reference model is scored once per iteration, in its own pass, and its sequence
log-probs are stored beside the pairs: the DPO trainer then holds only the policy in
memory (the reference costs one forward per pair once, not one per step and epoch).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from bolt.records import PreferencePair, Record
from bolt.train.data import IGNORE_INDEX, ChatTokenizer, tokenize_with_labels


@dataclass(frozen=True)
class TokenizedPair:
    """One pair as two chat-templated sequences; labels are IGNORE_INDEX outside the reply."""

    chosen_ids: list[int]
    chosen_labels: list[int]
    rejected_ids: list[int]
    rejected_labels: list[int]
    truncated: bool


def tokenize_pair(tokenizer: ChatTokenizer, pair: PreferencePair, max_length: int) -> TokenizedPair:
    prompt = [m.model_dump() for m in pair.prompt]
    chosen = tokenize_with_labels(
        tokenizer, [*prompt, {"role": "assistant", "content": pair.chosen}], max_length
    )
    rejected = tokenize_with_labels(
        tokenizer, [*prompt, {"role": "assistant", "content": pair.rejected}], max_length
    )
    return TokenizedPair(
        chosen.input_ids,
        chosen.labels,
        rejected.input_ids,
        rejected.labels,
        chosen.truncated or rejected.truncated,
    )


def collate_sequences(
    sequences: Sequence[tuple[list[int], list[int]]], pad_token_id: int
) -> dict[str, object]:
    """Right-padded ``input_ids``, ``attention_mask``, ``labels`` and ``loss_mask``."""
    import torch

    longest = max(len(ids) for ids, _ in sequences)
    input_ids = torch.full((len(sequences), longest), pad_token_id, dtype=torch.long)
    labels = torch.full((len(sequences), longest), IGNORE_INDEX, dtype=torch.long)
    attention = torch.zeros((len(sequences), longest), dtype=torch.long)
    for row, (ids, row_labels) in enumerate(sequences):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, : len(ids)] = torch.tensor(row_labels)
        attention[row, : len(ids)] = 1
    return {
        "input_ids": input_ids,
        "attention_mask": attention,
        "labels": labels,
        "loss_mask": labels != IGNORE_INDEX,
    }


def collate_pairs(pairs: Sequence[TokenizedPair], pad_token_id: int) -> dict[str, object]:
    """Chosen rows first, then rejected rows, in one batch: one forward scores both."""
    return collate_sequences(
        [(p.chosen_ids, p.chosen_labels) for p in pairs]
        + [(p.rejected_ids, p.rejected_labels) for p in pairs],
        pad_token_id,
    )


def batched(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def reference_logps(
    model, pairs: Sequence[TokenizedPair], pad_token_id: int, batch_size: int
) -> list[tuple[float, float]]:
    """(chosen, rejected) sequence log-probs of every pair under ``model``, no gradients."""
    import torch

    from bolt.train.dpo_loss import sequence_logps

    model.eval()
    device = next(model.parameters()).device
    out: list[tuple[float, float]] = []
    with torch.no_grad():
        for chunk in batched(pairs, batch_size):
            batch = {k: v.to(device) for k, v in collate_pairs(chunk, pad_token_id).items()}
            logits = model(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
            ).logits
            logps = sequence_logps(logits, batch["labels"], batch["loss_mask"])
            chosen, rejected = logps[: len(chunk)].float(), logps[len(chunk) :].float()
            out += list(zip(chosen.cpu().tolist(), rejected.cpu().tolist(), strict=True))
    return out


class ReferenceLogps(Record):
    """The reference model's sequence log-probs of one pair, stored once per iteration."""

    prompt_id: str
    chosen_logp: float
    rejected_logp: float


class ReferenceMismatch(ValueError):
    """The reference log-probs do not cover the pairs one for one."""


def _duplicates(ids: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    return sorted({i for i in ids if i in seen or seen.add(i)})


def _few(ids: Sequence[str], shown: int = 10) -> str:
    more = f" (+{len(ids) - shown} more)" if len(ids) > shown else ""
    return ", ".join(ids[:shown]) + more


def join_reference(
    pairs: Sequence[PreferencePair],
    refs: Sequence[ReferenceLogps],
    pairs_fp: str,
    reference_fp: str,
) -> list[ReferenceLogps]:
    """Each pair's reference log-probs, joined by ``prompt_id`` (never by position), in
    the pairs' order; a duplicate, missing or extra id is a ReferenceMismatch naming
    both manifests and the ids."""
    where = f"pairs online-pairs/{pairs_fp} and reference log-probs online-reference/{reference_fp}"
    pair_ids, ref_ids = [p.prompt_id for p in pairs], [r.prompt_id for r in refs]
    problems = []
    if dup := _duplicates(pair_ids):
        problems.append(f"duplicate pair ids: {_few(dup)}")
    if dup := _duplicates(ref_ids):
        problems.append(f"duplicate reference ids: {_few(dup)}")
    if missing := sorted(set(pair_ids) - set(ref_ids)):
        problems.append(f"pairs without reference log-probs: {_few(missing)}")
    if extra := sorted(set(ref_ids) - set(pair_ids)):
        problems.append(f"reference log-probs of no pair: {_few(extra)}")
    if problems:
        raise ReferenceMismatch(f"{where} do not match: " + "; ".join(problems))
    by_id = {r.prompt_id: r for r in refs}
    return [by_id[i] for i in pair_ids]
