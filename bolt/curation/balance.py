"""Re-balance the topic mix (BOLT §3.1: topics assigned by an LLM, mix re-balanced).

Deterministic: within a topic, queries keep their incoming order (which the stage
makes a seeded shuffle), so the same seed keeps the same queries.
"""

from __future__ import annotations

import math
from collections import Counter

from bolt.config import BalanceMode
from bolt.records import Query

UNTAGGED = "untagged"


def topic_counts(queries: list[Query]) -> dict[str, int]:
    return dict(sorted(Counter(q.topic or UNTAGGED for q in queries).items()))


def balance(
    queries: list[Query],
    mode: BalanceMode,
    *,
    cap: int | None = None,
    shares: dict[str, float] | None = None,
    total: int | None = None,
) -> list[Query]:
    """Keep at most ``cap`` per topic (caps), or ``share x total`` per topic (shares)."""
    match mode:
        case BalanceMode.none:
            limits = None
        case BalanceMode.caps:
            limits = {t: cap for t in topic_counts(queries)} if cap else None
        case BalanceMode.shares:
            limits = share_limits(shares or {}, total or len(queries))
    if limits is None:
        return queries
    taken: Counter[str] = Counter()
    kept = []
    for query in queries:
        topic = query.topic or UNTAGGED
        if taken[topic] < limits.get(topic, 0):
            taken[topic] += 1
            kept.append(query)
    return kept


def share_limits(shares: dict[str, float], total: int) -> dict[str, int]:
    """Per-topic limits from target shares (normalised to sum to 1); floors, at least 1."""
    weight = sum(shares.values())
    if weight <= 0:
        raise ValueError("data.topic_shares must contain a positive share")
    return {t: max(1, math.floor(total * s / weight)) for t, s in shares.items()}
