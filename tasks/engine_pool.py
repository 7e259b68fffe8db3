"""Engines live once per process: started on first use, shared by stages, closed at the end.

Starting vLLM costs a minute or more (DESIGN.md §4), so the labeller of the curation
stage and the teacher of the bootstrapping stage reuse one engine when they name the
same model with the same settings. With the Ray task runner every worker process
holds its own pool. An engine whose process died (``dead``, see EngineDead) is replaced
on the next request for it, so a task's retry runs on a live engine.
"""

from __future__ import annotations

import threading

from prefect.logging import get_logger

from bolt.config import EngineConfig, PipelineConfig
from bolt.engines import make_engine
from bolt.engines.base import Engine
from bolt.models import resolve_model

logger = get_logger("bolt.engines")
_lock = threading.Lock()
_engines: dict[str, Engine] = {}


def engine_for(cfg: PipelineConfig, model_name: str, engine_cfg: EngineConfig) -> Engine:
    path = resolve_model(cfg.models, model_name, cfg.storage.s3)
    key = f"{path}|{engine_cfg.model_dump_json()}"
    with _lock:
        if key in _engines and getattr(_engines[key], "dead", False):
            logger.warning(
                "the %s engine for %s died; starting a new one", engine_cfg.kind.value, model_name
            )
            del _engines[key]
        if key not in _engines:
            logger.info("starting %s engine for %s", engine_cfg.kind.value, model_name)
            _engines[key] = make_engine(engine_cfg, path, seed=cfg.seed, device=cfg.compute.device)
        return _engines[key]


def context_length(cfg: PipelineConfig, model_name: str, engine_cfg: EngineConfig) -> int | None:
    limits = [
        n for n in (cfg.models.catalog[model_name].context_length, engine_cfg.max_model_len) if n
    ]
    return min(limits) if limits else None


def close_all() -> None:
    with _lock:
        while _engines:
            _engines.popitem()[1].close()
