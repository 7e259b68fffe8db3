"""Scoring a batch of answers with a stage's reward backends: the one path the filter
(BOLT §3.1) and the online loop (§3.3) share, and what of it enters their fingerprints."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bolt.config import ModelEntry, RewardBackend, RewardKind, output_value
from bolt.rewards.base import RewardItem, RewardModel, combine

Rewards = Mapping[str, tuple[RewardModel, float]]


def score_items(
    items: Sequence[RewardItem], rewards: Rewards
) -> tuple[dict[str, list[float]], list[float]]:
    """Every item scored by every backend, and the weighted combination per item."""
    by_backend = {
        name: list(model.score(list(items))) if items else []
        for name, (model, _) in rewards.items()
    }
    combined = combine(by_backend, {name: weight for name, (_, weight) in rewards.items()})
    return by_backend, combined


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
