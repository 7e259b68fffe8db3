"""The API judge against a real OpenAI-compatible HTTP server serving SmolLM2: replies are
cached by request (a rerun makes no call), 500s and garbage are retried, and what still
fails is counted per benchmark, not scored."""

from __future__ import annotations

import pytest

from bolt.config import EngineConfig, EngineKind
from bolt.engines.openai_engine import OpenAIEngine, RetryPolicy
from bolt.evals import Benchmark, mt_bench
from bolt.evals.judges import JUDGE_CALL_FAILED, ApiJudge, JudgeUsage, ReplyCache, judge_sampling
from bolt.evals.judging import grade
from bolt.evals.report import summarize
from bolt.evals.spec import JudgingContext
from bolt.records import EvalAnswer
from tests.conftest import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(smollm2_path):
    import torch

    from tests.openai_stub_server import StubServer

    torch.set_num_threads(1)
    with StubServer(str(smollm2_path), free_port(), max_output_tokens=24) as running:
        yield running


def api_judge(cfg, server, cache_dir, retries=2) -> ApiJudge:
    engine_cfg = EngineConfig(
        kind=EngineKind.openai, base_url=server.base_url, timeout_s=60, max_retries=retries
    )
    # tiny backoff: the retry schedule itself is unit-tested; here the server is real
    engine = OpenAIEngine(engine_cfg, "smollm2", policy=RetryPolicy(retries, base_s=0.01))
    judge = cfg.eval.judge.model_copy(update={"max_new_tokens": 24})
    return ApiJudge(
        engine,
        ReplyCache(cache_dir),
        judge_sampling(judge),
        concurrency=2,
        usage=JudgeUsage(usd_per_1k_input=1.0, usd_per_1k_output=2.0),
    )


def mt_answers(questions) -> list[EvalAnswer]:
    return [
        EvalAnswer(
            benchmark="mt_bench",
            item_id=str(q.question_id),
            model="m",
            turns=["<thoughts>hmm</thoughts><response>Short answer.</response>", "Second answer."],
            finish_reasons=["stop", "stop"],
            prompt_tokens=0,
            output_tokens=0,
        )
        for q in questions
    ]


def test_cached_rerun_makes_no_call_and_failures_are_counted(tiny_config, server, tmp_path):
    questions = mt_bench.load_questions()[:2]
    answers = mt_answers(questions)

    def run(judge):
        ctx = JudgingContext(model="m", judge=judge, response_only=True)
        return grade(Benchmark.mt_bench, questions, answers, ctx)

    first = api_judge(tiny_config, server, tmp_path / "cache")
    results = run(first)
    assert server.state.calls == 4 and first.usage.calls == 4 and first.usage.failed == 0
    assert first.usage.prompt_tokens > 0 and first.usage.usd > 0
    assert all(r.judge_raw and r.parse_error != JUDGE_CALL_FAILED for r in results)
    assert "<thoughts>" not in results[0].judged_text

    again = api_judge(tiny_config, server, tmp_path / "cache")
    assert [r.judge_raw for r in run(again)] == [r.judge_raw for r in results]
    assert server.state.calls == 4  # not one new call
    assert (again.usage.calls, again.usage.cached, again.usage.usd) == (4 - 4, 4, 0.0)

    # a 500 and a garbage body, then success: retried, nothing lost
    server.state.faults.extend(["500", "garbage"])
    flaky = api_judge(tiny_config, server, tmp_path / "cache-2")
    ctx = JudgingContext(model="m", judge=flaky, response_only=True)
    retried = grade(Benchmark.mt_bench, questions[:1], answers[:1], ctx)
    assert flaky.usage.failed == 0 and all(r.parse_error != JUDGE_CALL_FAILED for r in retried)
    assert server.state.calls == 4 + 2 + 2

    # a server that only answers 500s or garbage: retried, then counted as failures
    for fault in ("500", "garbage"):
        server.state.always = fault
        broken = api_judge(tiny_config, server, tmp_path / f"cache-{fault}")
        ctx = JudgingContext(model="m", judge=broken, response_only=True)
        failed = grade(Benchmark.mt_bench, questions, answers, ctx)
        server.state.always = None
        assert broken.usage.failed == 4
        assert all(r.parse_error == JUDGE_CALL_FAILED and r.score is None for r in failed)
        summary = summarize(Benchmark.mt_bench, "m", failed, questions, k=500)
        assert (summary.n_judge_failed, summary.n_unparsable) == (4, 0)
        assert summary.metrics["mt_bench"] is None  # no score, not a zero
    # failures are not cached: the next run asks again
    assert not any((tmp_path / "cache-500").rglob("*.json"))
