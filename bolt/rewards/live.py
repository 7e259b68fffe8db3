"""The reward backends stages score with, taken from the process's one pool (``bolt.resources``).

Loading an 8B reward model takes half a minute, so a backend on a model is loaded once
and shared by every shard, stage and online iteration that names it, until a generation
engine needs the accelerator. Reward models and the engine an ``lm_checklist`` backend
writes its checklists with are both ``Role.scoring``: they live side by side, and
acquiring either releases the generation engines. The checklists are cached next to the
prepared models, so a rerun writes none again. A ``principles`` backend with
``judge_engine`` set judges on an engine of that kind (``Role.scoring``). Rule-based backends (format,
math_verify) load no model: they are built on each call and never evict an engine.
"""

from __future__ import annotations

from bolt.config import PipelineConfig, RewardBackend, RewardKind
from bolt.engines.live import engine_for
from bolt.models import cache_root
from bolt.resources import POOL, Role
from bolt.rewards.base import RewardModel
from bolt.rewards.factory import make_reward
from bolt.rewards.scoring import Rewards
from bolt.stages import Stage


def rewards_for(
    cfg: PipelineConfig, backends: list[RewardBackend], stage: Stage = Stage.score
) -> Rewards:
    """Each backend's live reward model and weight, by backend name.

    ``stage`` is the stage that scores: its engine settings are the checklist writer's.
    """
    return {b.name: (reward_for(cfg, b, stage), b.weight) for b in backends}


def reward_for(cfg: PipelineConfig, backend: RewardBackend, stage: Stage) -> RewardModel:
    if backend.model is None:
        return make_reward(backend, cfg.models)
    # Name and weight say how a stage uses the model, not which model it is.
    key = f"reward {backend.model_dump_json(exclude={'weight', 'name'})}"
    return POOL.get(
        key,
        Role.scoring,
        lambda: _load(cfg, backend, stage),
        label=f"{backend.kind.value} reward on {backend.model}",
    )


def _load(cfg: PipelineConfig, backend: RewardBackend, stage: Stage) -> RewardModel:
    checklist_engine = (
        engine_for(cfg, backend.model, cfg.engine_settings(stage), Role.scoring)
        if backend.kind == RewardKind.lm_checklist and backend.model
        else None
    )
    # A principles judge on an engine (vLLM or a served model) is a scoring engine too.
    judge_engine = (
        engine_for(cfg, backend.model, backend.judge_engine, Role.scoring)
        if backend.kind == RewardKind.principles and backend.judge_engine and backend.model
        else None
    )
    return make_reward(
        backend,
        cfg.models,
        device=cfg.compute.device,
        checklist_engine=checklist_engine,
        checklist_cache_dir=cache_root(cfg.models).parent / "checklists",
        judge_engine=judge_engine,
        s3=cfg.storage.s3,
    )
