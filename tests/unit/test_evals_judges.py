"""Judges without a model: RocketEval's score, learned weights, replies in each benchmark's
format, the API judge's cache and failure accounting, and MT-Bench's two-turn answering."""

from __future__ import annotations

import pytest

from bolt.config import SamplingConfig
from bolt.engines.base import Completion, EngineError
from bolt.evals import Benchmark, arena_hard, mt_bench, wildbench
from bolt.evals.answering import answer_items
from bolt.evals.judges import (
    JUDGE_CALL_FAILED,
    ApiJudge,
    ChecklistWeights,
    JudgeRequest,
    JudgeUsage,
    ReplyCache,
    ReplyFormat,
    checklist_score,
    fit_checklist_weights,
    pairwise_label,
    render_reply,
    request_key,
)
from bolt.evals.wildbench import shows_tested_as_a

GREEDY = SamplingConfig(n=1, temperature=0.0, max_new_tokens=16)


def test_checklist_score_is_rocketeval_mean_p_times_9_plus_1():
    assert checklist_score([1.0, 0.0, 1.0, 0.0]) == pytest.approx(5.5)
    assert checklist_score([1.0, 1.0]) == 10.0 and checklist_score([0.0]) == 1.0
    weights = ChecklistWeights((4.0, 2.0), bias=2.0)
    assert checklist_score([0.5, 1.0], weights) == pytest.approx(2 + 2 + 2)
    assert checklist_score([1.0, 1.0], ChecklistWeights((9.0, 9.0), 2.0)) == 10.0  # clipped
    with pytest.raises(ValueError, match="2 weights for 3"):
        checklist_score([1, 1, 1], weights)


def test_fit_checklist_weights_recovers_a_linear_judge():
    rows = [[0, 0], [1, 0], [0, 1], [1, 1], [0.5, 0.5]]
    targets = [2 + 3 * a + 5 * b for a, b in rows]
    fitted = fit_checklist_weights(rows, targets, l2=1e-9)
    assert fitted.weights == pytest.approx((3.0, 5.0)) and fitted.bias == pytest.approx(2.0)
    flat = fit_checklist_weights(rows, targets, l2=1e9)  # all penalty: the mean score
    assert flat.bias == pytest.approx(sum(targets) / len(targets), rel=1e-6)


@pytest.mark.parametrize(
    ("gap", "label"),
    [(0.0, 0), (0.49, 0), (-0.49, 0), (0.5, 1), (-0.5, -1), (1.99, 1), (2.0, 2), (-3.0, -2)],
)
def test_pairwise_label_margins(gap, label):
    assert pairwise_label(gap, tie_margin=0.5, strong_margin=2.0) == label


def test_local_replies_read_by_each_benchmarks_parser():
    assert mt_bench.parse_rating(render_reply(ReplyFormat.rating, [7.25], 0.5, 2)) == 7.25
    score = render_reply(ReplyFormat.wb_score, [6.5], 0.5, 2)
    assert wildbench.parse_score_judgement(score) == 6.5
    verdict = render_reply(ReplyFormat.verdict, [3.0, 8.0], 0.5, 2)
    assert arena_hard.parse_verdict(verdict) is arena_hard.Verdict.b_much_better
    choice = render_reply(ReplyFormat.wb_choice, [6.0, 5.0], 0.5, 2)
    assert wildbench.parse_pairwise_choice(choice) is wildbench.PairwiseChoice.a_better


def test_request_key_covers_the_whole_request():
    messages = [{"role": "user", "content": "grade this"}]
    key = request_key("judge", messages, GREEDY)
    assert key == request_key("judge", [dict(m) for m in messages], GREEDY)
    assert key != request_key("other-judge", messages, GREEDY)
    assert key != request_key("judge", [{"role": "user", "content": "grade that"}], GREEDY)
    hotter = GREEDY.model_copy(update={"temperature": 0.7})
    assert key != request_key("judge", messages, hotter)


class FlakyEngine:
    model = "judge"

    def __init__(self, fail_ids=()):
        self.fail_ids, self.calls = set(fail_ids), 0

    def generate(self, requests, sampling, **_):
        self.calls += 1
        (request,) = requests
        if request.id in self.fail_ids:
            raise EngineError("request failed after 3 attempt(s); last status: HTTP 500")
        return [[Completion(request.id, 0, "Rating: [[6]]", "stop", 1000, 100, None)]]


def requests(n: int) -> list[JudgeRequest]:
    return [
        JudgeRequest(
            f"r{i}", [{"role": "user", "content": f"q{i}"}], ReplyFormat.rating, f"q{i}", ("a",)
        )
        for i in range(n)
    ]


def test_api_judge_caches_replies_and_counts_failures(tmp_path):
    usage = JudgeUsage(usd_per_1k_input=0.005, usd_per_1k_output=0.015)
    engine = FlakyEngine(fail_ids={"r2"})
    judge = ApiJudge(engine, ReplyCache(tmp_path), GREEDY, concurrency=2, usage=usage)
    replies = judge.judge(requests(3))
    assert [r.text for r in replies] == ["Rating: [[6]]", "Rating: [[6]]", None]
    assert replies[2].error.startswith(JUDGE_CALL_FAILED)
    assert (usage.calls, usage.failed, usage.prompt_tokens) == (3, 1, 2000)
    assert usage.usd == pytest.approx(2 * (1000 * 0.005 + 100 * 0.015) / 1000)

    healed = FlakyEngine()
    rerun = ApiJudge(healed, ReplyCache(tmp_path), GREEDY, concurrency=2)
    again = rerun.judge(requests(3))
    assert healed.calls == 1  # only the failure is asked again
    assert [r.cached for r in again] == [True, True, False]
    assert (rerun.usage.calls, rerun.usage.cached, rerun.usage.prompt_tokens) == (1, 2, 1000)


def test_wildbench_side_is_drawn_per_item_and_reproducible():
    sides = [shows_tested_as_a(f"s{i}", seed=0) for i in range(64)]
    assert sides == [shows_tested_as_a(f"s{i}", seed=0) for i in range(64)]
    assert 16 < sum(sides) < 48


class RecordingEngine:
    model = "m"

    def __init__(self):
        self.seen = []

    def generate(self, requests, sampling, **_):
        self.seen += [(r, sampling.temperature) for r in requests]
        return [
            [
                Completion(
                    r.id,
                    0,
                    f"<thoughts>t</thoughts><response>A{len(r.messages)}</response>",
                    "stop",
                    5,
                    3,
                    None,
                )
            ]
            for r in requests
        ]


def test_mt_bench_answers_two_turns_with_fastchat_temperatures():
    questions = [q for q in mt_bench.load_questions() if q.category in ("writing", "math")][:1]
    questions += [q for q in mt_bench.load_questions() if q.category == "math"][:1]
    engine = RecordingEngine()
    answers = answer_items(Benchmark.mt_bench, questions, engine, GREEDY, "m")
    assert [len(a.turns) for a in answers] == [2, 2]
    assert answers[0].output_tokens == 6 and answers[0].prompt_tokens == 10
    temperatures = {r.id: t for r, t in engine.seen}
    assert temperatures == {str(questions[0].question_id): 0.7, str(questions[1].question_id): 0.0}
    qid = str(questions[0].question_id)
    second_turn = next(r for r, _ in engine.seen if r.id == qid and len(r.messages) == 3)
    # the first answer goes back into the conversation without its thoughts
    assert second_turn.messages[1] == {"role": "assistant", "content": "A1"}
    assert second_turn.messages[2]["content"] == questions[0].turns[1]
