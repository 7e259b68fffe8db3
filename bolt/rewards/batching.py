"""Token sequences in batches, for the reward models that run one forward pass per batch.

Batches are cut by length (:func:`length_sorted_batches`; ``bench/reward_batching.py``
measures what that saves over input order), and each row is padded so that it scores
as it would alone: on the right for a classifier head that finds each sequence's last
token by the pad id, on the left for a causal LM whose next-token position must be the
last of every row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

TokenIds = list[int]


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Item indices in batches of similar length: sort by length, then cut.

    Padding every sequence of a batch to its longest is what batching costs; grouping
    similar lengths keeps that waste small on long-tailed length distributions like
    the bootstrapped answers'. Longest first, so an out-of-memory batch fails at once
    rather than at the end. The sort is stable, so equal lengths keep their order.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


def input_order_batches(n_items: int, batch_size: int) -> list[list[int]]:
    """Item indices in batches as they come (the naive batching the benchmark compares)."""
    return [
        list(range(start, min(start + batch_size, n_items)))
        for start in range(0, n_items, batch_size)
    ]


def score_in_batches(
    sequences: Sequence[TokenIds],
    batches: Sequence[list[int]],
    score_batch: Callable[[list[TokenIds]], list[float]],
) -> list[float]:
    """``score_batch`` of each batch of ``sequences`` (indices), put back in input order."""
    values = [0.0] * len(sequences)
    for batch in batches:
        scores = score_batch([sequences[i] for i in batch])
        for index, value in zip(batch, scores, strict=True):
            values[index] = value
    return values


def padded(sequences: Sequence[TokenIds], pad_id: int, *, left: bool) -> tuple[Any, Any]:
    """The rows as one ``input_ids`` tensor padded with ``pad_id``, and its attention mask."""
    import torch

    width = max(len(ids) for ids in sequences)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, ids in enumerate(sequences):
        columns = slice(width - len(ids), width) if left else slice(0, len(ids))
        input_ids[row, columns] = torch.tensor(ids)
        attention_mask[row, columns] = 1
    return input_ids, attention_mask
