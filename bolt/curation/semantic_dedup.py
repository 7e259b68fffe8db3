"""Semantic near-duplicate removal: the minimum-neighbour distance of Magpie.

Magpie (Xu et al., 2024, arXiv 2406.08464) embeds every generated instruction and
measures its distance to its nearest neighbour; instructions that sit on top of another
are repeats in different words, which MinHash (``bolt.curation.dedup``, surface copies
only) does not see. Here, in the incoming order (the stage's seeded shuffle, after
MinHash), a query is kept unless its nearest *kept* query lies within ``min_distance``
in cosine distance (1 - cosine similarity of unit embeddings); a dropped query names
that neighbour. Deterministic for given embeddings; blocked matrix products keep it at
O(n x kept) dot products without an index.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bolt.records import Query

BLOCK = 1024


@dataclass
class SemanticDedupResult:
    kept: list[Query] = field(default_factory=list)
    # (dropped query, kept neighbour's id, cosine distance to it)
    duplicates: list[tuple[Query, str, float]] = field(default_factory=list)


def nearest_kept(embeddings: np.ndarray, min_distance: float) -> list[tuple[int, float] | None]:
    """For each row in order: None when kept, else (kept neighbour's row, distance).

    Rows must be unit length. A row is compared with the rows kept before it only, so
    the first of a group of near-identical rows is the one kept.
    """
    n = len(embeddings)
    out: list[tuple[int, float] | None] = [None] * n
    kept_rows: list[int] = []
    max_similarity = 1.0 - min_distance
    x = np.asarray(embeddings, dtype=np.float32)
    for start in range(0, n, BLOCK):
        block = x[start : start + BLOCK]
        # Similarities to everything kept before this block, and within the block.
        before = block @ x[kept_rows].T if kept_rows else np.zeros((len(block), 0), np.float32)
        within = block @ block.T
        kept_in_block: list[int] = []
        for j in range(len(block)):
            best_row, best_sim = -1, -np.inf
            if before.shape[1]:
                k = int(np.argmax(before[j]))
                best_row, best_sim = kept_rows[k], float(before[j, k])
            if kept_in_block:
                sims = within[j, kept_in_block]
                k = int(np.argmax(sims))
                if float(sims[k]) > best_sim:
                    best_row, best_sim = start + kept_in_block[k], float(sims[k])
            if best_row >= 0 and best_sim >= max_similarity:
                out[start + j] = (best_row, max(0.0, 1.0 - best_sim))
            else:
                kept_in_block.append(j)
        kept_rows += [start + j for j in kept_in_block]
    return out


def semantic_deduplicate(
    queries: list[Query], embeddings: np.ndarray, min_distance: float
) -> SemanticDedupResult:
    """Keep the queries no kept query is within ``min_distance`` of (see module doc)."""
    if len(queries) != len(embeddings):
        raise ValueError(f"{len(queries)} queries but {len(embeddings)} embeddings")
    result = SemanticDedupResult()
    for query, near in zip(queries, nearest_kept(embeddings, min_distance), strict=True):
        if near is None:
            result.kept.append(query)
        else:
            row, distance = near
            result.duplicates.append((query, queries[row].id, round(distance, 6)))
    return result
