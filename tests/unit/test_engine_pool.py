"""The stages' engines and reward models from the one pool (bolt.engines.live,
bolt.rewards.live): shared while alive, replaced once dead, and one role's start
releases the other's (a checklist engine replaces the teacher, never shares it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bolt.config_loader import load_config
from bolt.engines import live as live_engines
from bolt.resources import POOL, Role
from bolt.rewards import live as live_rewards
from bolt.rewards.format_reward import FormatReward
from bolt.stages import Stage

TINY = Path(__file__).resolve().parents[2] / "configs/tiny-cpu.yaml"
MODEL = "smollm2-135m-instruct"


class Started:
    def __init__(self, path: str):
        self.model_path, self.dead, self.closed = path, False, False

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def started(monkeypatch):
    """Engines are hand-made stand-ins; every one started is listed here."""
    engines: list[Started] = []

    def make(cfg, path, *, seed, device):
        engines.append(Started(path))
        return engines[-1]

    monkeypatch.setattr(live_engines, "make_engine", make)
    monkeypatch.setattr(live_engines, "resolve_model", lambda models, name, s3: f"/models/{name}")
    yield engines
    POOL.release()


def test_a_dead_engine_is_replaced_and_a_live_one_reused(started):
    cfg = load_config(TINY)
    first = live_engines.engine_for(cfg, MODEL, cfg.engine_settings(Stage.bootstrap))
    assert live_engines.engine_for(cfg, MODEL, cfg.engine_settings(Stage.bootstrap)) is first
    first.dead = True  # its engine-core process was killed mid-shard
    second = live_engines.engine_for(cfg, MODEL, cfg.engine_settings(Stage.bootstrap))
    assert second is not first and len(started) == 2
    POOL.release()
    assert started[1].closed


def test_a_scoring_engine_on_the_teachers_model_replaces_the_teacher(started):
    cfg = load_config(TINY)
    teacher = live_engines.engine_for(cfg, MODEL, cfg.engine_settings(Stage.bootstrap))
    writer = live_engines.engine_for(cfg, MODEL, cfg.engine_settings(Stage.bootstrap), Role.scoring)
    assert writer is not teacher and teacher.closed and not writer.closed
    assert list(POOL.live().values()) == [Role.scoring]


def test_a_checklist_reward_and_its_engine_live_together_until_generation(started, monkeypatch):
    monkeypatch.setattr(live_rewards, "make_reward", lambda backend, models, **kw: kw)
    cfg = load_config(TINY)
    teacher = live_engines.engine_for(cfg, MODEL, cfg.engine_settings(Stage.bootstrap))
    rewards = live_rewards.rewards_for(cfg, cfg.filter.rewards, Stage.score)
    (reward, weight) = rewards["checklist"]
    assert weight == 1.0 and teacher.closed
    assert reward["checklist_engine"] is started[-1] and not started[-1].closed
    assert live_rewards.rewards_for(cfg, cfg.filter.rewards, Stage.score)["checklist"][0] is reward
    assert sorted(POOL.live().values()) == [Role.scoring, Role.scoring]
    live_engines.engine_for(cfg, MODEL, cfg.engine_settings(Stage.bootstrap))
    assert started[-2].closed and list(POOL.live().values()) == [Role.generation]


def test_a_rule_based_reward_loads_nothing_and_evicts_no_engine(started):
    cfg = load_config(TINY)
    teacher = live_engines.engine_for(cfg, MODEL, cfg.engine_settings(Stage.bootstrap))
    format_only = [b for b in cfg.online.rewards if b.name == "format"]
    (reward, _) = live_rewards.rewards_for(cfg, format_only, Stage.online_scores)["format"]
    assert isinstance(reward, FormatReward) and not teacher.closed
