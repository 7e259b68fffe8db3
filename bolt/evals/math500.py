"""MATH500: the 500-problem subset of MATH (Hendrycks et al., 2021) chosen by Lightman
et al. (2023, "Let's Verify Step by Step"), graded by final-answer equivalence.

The answer is the content of the last ``\\boxed{...}`` of the response (an empty box is
no answer), compared with the reference answer by Hugging Face's ``math-verify``, with
the official MATH graders' rules as fallbacks (Hendrycks' normalised strings, the
PRM800K grader): see :mod:`bolt.math_answers`, which the math-verify reward shares, so
training and evaluation agree on what is correct. Each record names the grader that
accepted its answer (``meta["equivalent_by"]``). Accuracy is reported overall, by level
(1-5) and by subject.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bolt.engines.base import Messages
from bolt.evals import Benchmark
from bolt.evals.spec import BenchmarkSpec, JudgingContext, user_turn
from bolt.longcot import strip_thoughts
from bolt.math_answers import judge_answers, last_boxed
from bolt.prompts import render_template
from bolt.records import EvalAnswer, EvalItemResult

NO_BOXED_ANSWER = "no_boxed_answer"


class MathProblem(BaseModel):
    """One item of ``HuggingFaceH4/MATH-500``; extra keys are kept."""

    model_config = ConfigDict(extra="allow", frozen=True)

    unique_id: str
    problem: str
    solution: str = ""
    answer: str
    subject: str
    level: int


class Math500Report(BaseModel):
    accuracy: float = Field(description="Percent correct over all problems; no answer is wrong.")
    by_level: dict[int, float]
    by_subject: dict[str, float]
    n_problems: int
    n_no_answer: int


def graded_results(
    problems: Sequence[MathProblem],
    model: str,
    answers: Sequence[str],
    max_workers: int = 2,
    response_only: bool = True,
) -> list[EvalItemResult]:
    """Grade ``answers[i]`` against ``problems[i]``; the boxed answer is read from the
    response (thoughts stripped, unless ``response_only`` is False), and a response
    without one is wrong and counted."""
    responses = [strip_thoughts(a) if response_only else a for a in answers]
    boxed = [last_boxed(r) for r in responses]
    to_check = [(p.answer, b) for p, b in zip(problems, boxed, strict=True) if b is not None]
    verdicts = iter(judge_answers(to_check, max_workers))
    results = []
    for problem, answer, response, box in zip(problems, answers, responses, boxed, strict=True):
        # verdicts hold only the boxed answers, in order: draw one only for those
        accepted_by = next(verdicts) if box is not None else None
        results.append(
            EvalItemResult(
                benchmark=Benchmark.math500,
                item_id=problem.unique_id,
                model=model,
                answer=answer,
                judged_text=response,
                score=float(accepted_by is not None),
                verdict=box,
                parse_error=None if box is not None else NO_BOXED_ANSWER,
                meta={
                    "level": problem.level,
                    "subject": problem.subject,
                    "equivalent_by": accepted_by,
                },
            )
        )
    return results


def _percent_by(results: list[EvalItemResult], key: str) -> dict:
    groups: dict = defaultdict(list)
    for r in results:
        groups[r.meta[key]].append(r.score)
    return {k: 100.0 * sum(v) / len(v) for k, v in sorted(groups.items())}


def summarize(results: Iterable[EvalItemResult]) -> Math500Report:
    """Accuracy overall, by level and by subject."""
    results = list(results)
    if not results:
        raise ValueError("no graded problems")
    return Math500Report(
        accuracy=100.0 * sum(r.score for r in results) / len(results),
        by_level=_percent_by(results, "level"),
        by_subject=_percent_by(results, "subject"),
        n_problems=len(results),
        n_no_answer=sum(r.parse_error == NO_BOXED_ANSWER for r in results),
    )


# ------------------------------------------------------------ the stage's benchmark


def problem_turn(problem: MathProblem) -> Messages:
    """The problem, and "put your final answer within \\boxed{}" (the grader reads it)."""
    return user_turn(render_template("evals/math500_user.j2", problem=problem.problem))


def grade_answers(
    ctx: JudgingContext, problems: Sequence[MathProblem], answers: dict[str, EvalAnswer]
) -> list[EvalItemResult]:
    """Graded by rule (math-verify and the MATH graders' rules): no judge."""
    texts = [answers[p.unique_id].turns[0] for p in problems]
    return graded_results(problems, ctx.model, texts, response_only=ctx.response_only)


def metrics(
    results: list[EvalItemResult], problems: Sequence[Any], k: int
) -> tuple[dict[str, float | None], dict[str, Any]]:
    m = summarize(results)
    return {"accuracy": m.accuracy}, m.model_dump()


SPEC = BenchmarkSpec(
    name=Benchmark.math500,
    item_type=MathProblem,
    item_id=lambda problem: problem.unique_id,
    messages=problem_turn,
    grade=grade_answers,
    metrics=metrics,
    headline="accuracy",
)
