"""The evaluation report: headline numbers per benchmark, the table against a baseline
and the paper's published figures, and a PNG like BOLT's Fig. 5 (bars); Fig. 6 (the
trajectory over SFT and DPO iterations) is :mod:`bolt.evals.trajectory`.

Headline metrics are those BOLT reports (Pang et al., 2025, Table 2): MT-Bench's mean
rating, Arena-Hard's style-controlled win rate, WildBench's WB-Score (task macro, the
leaderboard's scale), ZebraLogic's cell accuracy, MATH500's accuracy; the other numbers
of each benchmark sit beside them. Every row carries its counts of unparsable judge
replies and of judge calls that failed, which are excluded from the numbers, not zeros.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from bolt.evals import Benchmark
from bolt.evals.judges import JUDGE_CALL_FAILED
from bolt.evals.registry import BENCHMARKS
from bolt.plots import grouped_bars
from bolt.records import EvalItemResult

HEADLINE: dict[Benchmark, str] = {b: spec.headline for b, spec in BENCHMARKS.items()}

# The paper's 8B figures (Pang et al., 2025, Table 2: Arena-Hard style-controlled, WildBench).
PUBLISHED: dict[str, dict[str, float]] = {
    "Llama-3.1-8B-Instruct (paper)": {"arena_hard_sc": 18.3, "wb_score_task_macro": 32.08},
    "BOLT-Llama-3.1-8B (paper)": {"arena_hard_sc": 44.1, "wb_score_task_macro": 42.96},
}


class BenchmarkSummary(BaseModel):
    benchmark: Benchmark
    model: str
    metrics: dict[str, float | None] = Field(description="Headline first, then the others.")
    n_items: int
    n_unparsable: int = Field(description="Replies without a readable score or verdict.")
    n_judge_failed: int = Field(description="Judge calls that failed after their retries.")
    mean_answer_chars: float = Field(description="Everything the model wrote, thoughts included.")
    mean_judged_chars: float = Field(description="What the judge or grader read.")
    details: dict[str, Any] = Field(
        default_factory=dict, description="The benchmark's full report."
    )


def summarize(
    benchmark: Benchmark,
    model: str,
    results: Sequence[EvalItemResult],
    items: Sequence[Any],
    k: int,
) -> BenchmarkSummary:
    """One model's numbers on one benchmark, with the counts of what could not be scored."""
    results = list(results)
    if results:
        metrics, details = BENCHMARKS[benchmark].metrics(results, items, k)
    else:  # e.g. Arena-Hard without a baseline: nothing was judged
        metrics, details = {HEADLINE[benchmark]: None}, {"skipped": "no judged items"}
    failed = sum(r.parse_error == JUDGE_CALL_FAILED for r in results)
    unparsable = sum(r.parse_error is not None for r in results) - failed
    n = max(1, len(results))
    return BenchmarkSummary(
        benchmark=benchmark,
        model=model,
        metrics=metrics,
        n_items=len(results),
        n_unparsable=unparsable,
        n_judge_failed=failed,
        mean_answer_chars=sum(len(r.answer) for r in results) / n,
        mean_judged_chars=sum(len(r.judged_text) for r in results) / n,
        details=details,
    )


def table_rows(
    model: Sequence[BenchmarkSummary], baseline: Sequence[BenchmarkSummary] = ()
) -> list[dict[str, Any]]:
    """One row per (benchmark, metric) of the model: its value, the baseline's, the paper's."""
    base = {(s.benchmark, m): v for s in baseline for m, v in s.metrics.items()}
    rows = []
    for s in model:
        for metric, value in s.metrics.items():
            row: dict[str, Any] = {
                "benchmark": s.benchmark.value,
                "metric": metric,
                s.model: _round(value),
            }
            if baseline:
                row[baseline[0].model] = _round(base.get((s.benchmark, metric)))
            for name, numbers in PUBLISHED.items():
                row[name] = numbers.get(metric)
            row |= {
                "n_items": s.n_items,
                "unparsable": s.n_unparsable,
                "judge_failed": s.n_judge_failed,
                "answer_chars": round(s.mean_answer_chars, 1),
                "judged_chars": round(s.mean_judged_chars, 1),
            }
            rows.append(row)
    return rows


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _cell(value: Any) -> str:
    return "–" if value is None else str(value)


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    if not rows:
        return "(no results)\n"
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def csv_text(rows: Sequence[dict[str, Any]]) -> str:
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return out.getvalue()


def headline_bars(
    path: Path, summaries: dict[str, Sequence[BenchmarkSummary]], published: bool = True
) -> Path:
    """Fig. 5-like bars: each benchmark's headline number, one colour per model (and the
    paper's figures where they exist)."""
    series = {
        model: {
            f"{s.benchmark.value}:{HEADLINE[s.benchmark]}": v
            for s in rows
            if (v := s.metrics.get(HEADLINE[s.benchmark])) is not None
        }
        for model, rows in summaries.items()
    }
    if published:
        for name, numbers in PUBLISHED.items():
            series[name] = {
                f"{b.value}:{m}": numbers[m] for b, m in HEADLINE.items() if m in numbers
            }
    return grouped_bars(path, "benchmark headline numbers", series, ylabel="score")
