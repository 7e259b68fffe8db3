"""What a benchmark is to the evaluation stage: one :class:`BenchmarkSpec` per module.

The stage's generic code (``data``, ``answering``, ``judging``, ``report``, ``stage``)
knows a benchmark only through its spec: how its items are validated and keyed, the chat
the model answers, how answers become graded records, and the numbers the report shows.
So adding a benchmark is one module ``bolt/evals/<name>.py`` that ends in a
``SPEC = BenchmarkSpec(...)``, one line in :data:`bolt.evals.registry.BENCHMARKS`, and
its name in :class:`~bolt.config.BenchmarkName` (which the config validates against).

The pieces every judged benchmark shares live here too: the context a grader runs in,
running a batch of judge requests, and a judge's reply as a record.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from bolt.engines.base import Messages
from bolt.evals import Benchmark
from bolt.evals.judges import JUDGE_CALL_FAILED, Judge, JudgeReply, JudgeRequest
from bolt.longcot import strip_thoughts
from bolt.records import EvalAnswer, EvalItemResult

GREEDY = 0.0


# Reference model -> item id -> its answer: the answers a pairwise benchmark compares with.
References = dict[str, dict[str, EvalAnswer]]


@dataclass(frozen=True)
class BenchmarkContext:
    """What a benchmark's own config section adds to its items (``eval.arena_hard``,
    ``eval.wildbench``): the official reference answers it is judged against (Arena-Hard's
    gpt-4-0314, WildBench's three references) and a published pool it is summarized in
    (the Arena-Hard v0.1 leaderboard's battles). ``digest`` identifies all of it and
    enters the eval fingerprint; ``describe`` is what the manifest records of it."""

    references: References = field(default_factory=dict)
    pool: Any = None
    digest: str = ""
    describe: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class JudgingContext:
    """What grading one model's answers needs besides the items and the answers.

    ``references``: the answers each pairwise comparison is made against, by model (the
    benchmark's official references where its config names them, else the local
    baseline model's answers); empty: no pairwise judging. ``benchmark``: the
    benchmark's own context (its spec's ``prepare``), where a rule grader reads its
    config options (ZebraLogic's parse).
    """

    model: str
    judge: Judge | None
    response_only: bool
    references: References = field(default_factory=dict)
    seed: int = 0
    benchmark: BenchmarkContext = field(default_factory=BenchmarkContext)

    def shown(self, text: str) -> str:
        """What the judge sees of an answer."""
        return strip_thoughts(text) if self.response_only else text


# A list of items (only those answered), the answers by item id -> graded records.
Grader = Callable[[JudgingContext, Sequence[Any], dict[str, EvalAnswer]], list[EvalItemResult]]
# Graded records, the items, WB-Reward's length margin K -> (metrics, the full report).
Metrics = Callable[
    [list[EvalItemResult], Sequence[Any], int], tuple[dict[str, float | None], dict[str, Any]]
]


# The benchmark config section (``cfg.eval``), the S3 options and the items -> context.
Prepare = Callable[[Any, Any, Sequence[Any]], BenchmarkContext]


def greedy(item: Any) -> float:
    """Most benchmarks answer greedily (Arena-Hard, WildBench, ZeroEval, MATH500)."""
    return GREEDY


def official(items: Sequence[Any]) -> str:
    """The version of a benchmark that has one official file (MATH-500, ZebraLogic grid)."""
    return "official"


@dataclass(frozen=True)
class BenchmarkSpec:
    """One benchmark, as the generic stage code uses it.

    ``metrics`` returns the headline metric first (the one BOLT reports, named by
    ``headline``), then the others; with ``uses_context`` it also takes the benchmark's
    :class:`BenchmarkContext` as keyword ``context`` and the judge model's name as keyword
    ``judge`` (a published pool applies only to battles of its own judge). ``judged``:
    its grader calls the judge. ``pairwise``: its grader reads reference answers, where
    there are some. ``version`` names the benchmark version the items are (a published figure is shown
    only beside a number on the same version); ``prepare`` reads the benchmark's own
    config section into its context.
    """

    name: Benchmark
    item_type: type[BaseModel]
    item_id: Callable[[Any], str]
    messages: Callable[[Any], Messages]
    grade: Grader
    metrics: Metrics
    headline: str
    temperature: Callable[[Any], float] = greedy
    follow_up: Callable[[Any], str] | None = None
    load_default: Callable[[], Sequence[Any]] | None = None
    judged: bool = False
    pairwise: bool = False
    version: Callable[[Sequence[Any]], str] = official
    prepare: Prepare | None = None
    uses_context: bool = False


def user_turn(content: str) -> Messages:
    return [{"role": "user", "content": content}]


def system_and_user(system: str, user: str) -> Messages:
    return [{"role": "system", "content": system}, *user_turn(user)]


def _with_reply(result: EvalItemResult, reply: JudgeReply) -> EvalItemResult:
    if reply.error is None:
        return result
    return result.model_copy(update={"parse_error": JUDGE_CALL_FAILED, "judge_raw": reply.error})


def run_judge(
    ctx: JudgingContext,
    requests: list[JudgeRequest],
    build: list[Callable[[str], EvalItemResult]],
) -> list[EvalItemResult]:
    """Judge ``requests``; ``build[i]`` turns the i-th reply's text into its record.

    A call that failed after its retries keeps its record with ``parse_error =
    judge_call_failed`` and no score: counted in the report, never scored as zero and
    never dropped.
    """
    if ctx.judge is None:
        raise ValueError("this benchmark needs a judge")
    replies = ctx.judge.judge(requests)
    return [_with_reply(b(r.text or ""), r) for b, r in zip(build, replies, strict=True)]


def judged_record(
    benchmark: Benchmark,
    item_id: str,
    model: str,
    answer: str,
    judge_raw: str,
    judged_text: str | None,
    *,
    unparsable: str,
    score: float | None = None,
    verdict: str | None = None,
    meta: dict[str, Any],
) -> EvalItemResult:
    """A judge's reading of one answer as a record: ``parse_error`` is ``unparsable``
    when neither a score nor a verdict could be read. ``judged_text`` is what the judge
    saw (None: the answer without its thoughts)."""
    return EvalItemResult(
        benchmark=benchmark,
        item_id=item_id,
        model=model,
        answer=answer,
        judged_text=strip_thoughts(answer) if judged_text is None else judged_text,
        score=score,
        verdict=verdict,
        parse_error=None if score is not None or verdict is not None else unparsable,
        judge_raw=judge_raw,
        meta=meta,
    )
