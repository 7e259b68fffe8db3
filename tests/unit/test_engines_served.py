"""Served models: kind=openai asks a server for a catalog model by its served name and
loads nothing locally; the server's model list and tokenizer stand in for local weights.

Runs against the scripted chat-completions server of test_engines_openai (real HTTP on
127.0.0.1), told to list models (GET /v1/models) and to tokenize (POST /tokenize) as a
vLLM server does. The real vLLM server is in tests/integration/test_engines_served.py.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from bolt.config import EngineConfig, ModelEntry, SamplingConfig, output_fields
from bolt.config_loader import load_config
from bolt.engines import live
from bolt.engines.base import ChatRequest, EngineError
from bolt.engines.openai_engine import OpenAIEngine, estimate_tokens
from bolt.resources import POOL
from bolt.stages import Stage
from tests.conftest import TINY_CONFIG
from tests.unit.test_engines_openai import FAST, ScriptedServer

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}]


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    threading.Thread(target=server.httpd.serve_forever, daemon=True).start()
    yield server
    server.httpd.shutdown()


def engine(server: ScriptedServer, model: str = "served-name") -> OpenAIEngine:
    cfg = EngineConfig(kind="openai", base_url=server.url)
    return OpenAIEngine(cfg, model, model_key="models.catalog.teacher", policy=FAST)


def ask(engine: OpenAIEngine, text: str = "hello"):
    request = ChatRequest("r", [{"role": "user", "content": text}])
    return engine.generate([request], SamplingConfig(max_new_tokens=8))


def test_a_vllm_server_counts_prompt_tokens_exactly_and_once_per_prompt(server):
    server.listed = [{"id": "served-name", "object": "model", "owned_by": "vllm"}]
    e = engine(server)
    assert e.count_prompt_tokens(MESSAGES) == 14  # the server's count, not the estimate
    assert e.count_prompt_tokens(MESSAGES) == 14
    assert len(server.tokenized) == 1  # cached: a shard's retry asks for the same prompts
    sent = server.tokenized[0]
    assert sent["model"] == "served-name" and sent["add_generation_prompt"] is True
    assert ask(e)[0][0].text == "hello #0"
    assert server.received[-1]["model"] == "served-name"


def test_a_server_that_lists_no_models_or_is_not_vllm_gets_the_estimate(server):
    assert engine(server).count_prompt_tokens(MESSAGES) == estimate_tokens(MESSAGES)
    server.listed = [{"id": "served-name", "object": "model", "owned_by": "openai"}]
    assert engine(server).count_prompt_tokens(MESSAGES) == estimate_tokens(MESSAGES)
    assert server.tokenized == []


def test_a_name_the_server_does_not_serve_fails_naming_the_catalog_key(server):
    server.listed = [{"id": "smollm2-served", "object": "model", "owned_by": "vllm"}]
    with pytest.raises(EngineError) as caught:
        ask(engine(server, "wrong-name"))
    message = str(caught.value)
    assert "models.catalog.teacher.served_name" in message and "smollm2-served" in message
    assert server.received == []  # failed before any chat request


def test_a_model_not_found_answer_is_not_retried_and_names_the_key(server):
    server.scripts["lost"] = [404]  # a server that lists nothing, then answers 404
    with pytest.raises(EngineError) as caught:
        ask(engine(server, "x"), "lost")
    assert "models.catalog.teacher.served_name" in str(caught.value)
    assert "does not exist" in str(caught.value) and server.attempts("lost") == 1


def test_served_name_leaves_the_fingerprint_and_has_a_fallback_chain():
    entry = ModelEntry(hf_id="org/model", served_name="srv")
    assert "served_name" not in output_fields(entry)
    assert output_fields(entry) == output_fields(ModelEntry(hf_id="org/model"))
    cfg = load_config(
        TINY_CONFIG,
        [
            "models.catalog.hub.hf_id=org/model",
            "models.catalog.named.hf_id=org/model",
            "models.catalog.named.served_name=srv",
        ],
    )
    assert live.served_name(cfg.models, "named") == "srv"
    assert live.served_name(cfg.models, "hub") == "org/model"
    assert live.served_name(cfg.models, "smollm2-135m-instruct") == "smollm2-135m-instruct"


def test_engine_for_openai_sends_the_served_name_and_resolves_nothing(server, monkeypatch):
    def no_weights(*args, **kwargs):
        raise AssertionError("kind=openai must not resolve (download) a model")

    monkeypatch.setattr(live, "resolve_model", no_weights)
    cfg = load_config(
        TINY_CONFIG,
        [
            "engine.kind=openai",
            f"engine.base_url={server.url}",
            "models.catalog.smollm2-135m-instruct.served_name=smollm2-served",
        ],
    )
    try:
        teacher = live.engine_for(
            cfg, "smollm2-135m-instruct", cfg.engine_settings(Stage.bootstrap)
        )
        assert teacher.model == "smollm2-served"
        assert (
            live.engine_for(cfg, "smollm2-135m-instruct", cfg.engine_settings(Stage.bootstrap))
            is teacher
        )
        ask(teacher)
        assert server.received[-1]["model"] == "smollm2-served"
    finally:
        POOL.release()


def test_the_old_timeout_name_still_loads():
    assert EngineConfig(timeout_s=5).request_timeout_s == 5
    cfg = load_config(TINY_CONFIG, ["engine.timeout_s=0.5"])
    assert cfg.engine.request_timeout_s == 0.5
    with pytest.raises(ValueError, match="old name"):
        EngineConfig(timeout_s=5, request_timeout_s=6)
    defaults = EngineConfig()
    assert (defaults.request_timeout_s, defaults.shard_timeout_s) == (600, 86400)
    assert {"request_timeout_s", "shard_timeout_s"}.isdisjoint(output_fields(defaults))
