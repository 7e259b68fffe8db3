"""Crash and resume of the stages on bolt.sharding: curation labelling, online sampling
and eval judging each run in a child process that is SIGKILLed five times at seeded
points (after a seeded number of new shard receipts, plus a seeded delay so the kill
lands mid-shard), on the same store; then the stage completes. A rerun never rewrites a
shard that has a receipt (at most the shard in flight is redone) and the final outputs
are byte-identical to an uninterrupted run's.

The engine and judge are tests/stand_ins.py's: answers are hashes of the request, a
sleep per call paces each shard."""

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
from bolt.curation.stage import run_curation
from bolt.evals.stage import EvalModel, load_benchmarks, run_answers, run_eval
from bolt.online import stage as online
from bolt.records import Query
from bolt.store import ArtifactStore, Manifest
from tests.conftest import REPO, TINY_CONFIG
from tests.stage_runs import committed_queries
from tests.stand_ins import HashEngine, HashJudge

pytestmark = [pytest.mark.slow, pytest.mark.integration]

KILLS = 5
MODEL = EvalModel("tested", "none", {"name": "tested"})

CHILD_PRELUDE = """
from bolt.config_loader import load_config
from bolt.store import ArtifactStore
from tests.stand_ins import HashEngine, HashJudge
cfg = load_config({config!r}, {overrides!r})
store = ArtifactStore.from_config(cfg.storage)
"""

CURATION_CHILD = """
from bolt.curation.stage import run_curation
engine = HashEngine(delay_s=0.15)
run_curation(cfg, store, lambda: engine, context_length=8192)
"""

SAMPLES_CHILD = """
from bolt.online import stage as online
engine = HashEngine(delay_s=0.2)
prompts = store.require("data", "prompts")
online.run_samples(cfg, store, prompts, "sft/x", lambda: engine)
"""

JUDGING_CHILD = """
from bolt.evals.stage import EvalModel, load_benchmarks, run_eval
judge = HashJudge(delay_s=0.2)
answers = store.list_manifests("eval_answers")[0]
model = EvalModel("tested", "none", {"name": "tested"})
run_eval(cfg, store, model, load_benchmarks(cfg), answers, lambda b: judge)
"""


def _receipts(stage_dir: Path) -> dict[str, int]:
    """Every receipt of the stage and when it was written."""
    return {p.name: p.stat().st_mtime_ns for p in stage_dir.glob("*/part-*.receipt.json")}


def _kill_repeatedly(
    script: str, stage_dir: Path, shards: int, rng: random.Random, max_delay_s: float
) -> list[int]:
    """Start the child KILLS times, SIGKILL each after a seeded number of receipts and a
    seeded delay; return the receipts seen after each kill. No receipt is ever rewritten."""
    targets = sorted(rng.sample(range(1, shards), KILLS))
    seen = []
    for target in targets:
        before = _receipts(stage_dir)
        proc = subprocess.Popen(
            [sys.executable, "-c", script],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.time() + 120
        while proc.poll() is None and time.time() < deadline:
            if len(_receipts(stage_dir)) >= target:
                time.sleep(rng.uniform(0, max_delay_s))
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.01)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
        after = _receipts(stage_dir)
        assert {k: after[k] for k in before} == before, "a finished shard was redone"
        assert not list(stage_dir.glob("*/manifest.json")), "a killed stage was committed"
        seen.append(len(after))
    return seen


def _child(body: str, overrides: list[str]) -> str:
    prelude = CHILD_PRELUDE.format(config=str(TINY_CONFIG), overrides=overrides)
    return textwrap.dedent(prelude) + textwrap.dedent(body)


def _digests(store: ArtifactStore, manifest: Manifest) -> list:
    files = [(f.path, f.sha256) for f in manifest.files if not f.path.endswith(".png")]
    return [(s.name, s.sha256) for s in manifest.shards] + files


def _finish_after_kills(name, make, body, stage, overrides, tmp_path, fault_ledger, delay):
    """The reference run, then five kills and the completing run on another store."""
    ref_cfg = load_config(TINY_CONFIG, [f"storage.root=file://{tmp_path}/reference", *overrides])
    ref_store = ArtifactStore.from_config(ref_cfg.storage)
    reference = make(ref_cfg, ref_store)
    shards = (
        len(reference.shards) if stage != "data-labels" else _label_shards(ref_store, reference)
    )
    cfg = load_config(TINY_CONFIG, [f"storage.root=file://{tmp_path}/crashed", *overrides])
    store = ArtifactStore.from_config(cfg.storage)
    seen = _kill_repeatedly(
        _child(body, [f"storage.root=file://{tmp_path}/crashed", *overrides]),
        tmp_path / "crashed" / stage,
        shards,
        random.Random(f"20250205-{name}"),
        delay,
    )
    before = _receipts(tmp_path / "crashed" / stage)
    final = make(cfg, store)
    after = _receipts(tmp_path / "crashed" / stage)
    assert {k: after[k] for k in before} == before and len(after) == shards
    assert seen == sorted(seen) and seen[-1] < shards
    assert final.fingerprint == reference.fingerprint
    assert _digests(store, final) == _digests(ref_store, reference)  # byte-identical
    lost = reference.records - final.records
    fault_ledger.record(f"sigkill_{name}", injected=KILLS, recovered=KILLS, lost=lost)
    print(f"{name}: {shards} shards, receipts after each kill {seen}")
    return store, final


def _label_shards(store: ArtifactStore, curated: Manifest) -> int:
    return len(store.finished_shards("data-labels", curated.fingerprint))


def test_curation_labelling_survives_five_sigkills(tmp_path, fault_ledger):
    overrides = [
        "data.shard_size=5",
        "data.decontamination.enabled=false",
        "data.difficulty_threshold=4",
    ]

    def make(cfg, store):
        return run_curation(cfg, store, lambda: HashEngine(), context_length=8192)

    _, final = _finish_after_kills(
        "curation_labels",
        make,
        CURATION_CHILD,
        "data-labels",
        overrides,
        tmp_path,
        fault_ledger,
        0.1,
    )
    assert final.counts["kept"] > 0


def _prompts(store: ArtifactStore) -> Manifest:
    queries = [
        Query(id=f"q{i:03d}", text=f"How would you plan experiment {i}?", source="demo")
        for i in range(24)
    ]
    return committed_queries(store, "prompts", queries)


def test_online_sampling_survives_five_sigkills(tmp_path, fault_ledger):
    def make(cfg, store):
        prompts = _prompts(store)
        return online.run_samples(cfg, store, prompts, "sft/x", lambda: HashEngine())

    for root in ("reference", "crashed"):  # the prompts the child samples from
        cfg = load_config(TINY_CONFIG, [f"storage.root=file://{tmp_path}/{root}"])
        _prompts(ArtifactStore.from_config(cfg.storage))
    _finish_after_kills(
        "online_sampling",
        make,
        SAMPLES_CHILD,
        "online-samples",
        ["online.shard_size=2"],
        tmp_path,
        fault_ledger,
        0.1,
    )


def test_eval_judging_survives_five_sigkills(tmp_path, fault_ledger):
    # Judged benchmarks only: every shard waits for the (paced) judge, so a kill lands in one.
    overrides = ["eval.shard_size=1", "eval.max_items=5", "eval.benchmarks=[mt_bench, arena_hard]"]

    def answers(cfg, store):
        return run_answers(cfg, store, MODEL, load_benchmarks(cfg), lambda: HashEngine())

    def make(cfg, store):
        items = load_benchmarks(cfg)
        judge = HashJudge()
        return run_eval(cfg, store, MODEL, items, answers(cfg, store), lambda b: judge)

    cfg = load_config(TINY_CONFIG, [f"storage.root=file://{tmp_path}/crashed", *overrides])
    answers(cfg, ArtifactStore.from_config(cfg.storage))  # what the child judges
    _, final = _finish_after_kills(
        "eval_judging", make, JUDGING_CHILD, "eval", overrides, tmp_path, fault_ledger, 0.1
    )
    assert final.counts["mt_bench.n_items"] == 10
