"""Text generation engines behind one protocol (``bolt.engines.base.Engine``).

``make_engine`` is the one place that turns ``EngineConfig.kind`` into an engine; each
engine module imports its heavy dependency (vllm, openai, transformers) only when built.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import assert_never

from bolt.config import EngineConfig, EngineKind
from bolt.engines.base import (
    ChatRequest,
    Completion,
    Engine,
    EngineDead,
    EngineError,
    EngineHung,
    EngineStats,
    EngineTimeout,
)

__all__ = [
    "ChatRequest",
    "Completion",
    "Engine",
    "EngineDead",
    "EngineError",
    "EngineHung",
    "EngineStats",
    "EngineTimeout",
    "make_engine",
    "open_engine",
]


def make_engine(
    cfg: EngineConfig,
    model_path: str,
    *,
    seed: int,
    device: str = "cpu",
    model_key: str | None = None,
) -> Engine:
    """Start the engine ``cfg.kind`` names for the model at ``model_path``: a folder, or for
    kind=openai the name the server knows the model by (nothing is loaded here then).
    ``model_key`` (``models.catalog.<name>``) is what an openai engine's errors name."""
    match cfg.kind:
        case EngineKind.vllm:
            from bolt.engines.vllm_engine import VllmEngine

            return VllmEngine(cfg, model_path, seed=seed, device=device)
        case EngineKind.openai:
            from bolt.engines.openai_engine import OpenAIEngine

            return OpenAIEngine(cfg, model_path, model_key=model_key)
        case EngineKind.transformers:
            from bolt.engines.hf_engine import HFEngine

            return HFEngine(
                model_path, seed=seed, device=device, shard_timeout_s=cfg.shard_timeout_s
            )
        case _:
            assert_never(cfg.kind)


@contextmanager
def open_engine(
    cfg: EngineConfig, model_path: str, *, seed: int, device: str = "cpu"
) -> Iterator[Engine]:
    """``make_engine`` for a ``with`` block: the engine is closed however the block ends."""
    engine = make_engine(cfg, model_path, seed=seed, device=device)
    try:
        yield engine
    finally:
        engine.close()
