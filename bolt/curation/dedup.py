"""Exact and near-duplicate removal of queries (MinHash + LSH).

Public instruction sets repeat themselves heavily (ShareGPT especially); duplicates
would be bootstrapped and trained on several times. Exact duplicates are equal after
``normalize_text``; near duplicates have an estimated Jaccard similarity of word
3-gram shingles above the threshold. The first occurrence is kept, deterministically.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bolt.curation.sources import normalize_text
from bolt.records import Query

SHINGLE_WORDS = 3


@dataclass
class DedupResult:
    kept: list[Query] = field(default_factory=list)
    exact_duplicates: list[tuple[Query, str]] = field(default_factory=list)  # (dropped, kept id)
    near_duplicates: list[tuple[Query, str]] = field(default_factory=list)


def shingles(text: str, size: int = SHINGLE_WORDS) -> set[str]:
    words = normalize_text(text).split()
    if len(words) <= size:
        return {" ".join(words)}
    return {" ".join(words[i : i + size]) for i in range(len(words) - size + 1)}


def deduplicate(queries: list[Query], threshold: float, num_perm: int = 128) -> DedupResult:
    from datasketch import MinHash, MinHashLSH

    result = DedupResult()
    seen_exact: dict[str, str] = {}
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    for query in queries:
        key = normalize_text(query.text)
        if key in seen_exact:
            result.exact_duplicates.append((query, seen_exact[key]))
            continue
        seen_exact[key] = query.id
        signature = MinHash(num_perm=num_perm, seed=1)
        for shingle in shingles(query.text):
            signature.update(shingle.encode("utf-8"))
        similar = lsh.query(signature)
        if similar:
            result.near_duplicates.append((query, min(similar)))
            continue
        lsh.insert(query.id, signature)
        result.kept.append(query)
    return result
