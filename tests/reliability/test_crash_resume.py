"""Crash and resume: a stage runs in a child process that is SIGKILLed at seeded random
points (after a seeded number of finished shards, plus a seeded random delay so the kill
lands mid-shard), five times in a row on the same store; the sixth run completes. The
shards must be byte-identical to an uninterrupted run's, with no record lost.

Bootstrap generates through the OpenAI engine from a deterministic teacher server (a
small delay per request); scoring uses the rule-based format reward, paced by a sleep
per shard so that a kill can land inside it."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from bolt.config_loader import load_config
from bolt.engines.openai_engine import OpenAIEngine, RetryPolicy
from bolt.filtering.stage import run_score
from bolt.records import Generation, Query, ScoredGeneration
from bolt.rewards.format_reward import FormatReward
from bolt.stages import Stage
from bolt.store import ArtifactStore, Manifest
from tests.conftest import REPO, TINY_CONFIG
from tests.reliability.teacher_server import TeacherServer
from tests.stage_runs import bootstrap_in_process, committed_queries

pytestmark = [pytest.mark.slow, pytest.mark.integration]

QUERIES = 24
SHARD_SIZE = 2
SHARDS = QUERIES // SHARD_SIZE
KILLS = 5
FAST_RETRIES = RetryPolicy(max_retries=4, base_s=0.01, cap_s=0.05)


def _overrides(root: Path, base_url: str) -> list[str]:
    return [
        f"storage.root=file://{root}",
        "engine.kind=openai",
        f"engine.base_url={base_url}",
        "engine.concurrency=2",
        f"bootstrap.shard_size={SHARD_SIZE}",
        "bootstrap.sampling.n=2",
        "filter.rewards=[{kind: format, name: format}]",
    ]


def _seed_data(store: ArtifactStore) -> Manifest:
    queries = [
        Query(id=f"q{i:03d}", text=f"How would you plan experiment {i}?", source="demo")
        for i in range(QUERIES)
    ]
    return committed_queries(store, "reliability-data", queries)


def _format_rewards():
    return {"format": (FormatReward(), 1.0)}


CHILD_PRELUDE = """
import time
from bolt.config_loader import load_config
from bolt.store import ArtifactStore
cfg = load_config({config!r}, {overrides!r})
store = ArtifactStore.from_config(cfg.storage)
data = store.require("data", "reliability-data")
"""

BOOTSTRAP_CHILD = """
from bolt.engines import make_engine
from bolt.stages import Stage
from tests.stage_runs import bootstrap_in_process
engine = make_engine(cfg.engine_settings(Stage.bootstrap), "teacher", seed=0)
bootstrap_in_process(cfg, store, data, lambda: engine)
"""

SCORE_CHILD = """
from bolt.filtering.stage import run_score
from bolt.rewards.format_reward import FormatReward

class PacedFormatReward(FormatReward):
    def score(self, items):
        time.sleep(0.15)
        return super().score(items)

boot = store.list_manifests("bootstrap")[0]
run_score(cfg, store, boot, data, lambda: {"format": (PacedFormatReward(), 1.0)})
"""


def _kill_repeatedly(
    script: str, stage_dir: Path, rng: random.Random, max_delay_s: float
) -> tuple[int, list[int]]:
    """Start the child KILLS times, SIGKILL each after a seeded number of new receipts
    and a seeded delay; return the kills that landed and the receipts seen at each."""
    targets = sorted(rng.sample(range(1, SHARDS), KILLS))
    kills, seen = 0, []
    for target in targets:
        proc = subprocess.Popen(
            [sys.executable, "-c", script],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.time() + 60
        while proc.poll() is None and time.time() < deadline:
            if len(list(stage_dir.glob("*/part-*.receipt.json"))) >= target:
                time.sleep(rng.uniform(0, max_delay_s))
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.01)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
        kills += 1
        seen.append(len(list(stage_dir.glob("*/part-*.receipt.json"))))
        assert not list(stage_dir.glob("*/manifest.json")), "a killed stage was committed"
    return kills, seen


def _shard_digests(manifest: Manifest) -> list[tuple[str, str]]:
    return [(s.name, s.sha256) for s in manifest.shards]


def _child(body: str, overrides: list[str]) -> str:
    prelude = CHILD_PRELUDE.format(config=str(TINY_CONFIG), overrides=overrides)
    return textwrap.dedent(prelude) + textwrap.dedent(body)


def test_bootstrap_and_scoring_survive_sigkill(tmp_path, fault_ledger):
    rng = random.Random(20250205)
    with TeacherServer(delay_s=0.05) as teacher:
        # The uninterrupted reference run.
        ref_cfg = load_config(TINY_CONFIG, _overrides(tmp_path / "reference", teacher.base_url))
        ref_store = ArtifactStore.from_config(ref_cfg.storage)
        ref_data = _seed_data(ref_store)
        engine = OpenAIEngine(
            ref_cfg.engine_settings(Stage.bootstrap), "teacher", policy=FAST_RETRIES
        )
        ref_boot = bootstrap_in_process(ref_cfg, ref_store, ref_data, lambda: engine)
        ref_score = run_score(ref_cfg, ref_store, ref_boot, ref_data, _format_rewards)

        # The same stages, killed five times each, then completed.
        overrides = _overrides(tmp_path / "crashed", teacher.base_url)
        cfg = load_config(TINY_CONFIG, overrides)
        store = ArtifactStore.from_config(cfg.storage)
        data = _seed_data(store)
        root = tmp_path / "crashed"
        boot_kills, boot_seen = _kill_repeatedly(
            _child(BOOTSTRAP_CHILD, overrides), root / "bootstrap", rng, max_delay_s=0.3
        )
        boot = bootstrap_in_process(cfg, store, data, lambda: engine)
        score_kills, score_seen = _kill_repeatedly(
            _child(SCORE_CHILD, overrides), root / "score", rng, max_delay_s=0.15
        )
        score = run_score(cfg, store, boot, data, _format_rewards)

    assert boot_seen == sorted(boot_seen) and score_seen == sorted(score_seen)
    assert boot.fingerprint == ref_boot.fingerprint and score.fingerprint == ref_score.fingerprint
    assert _shard_digests(boot) == _shard_digests(ref_boot)  # byte-identical shards
    assert _shard_digests(score) == _shard_digests(ref_score)
    keys = {(g.query_id, g.sample_index) for g in store.read_records(boot, Generation)}
    scored = list(store.read_records(score, ScoredGeneration))
    lost = 2 * QUERIES - len(keys) + 2 * QUERIES - len(scored)
    assert lost == 0 and all(s.rewards == {"format": 1.0} for s in scored)
    fault_ledger.record("sigkill_bootstrap", injected=boot_kills, recovered=boot_kills, lost=0)
    fault_ledger.record("sigkill_scoring", injected=score_kills, recovered=score_kills, lost=0)
