"""GRPO samples as the trainer sees them: chat-templated tokens with completion-only
labels, the per-token log-probs of the sampling policy and the reference (computed once
per job, before training), and the collation of a batch.

The log-probs are taken from the stored samples, not from the engine that sampled them
(vLLM's log-probs differ from the trainer's numerics); the job computes them with the
initial policy and the reference model before the trainer starts, one model in memory
at a time, so a relaunched job computes the same numbers again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bolt.records import GroupSample
from bolt.train.data import ChatTokenizer, tokenize_with_labels
from bolt.train.preference_data import batched, collate_sequences


@dataclass(frozen=True)
class TokenizedSample:
    input_ids: list[int]
    labels: list[int]
    advantage: float
    truncated: bool


def tokenize_sample(
    tokenizer: ChatTokenizer, sample: GroupSample, max_length: int
) -> TokenizedSample:
    messages = [m.model_dump() for m in sample.prompt]
    messages.append({"role": "assistant", "content": sample.completion})
    example = tokenize_with_labels(tokenizer, messages, max_length)
    return TokenizedSample(example.input_ids, example.labels, sample.advantage, example.truncated)


def sample_token_logps(
    model, samples: Sequence[TokenizedSample], pad_token_id: int, batch_size: int
) -> list[list[float]]:
    """Per-token log-probs of every sample under ``model`` (``len(ids) - 1`` each, 0
    outside the completion), without gradients."""
    import torch

    from bolt.train.grpo_loss import per_token_logps

    model.eval()
    device = next(model.parameters()).device
    out: list[list[float]] = []
    with torch.no_grad():
        for chunk in batched(samples, batch_size):
            batch = collate_sequences([(s.input_ids, s.labels) for s in chunk], pad_token_id)
            batch = {k: v.to(device) for k, v in batch.items()}
            logits = model(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
            ).logits
            logps, _ = per_token_logps(logits, batch["labels"], batch["loss_mask"])
            for sample, row in zip(chunk, logps.float().cpu().tolist(), strict=True):
                out.append(row[: len(sample.input_ids) - 1])
    return out


def dataset_rows(
    samples: Sequence[TokenizedSample],
    old_logps: Sequence[list[float]],
    ref_logps: Sequence[list[float]] | None,
) -> list[dict[str, Any]]:
    """Training rows: tokens, advantage, and the sampling policy's and reference's log-probs."""
    refs = ref_logps if ref_logps is not None else [[] for _ in samples]
    return [
        {
            "input_ids": s.input_ids,
            "labels": s.labels,
            "advantage": s.advantage,
            "old_logps": old,
            "ref_logps": ref,
        }
        for s, old, ref in zip(samples, old_logps, refs, strict=True)
    ]


def make_collator(pad_token_id: int):
    """Right-padded batches with ``advantages`` and the log-probs padded to ``seq - 1``."""
    import torch

    def pad(rows: list[list[float]], width: int) -> torch.Tensor:
        out = torch.zeros((len(rows), width), dtype=torch.float32)
        for i, row in enumerate(rows):
            out[i, : len(row)] = torch.tensor(row, dtype=torch.float32)
        return out

    def collate(rows: list[dict[str, Any]]) -> dict[str, Any]:
        batch = collate_sequences([(r["input_ids"], r["labels"]) for r in rows], pad_token_id)
        width = batch["input_ids"].shape[1] - 1
        batch["advantages"] = torch.tensor([r["advantage"] for r in rows], dtype=torch.float32)
        batch["old_logps"] = pad([r["old_logps"] for r in rows], width)
        if rows[0]["ref_logps"]:
            batch["ref_logps"] = pad([r["ref_logps"] for r in rows], width)
        return batch

    return collate
