"""Engine and judge faults: the teacher answers 429, 500, bodies that are not JSON,
JSON without choices, and answers later than the client's timeout. The OpenAI engine
retries them and the stage's output is byte-identical to a fault-free run; when the
faults outlast the retries the shard fails with an error naming the request and the
last status, nothing is committed, and the rerun finishes the stage. A vLLM engine whose
engine-core process is killed mid-shard fails that shard with ``EngineDead``; the retry
gets a new engine from the pool and finishes the stage without regenerating shards. One
whose engine core is SIGSTOPped mid-shard (alive, but making no progress) fails that shard
with ``EngineHung`` within ``engine.request_timeout_s``, is killed, and is replaced the
same way."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from bolt.config_loader import load_config
from bolt.engines.base import EngineDead, EngineError, EngineHung
from bolt.engines.live import engine_for
from bolt.engines.openai_engine import OpenAIEngine, RetryPolicy
from bolt.records import Generation, Query
from bolt.resources import POOL
from bolt.stages import Stage
from bolt.store import ArtifactStore, Manifest, NotCommitted
from tests.conftest import TINY_CONFIG
from tests.reliability.teacher_server import TeacherServer
from tests.reliability.test_crash_resume import _seed_data, _shard_digests
from tests.stage_runs import bootstrap_in_process, committed_queries

pytestmark = [pytest.mark.slow, pytest.mark.integration]

# More retries than the fault mix is long: one request may meet every kind in a row.
FAST_RETRIES = RetryPolicy(max_retries=10, base_s=0.01, cap_s=0.05)
FAULT_MIX = [429, 500, "garbage", "malformed", ("slow", 1.5)]


def _run(root, teacher: TeacherServer):
    cfg = load_config(
        TINY_CONFIG,
        [
            f"storage.root=file://{root}",
            "engine.kind=openai",
            f"engine.base_url={teacher.base_url}",
            "engine.concurrency=1",
            "engine.timeout_s=0.5",
            "bootstrap.shard_size=2",
            "bootstrap.sampling.n=2",
        ],
    )
    store = ArtifactStore.from_config(cfg.storage)
    data = store.manifest("data", "reliability-data") or _seed_data(store)
    engine = OpenAIEngine(cfg.engine_settings(Stage.bootstrap), "teacher", policy=FAST_RETRIES)
    return store, lambda: bootstrap_in_process(cfg, store, data, lambda: engine)


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


def _kill_engine_core_when(engine, ready) -> threading.Thread:
    """SIGKILL the vLLM engine-core process once ``ready()`` holds (polled every 50 ms)."""
    pids = [p.pid for p in engine._live().llm_engine.engine_core.resources.engine_manager.processes]

    def kill() -> None:
        deadline = time.time() + 300
        while not ready() and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # into the next shard's prefill
        for pid in pids:
            os.kill(pid, signal.SIGKILL)

    killer = threading.Thread(target=kill, daemon=True)
    killer.start()
    return killer


def test_a_dying_vllm_engine_fails_the_shard_and_the_retry_gets_a_new_engine(
    tmp_path, fault_ledger, smollm2_path
):
    cfg = load_config(
        TINY_CONFIG,
        [
            f"storage.root=file://{tmp_path}",
            "bootstrap.shard_size=1",
            "bootstrap.sampling.n=1",
            "bootstrap.sampling.max_new_tokens=24",
            "bootstrap.guided_decoding=false",
            "bootstrap.examples_per_prompt=1",  # a short prompt: the death is the subject
            "engine.cpu_kvcache_gb=1",
        ],
    )
    store = ArtifactStore.from_config(cfg.storage)
    queries = [
        Query(id=f"v{i}", text=f"Plan a {i}-day study schedule.", source="t") for i in range(4)
    ]
    data = store.commit(
        Manifest(
            stage="data",
            fingerprint="vllm-death",
            code_version="test",
            config={},
            shards=[store.write_shard("data", "vllm-death", 0, queries)],
        )
    )
    boot = cfg.bootstrap

    def pooled():  # what the bootstrap-shard task calls on every attempt
        return engine_for(cfg, boot.teacher_model, cfg.engine_settings(Stage.bootstrap))

    try:
        first = pooled()
        receipts = lambda: list(tmp_path.glob("bootstrap/*/part-*.receipt.json"))
        killer = _kill_engine_core_when(first, lambda: len(receipts()) >= 1)
        started = time.perf_counter()
        with pytest.raises(EngineDead, match="engine core .* died"):
            bootstrap_in_process(cfg, store, data, pooled, context_length=8192)
        killer.join(timeout=5)
        assert first.dead
        finished = len(receipts())
        assert 1 <= finished < len(queries)
        assert not list(tmp_path.glob("bootstrap/*/manifest.json"))

        second = pooled()
        assert second is not first and not second.dead
        manifest = bootstrap_in_process(cfg, store, data, pooled, context_length=8192)
        assert second.stats.requests == len(queries) - finished  # finished shards kept
        assert manifest.counts["rejected"] == 0
        keys = [(g.query_id, g.sample_index) for g in store.read_records(manifest, Generation)]
        assert sorted(keys) == [(q.id, 0) for q in queries]
        print(f"engine death -> EngineDead -> new engine, {time.perf_counter() - started:.0f} s")
    finally:
        POOL.release()
    fault_ledger.record("vllm_engine_killed", injected=1, recovered=1)


def _engine_core_pids(engine) -> list[int]:
    return [p.pid for p in engine._live().llm_engine.engine_core.resources.engine_manager.processes]


def _with_children(pids: list[int]) -> list[int]:
    """The engine cores and their own children (vLLM's executor workers)."""
    import psutil

    return pids + [c.pid for pid in pids for c in psutil.Process(pid).children(recursive=True)]


def _gone(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _left_alive(pids: list[int], within_s: float) -> list[int]:
    """The pids still alive after ``within_s`` seconds (a SIGKILL lands a moment later)."""
    deadline = time.monotonic() + within_s
    while (alive := [pid for pid in pids if not _gone(pid)]) and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive


def _stop_engine_core_when(
    pids: list[int], ready, stopped_at: list[float], cancel: threading.Event
) -> threading.Thread:
    """SIGSTOP the engine-core processes once ``ready()`` holds: alive, never answering.
    Nothing is sent once ``cancel`` is set (the test ended; the pids may be reused)."""

    def stop() -> None:
        deadline = time.time() + 300
        while not ready() and time.time() < deadline:
            if cancel.wait(0.05):
                return
        if cancel.wait(1.0):  # into the next shard
            return
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        stopped_at.append(time.perf_counter())

    stopper = threading.Thread(target=stop, daemon=True)
    stopper.start()
    return stopper


def test_a_stopped_vllm_engine_fails_the_shard_within_its_timeout_and_is_replaced(
    tmp_path, fault_ledger, smollm2_path
):
    # A prompt's prefill sends no output: on one shared CPU core a 1.2k-token prompt takes
    # 20-40 s, so the prompts here are short (one tiny example, ~150 tokens: well under a
    # second a step here) and the timeout above them.
    request_timeout_s = 15
    examples = tmp_path / "examples"
    examples.mkdir()
    (examples / "tiny.yaml").write_text(
        "id: tiny\ntopic: arithmetic\nquery: What is 2 + 3?\n"
        "thoughts: Two and three make five.\nresponse: The answer is 5.\n"
    )
    cfg = load_config(
        TINY_CONFIG,
        [
            f"storage.root=file://{tmp_path}",
            "bootstrap.shard_size=1",
            "bootstrap.sampling.n=1",
            "bootstrap.sampling.max_new_tokens=64",
            "bootstrap.guided_decoding=false",
            "bootstrap.examples_per_prompt=1",
            f"bootstrap.examples_dir={examples}",
            "engine.cpu_kvcache_gb=1",
            f"engine.request_timeout_s={request_timeout_s}",
            "engine.shard_timeout_s=600",
        ],
    )
    store = ArtifactStore.from_config(cfg.storage)
    queries = [
        Query(id=f"h{i}", text=f"Plan a {i}-week reading list.", source="t") for i in range(4)
    ]
    data = committed_queries(store, "vllm-hang", queries)

    def pooled():  # what the bootstrap-shard task calls on every attempt
        return engine_for(cfg, cfg.bootstrap.teacher_model, cfg.engine_settings(Stage.bootstrap))

    pids: list[int] = []
    cancel = threading.Event()
    try:
        first = pooled()
        cores = _engine_core_pids(first)
        pids = _with_children(cores)
        receipts = lambda: list(tmp_path.glob("bootstrap/*/part-*.receipt.json"))
        stopped_at: list[float] = []
        stopper = _stop_engine_core_when(cores, lambda: len(receipts()) >= 1, stopped_at, cancel)
        with pytest.raises(
            EngineHung, match=rf"sent no output .* engine.request_timeout_s = {request_timeout_s} s"
        ):
            bootstrap_in_process(cfg, store, data, pooled, context_length=8192)
        assert stopped_at, "EngineHung before the SIGSTOP: request_timeout_s is below a step"
        detected_s = time.perf_counter() - stopped_at[0]
        stopper.join(timeout=5)
        assert request_timeout_s <= detected_s < request_timeout_s + 10
        assert first.dead
        assert _left_alive(pids, within_s=10) == []  # killed, not left stopped
        finished = len(receipts())
        assert 1 <= finished < len(queries)
        assert not list(tmp_path.glob("bootstrap/*/manifest.json"))

        second = pooled()
        assert second is not first and not second.dead
        manifest = bootstrap_in_process(cfg, store, data, pooled, context_length=8192)
        assert second.stats.requests == len(queries) - finished  # finished shards kept
        keys = [(g.query_id, g.sample_index) for g in store.read_records(manifest, Generation)]
        assert sorted(keys) == [(q.id, 0) for q in queries]
        print(f"SIGSTOP -> EngineHung after {detected_s:.1f} s -> new engine, retry committed")
    finally:
        cancel.set()
        for pid in pids:  # whatever happened above, no stopped process outlives the test
            if not _gone(pid):
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGKILL)
        POOL.release()
    fault_ledger.record("vllm_engine_stopped", injected=1, recovered=1)
