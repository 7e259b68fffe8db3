"""Scoring a batch of answers with a stage's reward backends: the one path the filter
(BOLT §3.1) and the online loop (§3.3) share, and what of it enters their fingerprints."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bolt.config import ModelEntry, RewardBackend, RewardKind, output_value
from bolt.rewards.base import CountedScores, CountingReward, RewardItem, RewardModel, combine

Rewards = Mapping[str, tuple[RewardModel, float]]
# The key of a backend's count in a stage manifest's counts: ``reward.<backend>.<count>``.
COUNT_PREFIX = "reward"


@dataclass(frozen=True)
class ScoredBatch:
    """A batch scored by every backend: the scores, their weighted combination, the
    items some backend could give no verdict (index -> ``<backend>: <reason>``), and
    the backends' counts of this batch (``reward.<backend>.<count>``)."""

    by_backend: dict[str, list[float]]
    combined: list[float]
    unscored: dict[int, str]
    counts: dict[str, int]


def score_batch(items: Sequence[RewardItem], rewards: Rewards) -> ScoredBatch:
    """Every item scored by every backend; a counting backend's reasons and counts kept."""
    by_backend: dict[str, list[float]] = {}
    unscored: dict[int, list[str]] = {}
    counts: Counter[str] = Counter()
    for name, (model, _) in rewards.items():
        batch = _scored(model, list(items))
        by_backend[name] = batch.scores
        for index, reason in batch.unscored.items():
            unscored.setdefault(index, []).append(f"{name}: {reason}")
        counts.update({f"{COUNT_PREFIX}.{name}.{k}": v for k, v in batch.counts.items()})
    combined = combine(by_backend, {name: weight for name, (_, weight) in rewards.items()})
    return ScoredBatch(
        by_backend, combined, {i: "; ".join(r) for i, r in unscored.items()}, dict(counts)
    )


def _scored(model: RewardModel, items: list[RewardItem]) -> CountedScores:
    if not items:
        return CountedScores([], {}, {})
    if isinstance(model, CountingReward):
        return model.score_counted(items)
    return CountedScores(list(model.score(items)), {}, {})


def score_items(
    items: Sequence[RewardItem], rewards: Rewards
) -> tuple[dict[str, list[float]], list[float]]:
    """Every item scored by every backend, and the weighted combination per item."""
    batch = score_batch(items, rewards)
    return batch.by_backend, batch.combined


def summed_counts(metas: Iterable[Mapping[str, Any]], key: str) -> dict[str, int]:
    """The counts under ``key`` of every shard's meta, summed (a stage's manifest counts)."""
    total: Counter[str] = Counter()
    for meta in metas:
        total.update(meta.get(key, {}))
    return dict(sorted(total.items()))


def rewards_identity(
    backends: Sequence[RewardBackend], catalog: Mapping[str, ModelEntry]
) -> dict[str, Any]:
    """What of a stage's reward settings changes its scores: the backends (batch sizes
    aside, by their AFFECTS_OUTPUT_NOT marks), the catalog entries of their models, and,
    for a principles judge on an engine, how its verdicts are read (added only there, so
    no other stage's fingerprint moved when reading them from log-probabilities began)."""
    from bolt.rewards.verdicts import ENGINE_VERDICTS

    identity: dict[str, Any] = {
        "rewards": [output_value(b) for b in backends],
        "reward_models": {b.model: catalog[b.model] for b in backends if b.model},
    }
    if any(b.kind == RewardKind.principles and b.judge_engine for b in backends):
        identity["engine_verdicts"] = ENGINE_VERDICTS
    return identity
