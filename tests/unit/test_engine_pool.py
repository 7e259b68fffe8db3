"""The per-process engine pool: one engine per model and settings, replaced once dead."""

from __future__ import annotations

from pathlib import Path

from bolt.config_loader import load_config
from tasks import engine_pool

TINY = Path(__file__).resolve().parents[2] / "configs/tiny-cpu.yaml"


class Started:
    def __init__(self, path: str):
        self.model_path, self.dead, self.closed = path, False, False

    def close(self) -> None:
        self.closed = True


def test_a_dead_engine_is_replaced_and_a_live_one_reused(monkeypatch):
    started: list[Started] = []

    def make(cfg, path, *, seed, device):
        started.append(Started(path))
        return started[-1]

    monkeypatch.setattr(engine_pool, "make_engine", make)
    monkeypatch.setattr(engine_pool, "resolve_model", lambda models, name, s3: f"/models/{name}")
    cfg = load_config(TINY)
    try:
        first = engine_pool.engine_for(cfg, "smollm2-135m-instruct", cfg.bootstrap.engine)
        assert engine_pool.engine_for(cfg, "smollm2-135m-instruct", cfg.bootstrap.engine) is first
        first.dead = True  # its engine-core process was killed mid-shard
        second = engine_pool.engine_for(cfg, "smollm2-135m-instruct", cfg.bootstrap.engine)
        assert second is not first and len(started) == 2
    finally:
        engine_pool.close_all()
    assert started[1].closed
