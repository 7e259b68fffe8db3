"""Grading answers: each benchmark's grader, through its spec.

The prompts are the benchmarks' own (FastChat's single-answer prompts for MT-Bench,
WildBench's score.v2 and pairwise.v2 templates, arena-hard-auto v0.1's system prompt
and both answer orders), built and read in ``bolt.evals.<name>``. ZebraLogic and
MATH500 are graded by rule, without a judge.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bolt.evals import Benchmark
from bolt.evals.registry import BENCHMARKS
from bolt.evals.spec import JudgingContext
from bolt.records import EvalAnswer, EvalItemResult


def grade(
    benchmark: Benchmark, items: Sequence[Any], answers: Sequence[EvalAnswer], ctx: JudgingContext
) -> list[EvalItemResult]:
    """Graded records of ``answers`` to ``items`` (items without an answer are left out)."""
    spec = BENCHMARKS[benchmark]
    by_id = {a.item_id: a for a in answers}
    return spec.grade(ctx, [i for i in items if spec.item_id(i) in by_id], by_id)
