"""The engines stages run on, taken from the process's one pool (``bolt.resources.POOL``).

Starting vLLM costs a minute or more, so an engine is kept and shared: the labeller of
the curation stage and the teacher of the bootstrapping stage get one engine when they
name the same model with the same settings. The role is part of the key: an engine that
grades (the checklist writer of an ``lm_checklist`` reward) is never the teacher's
engine, because the pool releases every engine of the other role before one starts (on
an accelerator, a generation engine and a scoring model do not fit side by side). With
the Ray task runner every worker process holds its own pool.
"""

from __future__ import annotations

from bolt.config import EngineConfig, PipelineConfig
from bolt.engines import make_engine
from bolt.engines.base import Engine
from bolt.models import resolve_model
from bolt.resources import POOL, Role


def engine_key(model_path: str, engine_cfg: EngineConfig, role: Role) -> str:
    """What makes two engines the same one: the model, every engine setting and the role."""
    return (
        f"{role.value} {engine_cfg.kind.value} engine {model_path} {engine_cfg.model_dump_json()}"
    )


def engine_for(
    cfg: PipelineConfig, model_name: str, engine_cfg: EngineConfig, role: Role = Role.generation
) -> Engine:
    """The live engine on catalog model ``model_name``, started when there is none (or it died)."""
    path = resolve_model(cfg.models, model_name, cfg.storage.s3)
    return POOL.get(
        engine_key(path, engine_cfg, role),
        role,
        lambda: make_engine(engine_cfg, path, seed=cfg.seed, device=cfg.compute.device),
    )


def context_length(cfg: PipelineConfig, model_name: str, engine_cfg: EngineConfig) -> int | None:
    """The tokens an engine on ``model_name`` fits: the model's limit or the engine's, the smaller."""
    limits = [
        n for n in (cfg.models.catalog[model_name].context_length, engine_cfg.max_model_len) if n
    ]
    return min(limits) if limits else None
