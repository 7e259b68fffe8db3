"""Each benchmark's judging: answers -> judge requests -> graded records.

The prompts are the benchmarks' own (FastChat's single-answer prompts for MT-Bench,
WildBench's score.v2 and pairwise.v2 templates, arena-hard-auto v0.1's system prompt
and both answer orders); the replies are read by the parsers of ``bolt.evals.<name>``.
ZebraLogic and MATH500 are graded by rule, without a judge. A judge call that failed
after its retries gives a record with ``parse_error = judge_call_failed`` and no score:
counted in the report, never scored as zero and never dropped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, assert_never

from bolt.evals import Benchmark, arena_hard, math500, mt_bench, wildbench, zebralogic
from bolt.evals.data import item_id
from bolt.evals.judges import JUDGE_CALL_FAILED, Judge, JudgeReply, JudgeRequest, ReplyFormat
from bolt.longcot import strip_thoughts
from bolt.prompts import render_template
from bolt.records import EvalAnswer, EvalItemResult

NEEDS_BASELINE = frozenset({Benchmark.arena_hard})
JUDGED = frozenset({Benchmark.mt_bench, Benchmark.wildbench, Benchmark.arena_hard})


@dataclass(frozen=True)
class JudgingContext:
    model: str
    judge: Judge | None
    response_only: bool
    baseline_model: str | None = None
    baseline: dict[str, EvalAnswer] | None = None
    seed: int = 0

    def shown(self, text: str) -> str:
        """What the judge sees of an answer."""
        return strip_thoughts(text) if self.response_only else text


def _with_reply(result: EvalItemResult, reply: JudgeReply) -> EvalItemResult:
    if reply.error is None:
        return result
    return result.model_copy(update={"parse_error": JUDGE_CALL_FAILED, "judge_raw": reply.error})


def _run(
    ctx: JudgingContext,
    requests: list[JudgeRequest],
    build: list[Callable[[str], EvalItemResult]],
) -> list[EvalItemResult]:
    """Judge ``requests``; ``build[i]`` turns the i-th reply's text into its record."""
    if ctx.judge is None:
        raise ValueError("this benchmark needs a judge")
    replies = ctx.judge.judge(requests)
    return [_with_reply(b(r.text or ""), r) for b, r in zip(build, replies, strict=True)]


# ------------------------------------------------------------------------ MT-Bench


def _mt_bench(
    ctx: JudgingContext, items: Sequence[mt_bench.MtBenchQuestion], answers: dict[str, EvalAnswer]
) -> list[EvalItemResult]:
    prompts = mt_bench.load_judge_prompts()
    requests, build = [], []
    for q in items:
        answer = answers[str(q.question_id)]
        shown = tuple(ctx.shown(t) for t in answer.turns)
        for turn in (1, 2):
            system, user = mt_bench.render_judge_prompt(
                prompts[mt_bench.judge_prompt_name(q.category, turn)], q, shown, turn
            )
            query = (
                q.turns[0]
                if turn == 1
                else (f"{q.turns[0]}\n\n(The assistant answered: {shown[0]})\n\n{q.turns[1]}")
            )
            requests.append(
                JudgeRequest(
                    id=f"mt_bench/{q.question_id}/turn{turn}",
                    messages=[
                        {"role": "system", "content": system},
                        {"role": "user", "content": user},
                    ],
                    reply_format=ReplyFormat.rating,
                    query=query,
                    answers=(shown[turn - 1],),
                    reference=q.reference_answers[turn - 1] if q.reference_answers else None,
                )
            )
            build.append(
                lambda raw, q=q, turn=turn, answer=answer, shown=shown: mt_bench.judged_result(
                    q, turn, ctx.model, answer.turns[turn - 1], raw, shown[turn - 1]
                )
            )
    return _run(ctx, requests, build)


# ----------------------------------------------------------------------- WildBench


def _wildbench_fields(item: wildbench.WildBenchItem) -> dict[str, str]:
    """History, current query and checklist, as WildBench's ``eval.py`` fills its templates."""
    turns = item.conversation_input
    history = "".join(f"{t.role.upper()}: {t.content}\n\n" for t in turns[:-1])
    return {
        "history": history.strip(),
        "user_query": turns[-1].content,
        "checklist": "\n".join(f"- {c}" for c in item.checklist),
    }


def shows_tested_as_a(session_id: str, seed: int) -> bool:
    """The side of the tested model, drawn per item (WildBench draws it at random) and
    seeded, so a rerun asks the judge exactly the same question."""
    return hashlib.sha256(f"{seed}:{session_id}".encode()).digest()[0] % 2 == 0


def _wildbench(
    ctx: JudgingContext, items: Sequence[wildbench.WildBenchItem], answers: dict[str, EvalAnswer]
) -> list[EvalItemResult]:
    requests, build = [], []
    for item in items:
        fields = _wildbench_fields(item)
        text = answers[item.session_id].turns[0]
        shown = ctx.shown(text)
        requests.append(
            JudgeRequest(
                id=f"wildbench/{item.session_id}/score",
                messages=[
                    {
                        "role": "user",
                        "content": render_template(
                            "evals/wildbench_score.j2", model_output=shown, **fields
                        ),
                    }
                ],
                reply_format=ReplyFormat.wb_score,
                query=fields["user_query"],
                answers=(shown,),
                checklist=tuple(item.checklist),
            )
        )
        build.append(
            lambda raw, item=item, text=text, shown=shown: wildbench.score_result(
                item, ctx.model, text, raw, shown
            )
        )
        if ctx.baseline is None or ctx.baseline_model is None:
            continue
        reference = ctx.shown(ctx.baseline[item.session_id].turns[0])
        a_is_tested = shows_tested_as_a(item.session_id, ctx.seed)
        a, b = (shown, reference) if a_is_tested else (reference, shown)
        requests.append(
            JudgeRequest(
                id=f"wildbench/{item.session_id}/pairwise",
                messages=[
                    {
                        "role": "user",
                        "content": render_template(
                            "evals/wildbench_pairwise.j2", candidate_a=a, candidate_b=b, **fields
                        ),
                    }
                ],
                reply_format=ReplyFormat.wb_choice,
                query=fields["user_query"],
                answers=(a, b),
                checklist=tuple(item.checklist),
            )
        )
        build.append(
            lambda raw, item=item, text=text, shown=shown, ref=reference, side=a_is_tested: (
                wildbench.pairwise_result(
                    item, ctx.model, text, ctx.baseline_model or "", ref, side, raw, shown
                )
            )
        )
    return _run(ctx, requests, build)


# ---------------------------------------------------------------------- Arena-Hard


def style_of(text: str) -> arena_hard.StyleFeatures:
    """Style features with length in whitespace tokens (one tokenizer for both sides)."""
    return arena_hard.markdown_style(text, len(text.split()))


def _arena_hard(
    ctx: JudgingContext,
    items: Sequence[arena_hard.ArenaHardQuestion],
    answers: dict[str, EvalAnswer],
) -> list[EvalItemResult]:
    if ctx.baseline is None:
        return []
    system = render_template("evals/arena_hard_system.j2").strip()
    requests, build = [], []
    for q in items:
        text = answers[q.question_id].turns[0]
        shown = ctx.shown(text)
        reference = ctx.shown(ctx.baseline[q.question_id].turns[0])
        for game, side in arena_hard.MODEL_SIDE_BY_GAME.items():
            a, b = (shown, reference) if side is arena_hard.Side.a else (reference, shown)
            user = render_template(
                "evals/arena_hard_user.j2", question=q.prompt, answer_a=a, answer_b=b
            )
            requests.append(
                JudgeRequest(
                    id=f"arena_hard/{q.question_id}/game{game}",
                    messages=[
                        {"role": "system", "content": system},
                        {"role": "user", "content": user},
                    ],
                    reply_format=ReplyFormat.verdict,
                    query=q.prompt,
                    answers=(a, b),
                )
            )
            build.append(
                lambda raw, q=q, game=game, text=text, shown=shown, ref=reference: (
                    arena_hard.game_result(
                        q.question_id,
                        game,
                        ctx.model,
                        text,
                        raw,
                        style_of(shown),
                        style_of(ref),
                        shown,
                    )
                )
            )
    return _run(ctx, requests, build)


# ------------------------------------------------------------------------- dispatch


def grade(
    benchmark: Benchmark, items: Sequence[Any], answers: Sequence[EvalAnswer], ctx: JudgingContext
) -> list[EvalItemResult]:
    """Graded records of ``answers`` to ``items`` (both in the same order of ids)."""
    by_id = {a.item_id: a for a in answers}
    items = [i for i in items if item_id(benchmark, i) in by_id]
    match benchmark:
        case Benchmark.mt_bench:
            return _mt_bench(ctx, items, by_id)
        case Benchmark.wildbench:
            return _wildbench(ctx, items, by_id)
        case Benchmark.arena_hard:
            return _arena_hard(ctx, items, by_id)
        case Benchmark.zebralogic:
            return [
                zebralogic.graded_result(p, ctx.model, by_id[p.id].turns[0], ctx.response_only)
                for p in items
            ]
        case Benchmark.math500:
            return math500.graded_results(
                items,
                ctx.model,
                [by_id[p.unique_id].turns[0] for p in items],
                response_only=ctx.response_only,
            )
        case _:
            assert_never(benchmark)
