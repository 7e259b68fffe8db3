"""The evaluation stage end to end on the local store, with a scripted engine and judge:
every benchmark answered, graded and reported; a rerun redoes nothing."""

from __future__ import annotations

import pytest

from bolt.config import JudgeConfig, JudgeKind, SamplingConfig
from bolt.engines.base import ChatRequest, Completion, EngineStats
from bolt.evals import Benchmark
from bolt.evals.judges import JudgeReply, JudgeUsage, ReplyFormat
from bolt.evals.stage import (
    Baseline,
    EvalModel,
    load_benchmarks,
    run_answers,
    run_eval,
    summaries_of,
)
from bolt.stages import Stage
from bolt.store import ArtifactStore

pytest.importorskip("math_verify")

JUDGE = "smollm2-135m-instruct"  # the tiny config's eval.judge

REPLIES = {
    ReplyFormat.rating: "Rating: [[7]]",
    ReplyFormat.wb_score: '{"score": "6"}',
    ReplyFormat.wb_choice: '{"choice": "A+"}',
    ReplyFormat.verdict: "My final verdict is [[A>B]]",
}


class ScriptedEngine:
    name, model, model_path = "scripted", "scripted", "scripted"

    def __init__(self, text: str):
        self.text, self.requests = text, 0

    def generate(self, requests: list[ChatRequest], sampling: SamplingConfig, **_):
        self.requests += len(requests)
        return [[Completion(r.id, 0, self.text, "stop", 10, 5, None)] for r in requests]

    def count_prompt_tokens(self, messages) -> int:
        return 10

    stats = EngineStats()

    def close(self) -> None:
        pass


class ScriptedJudge:
    """Answers every request in its format; one MT-Bench turn gets garbage, one call fails."""

    name = "scripted"

    def __init__(self):
        self.usage, self.seen = JudgeUsage(), []

    def judge(self, requests):
        replies = []
        for r in requests:
            self.seen.append(r)
            if r.id == "mt_bench/81/turn2":
                reply = JudgeReply(r.id, "I cannot rate this.")
            elif r.id == "mt_bench/82/turn1":
                reply = JudgeReply(r.id, None, error="judge_call_failed: HTTP 500")
            else:
                reply = JudgeReply(
                    r.id, REPLIES[r.reply_format], prompt_tokens=100, output_tokens=10
                )
            self.usage.add(reply)
            replies.append(reply)
        return replies


@pytest.fixture
def cfg(tiny_config, tmp_path):
    data = {
        "wildbench": "data/evals/wildbench.handmade.jsonl",
        "arena_hard": "data/evals/official/arena-hard/v0.1/question.jsonl",
        "zebralogic": "data/evals/zebralogic.handmade.jsonl",
        "math500": "data/evals/math500.handmade.jsonl",
    }
    return tiny_config.model_copy(
        update={
            "storage": tiny_config.storage.model_copy(update={"root": f"file://{tmp_path}/art"}),
            "eval": tiny_config.eval.model_copy(
                update={
                    "benchmarks": list(Benchmark),
                    "data": {Benchmark(k): v for k, v in data.items()},
                    "max_items": 3,
                    "shard_size": 2,
                }
            ),
        }
    )


def test_stage_answers_grades_reports_and_resumes(cfg):
    store = ArtifactStore.from_config(cfg.storage)
    items = load_benchmarks(cfg)
    assert [len(v) for v in items.values()] == [3, 3, 3, 2, 3]
    model = EvalModel("tested", "none", {"name": "tested"})
    base = EvalModel("base", "none", {"name": "base"})
    engine = ScriptedEngine(
        "<thoughts>long thinking</thoughts><response>Answer \\boxed{2} "
        '{"solution": {"House 1": {"Name": "Arnold", "Drink": "tea"}}}</response>'
    )
    answers = run_answers(cfg, store, model, items, lambda: engine)
    base_answers = run_answers(cfg, store, base, items, lambda: ScriptedEngine("Plain answer."))
    assert engine.requests == 3 * 2 + 3 + 3 + 2 + 3  # MT-Bench asks two turns
    judge = ScriptedJudge()
    base_eval = run_eval(cfg, store, base, items, base_answers, lambda benchmark: judge)
    baseline = Baseline(base, base_answers, base_eval)
    result = run_eval(cfg, store, model, items, answers, lambda benchmark: judge, baseline)

    # the manifest names every input its fingerprint hashes, the baseline's eval included
    assert result.upstream == {
        "answers": answers.fingerprint,
        "baseline_answers": base_answers.fingerprint,
        "baseline_eval": base_eval.fingerprint,
    }
    by_benchmark = {s.benchmark: s for s in summaries_of(result)}
    mt = by_benchmark[Benchmark.mt_bench]
    assert (mt.n_items, mt.n_unparsable, mt.n_judge_failed) == (6, 1, 1)
    assert mt.metrics["mt_bench"] == 7.0  # the two unscored turns are out, not zeros
    assert mt.mean_judged_chars < mt.mean_answer_chars  # thoughts hidden from the judge
    wb = by_benchmark[Benchmark.wildbench]
    assert wb.metrics["wb_score"] == pytest.approx((6 - 5) * 2 * 10)
    assert wb.metrics["wb_reward"] is not None
    assert by_benchmark[Benchmark.arena_hard].metrics["arena_hard"] == pytest.approx(50.0)
    assert by_benchmark[Benchmark.math500].metrics["accuracy"] == pytest.approx(100 / 3)
    assert by_benchmark[Benchmark.zebralogic].n_items == 2
    assert {f.path for f in result.files} == {
        "headline.png",
        "summary.json",
        "report.md",
        "report.csv",
    }
    assert result.stats["judge_usage"]["judge_failed"] == 1
    # Arena-Hard is judged against the official gpt-4-0314 answers (tiny config), its
    # style control on our battles alone: labelled local, no paper figure beside it
    arena = by_benchmark[Benchmark.arena_hard]
    assert (arena.version, arena.baseline, arena.judge) == ("v0.1", "gpt-4-0314", JUDGE)
    assert "arena_hard_sc" in arena.local_only
    rows = {r["metric"]: r for r in result.stats["table"]}
    assert rows["arena_hard_sc (local battles)"]["BOLT-Llama-3.1-8B (paper)"] is None
    # WildBench v2 judged by the tiny judge: not the published judge, so no paper figure
    assert (wb.version, wb.baseline, wb.judge) == ("v2", "base", JUDGE)
    assert rows["wb_score_task_macro"]["BOLT-Llama-3.1-8B (paper)"] is None
    assert "base" in rows["wb_score_task_macro"]

    # the same run again: everything from the store, no engine or judge call
    seen = len(judge.seen)
    again = run_answers(cfg, store, model, items, lambda: pytest.fail("engine started"))
    assert again.fingerprint == answers.fingerprint
    assert run_eval(cfg, store, model, items, answers, lambda benchmark: judge, baseline) == result
    assert len(judge.seen) == seen
    assert {m.stage for m in store.list_manifests()} == {Stage.eval_answers, Stage.eval}

    # with WildBench's published judge named for it, the paper's figure stands beside ours
    published = {Benchmark.wildbench: JudgeConfig(kind=JudgeKind.api, model="gpt-4o-2024-05-13")}
    cfg2 = cfg.model_copy(update={"eval": cfg.eval.model_copy(update={"judges": published})})
    rejudged = run_eval(cfg2, store, model, items, answers, lambda benchmark: judge, baseline)
    assert rejudged.fingerprint != result.fingerprint
    rows = {r["metric"]: r for r in rejudged.stats["table"]}
    assert rows["wb_score_task_macro"]["BOLT-Llama-3.1-8B (paper)"] == 42.96
    assert rows["wb_score_task_macro"]["judge"] == "gpt-4o-2024-05-13"
    assert rows["mt_bench"]["judge"] == JUDGE  # the other benchmarks keep eval.judge
