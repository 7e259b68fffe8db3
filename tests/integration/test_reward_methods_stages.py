"""configs/tiny-reward-methods.yaml's principles reward through the real stage functions on
SmolLM2-135M-Instruct: the filter's score and filter stages over hand-built LongCoT
answers (a right and a wrong one per query), then the online scores of one iteration
over SmolLM2's own samples. The manifests must count how every verdict was read and set
aside any item without one.

The judge is the suite's one served vLLM on SmolLM2 (tests/vllm_server.py) instead of
the config's in-process vLLM judge: the same model behind the same yes/no judge, asked
for its top log-probabilities through the OpenAI API, without starting a second vLLM
engine beside the suite's. Everything else is the shipped config.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bolt.config import EngineConfig, SamplingConfig
from bolt.config_loader import load_config
from bolt.engines import make_engine
from bolt.engines.base import ChatRequest
from bolt.filtering.selection import DropReason
from bolt.filtering.stage import run_filter, run_score
from bolt.generations import to_generation
from bolt.longcot import render_longcot
from bolt.online.stage import run_scores
from bolt.records import Generation, Query, Reject, ScoredGeneration, decode_jsonl_gz
from bolt.resources import POOL
from bolt.rewards.live import rewards_for
from bolt.stages import Stage
from bolt.store import ArtifactStore, Manifest
from tests.vllm_server import SERVED_NAME

# Measured on the 2-core CI class: about 7 s a test once the shared server is up (its
# start, ~40 s, is paid once by the suite's served-server tests).
pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
QUERIES = [
    Query(id="geo", text="What is the capital of France?", source="t", topic="geography"),
    Query(
        id="code",
        text="Write a Python function that returns the sum of two numbers.",
        source="t",
        topic="coding",
    ),
]
# Hand-built answers, one right and one wrong per query (the judge's verdicts are not
# asserted: a 135M judge tells them apart poorly; how it was read is).
ANSWERS = {
    "geo": ["The capital of France is Paris.", "The capital of France is Madrid."],
    "code": ["def add(a, b):\n    return a + b", "Bananas are rich in potassium."],
}
# Principles per item: two for every query, the code one for the coding query only.
PROMPTS_PER_SAMPLE = {"geo": 2, "code": 3}


@pytest.fixture
def cfg(tmp_path, vllm_server):
    judge = f"{{kind: openai, base_url: {vllm_server.base_url}, max_retries: 1}}"
    yield load_config(
        REPO / "configs/tiny-reward-methods.yaml",
        [
            f"storage.root=file://{tmp_path}/a",
            f"models.catalog.smollm2-135m-instruct.served_name={SERVED_NAME}",
            f"filter.rewards.0.judge_engine={judge}",
            f"online.rewards.0.judge_engine={judge}",
        ],
    )
    POOL.release()


def committed(store: ArtifactStore, stage: str, fp: str, rows: list) -> Manifest:
    info = store.write_shard(stage, fp, 0, rows)
    return store.commit(
        Manifest(stage=stage, fingerprint=fp, code_version="1", config={}, shards=[info])
    )


def assert_counted(counts: dict[str, int], samples: list[Generation]) -> None:
    """Every principle prompt counted once, each verdict read one way, mostly by logprobs."""
    prompts = sum(PROMPTS_PER_SAMPLE[g.query_id] for g in samples)
    judge = {
        k.removeprefix("reward.principles."): v for k, v in counts.items() if "principles" in k
    }
    assert judge["prompts"] == prompts
    assert judge.get("from_logprobs", 0) + judge.get("parsed", 0) == prompts
    # SmolLM2 opens its greedy reply with the verdict word: read from its logprobs.
    assert judge["from_logprobs"] > judge.get("parsed", 0), judge
    assert "milliseconds" not in judge and judge["output_tokens"] > 0


def test_filter_stage_scores_by_principles_from_logprobs_and_sets_unscored_aside(cfg):
    store = ArtifactStore.from_config(cfg.storage)
    samples = [
        Generation(
            query_id=qid,
            sample_index=i,
            prompt_tokens=50,
            raw_text=render_longcot("Let me answer the request directly.", answer),
            output_tokens=30,
            finish_reason="stop",
            engine="hand-built",
            model="hand-built",
        )
        for qid, answers in ANSWERS.items()
        for i, answer in enumerate(answers)
    ]
    boot = committed(store, Stage.bootstrap, "hand-built", samples)
    data = committed(store, Stage.curation, "queries", QUERIES)
    scored = run_score(cfg, store, boot, data, lambda: rewards_for(cfg, cfg.filter.rewards))
    assert scored.counts["scored"] == 4
    assert_counted(scored.counts, samples)

    rows = list(store.read_records(scored, ScoredGeneration))
    assert all(0.0 <= r.rewards["principles"] <= 1.0 for r in rows)
    unscored = [r for r in rows if r.reject_reason is not None]
    items_without = sum(v for k, v in scored.counts.items() if ".items." in k)
    assert len(unscored) == items_without

    selected = run_filter(cfg, store, scored, data)
    dropped = {k: v for k, v in selected.counts.items() if k.startswith("dropped.")}
    assert selected.counts["kept"] + sum(dropped.values()) == 4
    assert dropped.get(f"dropped.{DropReason.NO_VERDICT}", 0) == len(unscored)
    assert (
        selected.counts["reward.principles.prompts"] == scored.counts["reward.principles.prompts"]
    )
    rejects_file = next(f for f in selected.files if f.path == "rejects.jsonl.gz")
    raw = store.backend.get_bytes(store._key(Stage.filter, selected.fingerprint, rejects_file.path))
    no_verdict = [r for r in decode_jsonl_gz(raw, Reject, "rejects") if r.reason == "no_verdict"]
    assert sorted(r.source for r in no_verdict) == sorted(
        f"{r.generation.query_id}:{r.generation.sample_index}" for r in unscored
    )


def test_online_scores_of_smollm2_samples_count_how_each_verdict_was_read(cfg, vllm_server):
    store = ArtifactStore.from_config(cfg.storage)
    served = EngineConfig(kind="openai", base_url=vllm_server.base_url)
    policy = make_engine(served, SERVED_NAME, seed=0)
    sampling = SamplingConfig(n=2, temperature=0.8, top_p=0.95, max_new_tokens=48, seed=0)
    try:
        requests = [ChatRequest(q.id, [{"role": "user", "content": q.text}]) for q in QUERIES]
        outputs = policy.generate(requests, sampling)
        samples = [
            to_generation(q.id, c, policy, 0, prompt_tokens=c.prompt_tokens)
            for q, completions in zip(QUERIES, outputs, strict=True)
            for c in completions
        ]
    finally:
        policy.close()
    prompts = committed(store, Stage.online_prompts, "iteration-1", QUERIES)
    sampled = committed(store, Stage.online_samples, "iteration-1", samples)
    scores = run_scores(
        cfg,
        store,
        sampled,
        prompts,
        lambda: rewards_for(cfg, cfg.online.rewards, Stage.online_scores),
    )
    assert scores.counts["scored"] == 4
    assert_counted(scores.counts, samples)
    rows = list(store.read_records(scores, ScoredGeneration))
    assert {tuple(sorted(r.rewards)) for r in rows} == {("format", "principles")}
    assert all(0.0 <= r.rewards["principles"] <= 1.0 for r in rows)
