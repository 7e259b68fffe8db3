"""Scoring + filtering on hand-built bootstrap output, with rule-based rewards (no model)."""

from __future__ import annotations

import pytest

from bolt.config_loader import load_config
from bolt.filtering.stage import run_filter, run_score, score_fingerprint, score_rows
from bolt.format_rules import RepetitionRule
from bolt.longcot import render_longcot
from bolt.records import Generation, Query, Reject, ScoredGeneration, SftExample
from bolt.rewards.live import rewards_for
from bolt.stages import Stage
from bolt.store import ArtifactStore, Manifest
from tests.conftest import TINY_CONFIG

pytestmark = pytest.mark.integration

REWARDS = [
    "filter.rewards=[{kind: math_verify, name: correct, weight: 1.0}, {kind: format, name: format, weight: 0.5}]",
    "filter.percentile=30",
]


def _gen(qid: str, i: int, text: str, finish: str = "stop", tokens: int = 20) -> Generation:
    return Generation(
        query_id=qid,
        sample_index=i,
        example_ids=["ex01", "ex02", "ex03"],
        prompt_tokens=100,
        raw_text=text,
        finish_reason=finish,
        output_tokens=tokens,
        engine="vllm",
        model="m",
        seed=0,
    )


def _answer(value: str) -> str:
    return render_longcot(
        f"Let me compute carefully. I think the result is {value}.",
        f"The answer is $\\boxed{{{value}}}$.",
    )


def _setup(tmp_path):
    cfg = load_config(TINY_CONFIG, [f"storage.root=file://{tmp_path}/a", *REWARDS])
    store = ArtifactStore.from_config(cfg.storage)
    queries = [
        Query(
            id="q1",
            text="What is 1/2 + 1/4?",
            source="t",
            topic="math",
            reference_answer="\\frac{3}{4}",
        ),
        Query(id="q2", text="What is 6*7?", source="t", topic="math", reference_answer="42"),
        Query(id="q3", text="What is 2+2?", source="t", topic="math", reference_answer="4"),
    ]
    data = store.commit(
        Manifest(
            stage="data",
            fingerprint="d0",
            code_version="1",
            config={},
            shards=[store.write_shard("data", "d0", 0, queries)],
        )
    )
    rows = [
        _gen("q1", 0, _answer("0.75")),  # right (equivalent form)
        _gen("q1", 1, _answer("\\frac{1}{2}")),  # wrong
        _gen("q2", 0, _answer("41")),  # wrong
        _gen("q2", 1, "no tags at all"),  # format failure
        _gen("q3", 0, _answer("4"), finish="length", tokens=256),  # truncated
        _gen("q3", 1, "<thoughts>x</thoughts>"),  # missing response
    ]
    shards = [
        store.write_shard("bootstrap", "b0", 0, rows[:3]),
        store.write_shard("bootstrap", "b0", 1, rows[3:]),
    ]
    boot = store.commit(
        Manifest(stage="bootstrap", fingerprint="b0", code_version="1", config={}, shards=shards)
    )
    return cfg, store, data, boot


def test_score_then_filter(tmp_path):
    cfg, store, data, boot = _setup(tmp_path)
    scored = run_score(
        cfg, store, boot, data, lambda: rewards_for(cfg, cfg.filter.rewards, Stage.score)
    )
    rows = store.read_records(scored, ScoredGeneration)
    by_key = {(r.generation.query_id, r.generation.sample_index): r for r in rows}
    assert (
        by_key[("q1", 0)].rewards == {"correct": 1.0, "format": 1.0}
        and by_key[("q1", 0)].reward == 1.5
    )
    assert by_key[("q1", 1)].reward == by_key[("q2", 0)].reward == 0.5
    assert by_key[("q2", 1)].reject_reason == "missing_thoughts_tag"
    assert by_key[("q3", 0)].reject_reason == "truncated_at_token_limit"
    assert by_key[("q3", 1)].reject_reason == "missing_response_tag"

    selected = run_filter(cfg, store, scored, data)
    # valid rewards [1.5, 0.5, 0.5]: p30 = 0.5, ties on the threshold are kept; best per query
    examples = list(store.read_records(selected, SftExample))
    assert [(e.query_id, e.id) for e in examples] == [("q1", "q1:0"), ("q2", "q2:0")]
    assert examples[0].messages[-1].content == _answer("0.75")
    reasons = {
        r.source: r.reason for r in store.read_file_records(selected, "rejects.jsonl.gz", Reject)
    }
    assert reasons == {
        "q1:1": "not_best_for_query",
        "q2:1": "failed_format",
        "q3:0": "all_samples_failed_format",
        "q3:1": "all_samples_failed_format",
    }
    assert selected.counts["kept"] == 2 and selected.counts["samples"] == 6

    import datasets

    local = store.get_dir(selected, "hf_dataset", tmp_path / "hf")
    assert datasets.load_from_disk(str(local))[0]["messages"][1]["role"] == "assistant"
    assert run_filter(cfg, store, scored, data) == selected  # committed: a rerun is free


def test_scoring_resumes_by_shard(tmp_path):
    cfg, store, data, boot = _setup(tmp_path)
    calls = []

    def rewards():
        calls.append(1)
        return rewards_for(cfg, cfg.filter.rewards, Stage.score)

    fp = score_fingerprint(cfg, boot.fingerprint)
    first = list(store.read_shard("bootstrap", "b0", boot.shards[0], Generation))
    queries = {q.id: q for q in store.read_records(data, Query)}
    rows, _ = score_rows(first, queries, rewards(), max_new_tokens=256, repetition=RepetitionRule())
    store.write_shard(Stage.score, fp, 0, rows)  # shard 0 finished before a "crash"
    calls.clear()
    scored = run_score(cfg, store, boot, data, rewards)
    assert len(calls) == 1  # only shard 1 was scored
    assert scored.records == 6
