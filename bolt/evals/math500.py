"""MATH500: the 500-problem subset of MATH (Hendrycks et al., 2021) chosen by Lightman
et al. (2023, "Let's Verify Step by Step"), graded by final-answer equivalence.

The answer is the content of the last ``\\boxed{...}`` (or ``\\fbox{...}``) of the
response, braces balanced, as Hendrycks' ``last_boxed_only_string`` takes it; it is
compared with the reference answer by Hugging Face's ``math-verify`` (``parse`` +
``verify``), which knows that ``\\frac{1}{2}`` = ``0.5``, that ``x = 2`` answers ``2``,
and the like. Accuracy is reported overall, by level (1-5) and by subject.

math-verify bounds its own parsing and comparison time with ``signal.alarm``, which
only works in a process's main thread; so every check runs in a worker process of a
``ProcessPoolExecutor`` (whose tasks run on the worker's main thread), which also keeps
a pathological expression from stalling the caller.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

from pydantic import BaseModel, ConfigDict, Field

from bolt.evals import Benchmark
from bolt.longcot import strip_thoughts
from bolt.records import EvalItemResult

NO_BOXED_ANSWER = "no_boxed_answer"
CHECK_TIMEOUT_S = 5  # math-verify's own default for parse and for verify

_BOX_COMMAND = re.compile(r"\\(?:boxed|fbox)(?![a-zA-Z])")


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


def last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}``/``\\fbox{...}`` of ``text``, nested
    braces included; also ``\\boxed 5`` (a space, no braces), as Hendrycks' MATH code
    accepts. None when there is none or its braces never close."""
    matches = list(_BOX_COMMAND.finditer(text))
    if not matches:
        return None
    rest = text[matches[-1].end() :]
    if rest.startswith(" "):
        return rest[1:].split("$", 1)[0].strip() or None
    if not rest.startswith("{"):
        return None
    depth = 0
    for i, char in enumerate(rest):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth == 0:
            return rest[1:i].strip()
    return None


def is_equivalent(reference: str, predicted: str) -> bool:
    """math-verify's verdict on two answers, each parsed as the content of a ``\\boxed{}``
    so that both go through its LaTeX extraction. Call it in a main thread (its timeouts
    are signal-based); ``check_answers`` does that for you."""
    from math_verify import parse, verify  # an optional dependency: the cpu/gpu extras

    gold = parse(f"\\boxed{{{reference}}}", parsing_timeout=CHECK_TIMEOUT_S)
    target = parse(f"\\boxed{{{predicted}}}", parsing_timeout=CHECK_TIMEOUT_S)
    return bool(gold) and bool(target) and verify(gold, target, timeout_seconds=CHECK_TIMEOUT_S)


def check_answers(pairs: Sequence[tuple[str, str]], max_workers: int = 2) -> list[bool]:
    """``is_equivalent`` for each (reference, predicted) pair, in worker processes.

    ``spawn`` workers: forking a process that already runs threads (an engine, a Prefect
    task runner) can deadlock. Spawned workers re-import the caller's ``__main__``, so
    an entry script needs its ``if __name__ == "__main__":`` guard.
    """
    if not pairs:
        return []
    references, predictions = zip(*pairs, strict=True)
    with ProcessPoolExecutor(max_workers=max_workers, mp_context=get_context("spawn")) as pool:
        return list(pool.map(is_equivalent, references, predictions, chunksize=16))


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
    verdicts = iter(check_answers(to_check, max_workers))
    results = []
    for problem, answer, response, box in zip(problems, answers, responses, boxed, strict=True):
        # verdicts hold only the boxed answers, in order: draw one only for those
        correct = box is not None and next(verdicts)
        results.append(
            EvalItemResult(
                benchmark=Benchmark.math500,
                item_id=problem.unique_id,
                model=model,
                answer=answer,
                judged_text=response,
                score=float(correct),
                verdict=box,
                parse_error=None if box is not None else NO_BOXED_ANSWER,
                meta={"level": problem.level, "subject": problem.subject},
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
