"""Engine and judge faults: the teacher answers 429, 500, bodies that are not JSON,
JSON without choices, and answers later than the client's timeout. The OpenAI engine
retries them and the stage's output is byte-identical to a fault-free run; when the
faults outlast the retries the shard fails with an error naming the request and the
last status, nothing is committed, and the rerun finishes the stage."""

from __future__ import annotations

import pytest

from bolt.bootstrap.stage import run_bootstrap
from bolt.config_loader import load_config
from bolt.engines.base import EngineError
from bolt.engines.openai_engine import OpenAIEngine, RetryPolicy
from bolt.store import ArtifactStore, NotCommitted
from tests.conftest import TINY_CONFIG
from tests.reliability.teacher_server import TeacherServer
from tests.reliability.test_crash_resume import _seed_data, _shard_digests

pytestmark = [pytest.mark.slow, pytest.mark.integration]

# More retries than the fault mix is long: one request may meet every kind in a row.
FAST_RETRIES = RetryPolicy(max_retries=10, base_s=0.01, cap_s=0.05)
FAULT_MIX = [429, 500, "garbage", "malformed", ("slow", 1.5)]


def _run(root, teacher: TeacherServer):
    cfg = load_config(
        TINY_CONFIG,
        [
            f"storage.root=file://{root}",
            "bootstrap.engine.kind=openai",
            f"bootstrap.engine.base_url={teacher.base_url}",
            "bootstrap.engine.concurrency=1",
            "bootstrap.engine.timeout_s=0.5",
            "bootstrap.shard_size=2",
            "bootstrap.sampling.n=2",
        ],
    )
    store = ArtifactStore.from_config(cfg.storage)
    data = store.manifest("data", "reliability-data") or _seed_data(store)
    engine = OpenAIEngine(cfg.bootstrap.engine, "teacher", policy=FAST_RETRIES)
    return store, lambda: run_bootstrap(cfg, store, data, lambda: engine)


def test_engine_retries_faults_and_reruns_cleanly(tmp_path, fault_ledger):
    with TeacherServer() as teacher:
        _, run_reference = _run(tmp_path / "reference", teacher)
        reference = run_reference()

        _, run_faulty = _run(tmp_path / "retried", teacher)
        teacher.faults.extend(FAULT_MIX * 2)
        retried = run_faulty()
        assert len(teacher.injected) == 2 * len(FAULT_MIX) and not teacher.faults
        assert _shard_digests(retried) == _shard_digests(reference)
        fault_ledger.record("engine_transient_faults", injected=len(teacher.injected), recovered=1)

        store, run_exhausted = _run(tmp_path / "exhausted", teacher)
        teacher.injected.clear()
        teacher.faults.extend([500] * (FAST_RETRIES.max_retries + 1))
        with pytest.raises(
            EngineError, match=r"request 'q\d+' failed after 11 attempt\(s\); .*500"
        ):
            run_exhausted()
        with pytest.raises(NotCommitted):
            store.require("bootstrap", reference.fingerprint)
        rerun = run_exhausted()
    assert _shard_digests(rerun) == _shard_digests(reference)
    fault_ledger.record("engine_retries_exhausted", injected=len(teacher.injected), recovered=1)
