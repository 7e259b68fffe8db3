"""Reward backends live once per process, like engines: built on first use, shared.

An lm_checklist backend writes its checklists with an engine on the judge model (the
stage's vLLM engine when the models match, from the engine pool) and caches them next
to the prepared models, so a rerun writes none again.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from bolt.config import PipelineConfig, RewardBackend, RewardKind
from bolt.models import cache_root
from bolt.rewards.base import RewardModel, make_reward
from tasks.engine_pool import engine_for

_lock = threading.Lock()
_rewards: dict[str, RewardModel] = {}


def rewards_for(
    cfg: PipelineConfig, backends: list[RewardBackend]
) -> Mapping[str, tuple[RewardModel, float]]:
    return {b.name: (_reward(cfg, b), b.weight) for b in backends}


def _reward(cfg: PipelineConfig, backend: RewardBackend) -> RewardModel:
    key = backend.model_dump_json(exclude={"weight", "name"})
    with _lock:
        if key not in _rewards:
            engine = (
                engine_for(cfg, backend.model, cfg.bootstrap.engine)
                if backend.kind == RewardKind.lm_checklist and backend.model
                else None
            )
            _rewards[key] = make_reward(
                backend,
                cfg.models,
                device=cfg.compute.device,
                checklist_engine=engine,
                checklist_cache_dir=cache_root(cfg.models).parent / "checklists",
                s3=cfg.storage.s3,
            )
        return _rewards[key]


def release_all() -> None:
    with _lock:
        _rewards.clear()
