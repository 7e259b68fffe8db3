"""Hang timeouts: a generate call is bounded by ``engine.shard_timeout_s`` and an engine
without progress by ``engine.request_timeout_s``, in every engine.

The vLLM watchdog runs here against a stand-in client (a real ``queue.Queue`` of engine
outputs and the ``engine_dead`` flag, which is all it reads); the real engine core,
SIGSTOPped mid-shard, is in tests/reliability/test_engine_faults.py.
"""

from __future__ import annotations

import queue
import threading
import time
from types import SimpleNamespace

import pytest

from bolt.config import EngineConfig, SamplingConfig
from bolt.engines.base import ChatRequest, Deadline, EngineDead, EngineHung, EngineTimeout
from bolt.engines.hf_engine import HFEngine
from bolt.engines.openai_engine import OpenAIEngine
from bolt.engines.vllm_engine import VllmEngine, Watchdog
from tests.unit.test_engines_openai import FAST, ScriptedServer

POLL_S = 0.02


def client() -> SimpleNamespace:
    return SimpleNamespace(
        resources=SimpleNamespace(engine_dead=False), outputs_queue=queue.Queue()
    )


def test_a_deadline_counts_down_and_none_never_passes():
    assert Deadline(None).left() == float("inf") and not Deadline(None).expired()
    soon = Deadline(0.05)
    assert 0 < soon.left() <= 0.05 and not soon.expired()
    time.sleep(0.06)
    assert soon.expired() and "engine.shard_timeout_s = 0.05 s" in soon.message("m")


def test_an_engine_core_without_output_is_hung_after_the_request_timeout():
    core = client()
    started = time.monotonic()
    watchdog = Watchdog(core, "m", request_timeout_s=0.3, deadline=Deadline(None), poll_s=POLL_S)
    error = core.outputs_queue.get(timeout=5)  # what the blocked generate call reads
    waited = time.monotonic() - started
    watchdog.stop()
    assert isinstance(error, EngineHung) and isinstance(error, EngineDead)
    assert "engine.request_timeout_s = 0.3 s" in str(error) and 0.3 <= waited < 1.5


def test_steady_output_keeps_the_watchdog_quiet_until_the_shard_deadline():
    core = client()
    stop = threading.Event()

    def step() -> None:  # an engine core sending a step's tokens every 50 ms
        while not stop.wait(0.05):
            core.outputs_queue.put_nowait("tokens")

    threading.Thread(target=step, daemon=True).start()
    started = time.monotonic()
    watchdog = Watchdog(core, "m", request_timeout_s=0.2, deadline=Deadline(0.6), poll_s=POLL_S)
    while not isinstance(item := core.outputs_queue.get(timeout=5), Exception):
        assert item == "tokens"
    stop.set()
    watchdog.stop()
    assert isinstance(item, EngineHung) and "shard_timeout_s = 0.6 s" in str(item)
    assert 0.6 <= time.monotonic() - started < 2.0


def test_an_error_injected_as_the_call_ends_is_taken_back():
    core = client()
    watchdog = Watchdog(core, "m", request_timeout_s=0.05, deadline=Deadline(None), poll_s=POLL_S)
    time.sleep(0.3)  # injected, but the call finished without reading it
    core.outputs_queue.put_nowait("late tokens")
    watchdog.stop()
    assert list(core.outputs_queue.queue) == ["late tokens"]


def test_a_call_that_ends_in_time_leaves_nothing_behind():
    core = client()
    watchdog = Watchdog(core, "m", request_timeout_s=5, deadline=Deadline(5), poll_s=POLL_S)
    watchdog.stop()
    time.sleep(0.1)
    assert core.outputs_queue.empty()


def _engine_with_fake_core(events: list) -> VllmEngine:
    """A VllmEngine whose client records its shutdown deadline and whose one engine-core
    process records being reaped after it."""
    process = SimpleNamespace(join=lambda timeout=None: events.append("reaped"))
    core = SimpleNamespace(
        shutdown=lambda timeout=None: events.append(("shutdown", timeout)),
        resources=SimpleNamespace(engine_manager=SimpleNamespace(processes=[process])),
    )
    engine = VllmEngine.__new__(VllmEngine)
    engine.model, engine.dead, engine.shutdown_grace_s = "m", False, 0.25
    engine._llm = SimpleNamespace(llm_engine=SimpleNamespace(engine_core=core))
    return engine


def test_a_hung_vllm_engine_is_shut_down_with_a_kill_deadline_and_reports_dead():
    events = []
    engine = _engine_with_fake_core(events)
    engine._abandon()
    assert engine.dead and engine._llm is None
    assert events == [("shutdown", 0.25), "reaped"]
    engine.close()  # the pool's close of a dead engine is a no-op
    assert events == [("shutdown", 0.25), "reaped"]


def test_closing_a_vllm_engine_kills_its_core_after_the_grace_and_reaps_it():
    events = []
    engine = _engine_with_fake_core(events)
    engine.close()
    assert not engine.dead and engine._llm is None
    assert events == [("shutdown", 0.25), "reaped"]
    engine.close()
    assert events == [("shutdown", 0.25), "reaped"]


def test_the_transformers_engine_checks_the_shard_deadline_between_batches():
    engine = HFEngine.__new__(HFEngine)
    engine.model, engine._model, engine.shard_timeout_s = "m", object(), 0.1
    batches = []

    def batch(requests, sampling, stop, logprobs):
        batches.append(len(requests))
        time.sleep(0.15)
        return [[] for _ in requests]

    engine._generate_batch = batch
    requests = [ChatRequest(f"r{i}", [{"role": "user", "content": "x"}]) for i in range(20)]
    with pytest.raises(EngineTimeout, match="shard_timeout_s = 0.1 s"):
        engine.generate(requests, SamplingConfig())
    assert batches == [8]  # the first batch ran; the second was never started
    assert not isinstance(EngineTimeout("x"), EngineDead)  # the engine itself is kept


@pytest.fixture
def server():
    server = ScriptedServer()
    threading.Thread(target=server.httpd.serve_forever, daemon=True).start()
    yield server
    server.httpd.shutdown()


def openai_engine(server: ScriptedServer, **cfg) -> OpenAIEngine:
    return OpenAIEngine(EngineConfig(kind="openai", base_url=server.url, **cfg), "m", policy=FAST)


def test_an_openai_shard_stops_at_its_deadline_whatever_the_request_timeout(server):
    texts = [f"slow-{i}" for i in range(4)]
    for text in texts:
        server.scripts[text] = [("slow", 3.0)]  # every request would answer after 3 s
    engine = openai_engine(server, request_timeout_s=30, shard_timeout_s=0.5, concurrency=2)
    requests = [ChatRequest(t, [{"role": "user", "content": t}]) for t in texts]
    started = time.monotonic()
    with pytest.raises(EngineTimeout, match="shard_timeout_s = 0.5 s"):
        engine.generate(requests, SamplingConfig(max_new_tokens=8))
    assert time.monotonic() - started < 1.5  # each attempt got only what was left
    assert sum(server.attempts(t) for t in texts) <= 2  # the queued requests never went out
    engine.close()


def test_an_openai_request_timeout_is_retried_within_the_shard(server):
    server.scripts["late"] = [("slow", 1.0)]
    engine = openai_engine(server, request_timeout_s=0.3, shard_timeout_s=10)
    out = engine.generate(
        [ChatRequest("late", [{"role": "user", "content": "late"}])], SamplingConfig()
    )
    assert out[0][0].text == "late #0" and server.attempts("late") == 2
    engine.close()
