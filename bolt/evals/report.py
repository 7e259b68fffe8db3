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
from bolt.evals.spec import BenchmarkContext
from bolt.plots import grouped_bars
from bolt.records import EvalItemResult

HEADLINE: dict[Benchmark, str] = {b: spec.headline for b, spec in BENCHMARKS.items()}


class PublishedFigure(BaseModel):
    """A number the BOLT paper publishes, with what it was computed on: a figure is shown
    only beside a number of the same benchmark version, baseline and judge."""

    model: str
    benchmark: Benchmark
    metric: str
    value: float
    version: str
    baseline: str | None = Field(description="None: the metric has no baseline (WB-Score).")
    judge: str


# Pang et al., 2025, Table 2 (8B): Arena-Hard v0.1 style-controlled against gpt-4-0314,
# judged by gpt-4-1106-preview (the v0.1 leaderboard's setting); WildBench v2 WB-Score
# (task macro) judged by gpt-4o-2024-05-13 (the v2 leaderboard's setting).
_ARENA = {"benchmark": Benchmark.arena_hard, "metric": "arena_hard_sc", "version": "v0.1"}
_ARENA |= {"baseline": "gpt-4-0314", "judge": "gpt-4-1106-preview"}
_WB = {"benchmark": Benchmark.wildbench, "metric": "wb_score_task_macro", "version": "v2"}
_WB |= {"baseline": None, "judge": "gpt-4o-2024-05-13"}
PUBLISHED: list[PublishedFigure] = [
    PublishedFigure(model="Llama-3.1-8B-Instruct (paper)", value=18.3, **_ARENA),
    PublishedFigure(model="BOLT-Llama-3.1-8B (paper)", value=44.1, **_ARENA),
    PublishedFigure(model="Llama-3.1-8B-Instruct (paper)", value=32.08, **_WB),
    PublishedFigure(model="BOLT-Llama-3.1-8B (paper)", value=42.96, **_WB),
]
PUBLISHED_MODELS = list(dict.fromkeys(f.model for f in PUBLISHED))


class BenchmarkSummary(BaseModel):
    benchmark: Benchmark
    model: str
    metrics: dict[str, float | None] = Field(description="Headline first, then the others.")
    version: str = Field("", description="The benchmark version the items are (v0.1, v2, ...).")
    baseline: str | None = Field(
        None, description="The model(s) pairwise judging compared with, comma-separated."
    )
    judge: str | None = Field(None, description="The judge model; None: graded by rule.")
    local_only: list[str] = Field(
        default_factory=list,
        description="Metrics computed on local battles only (Arena-Hard style control without the leaderboard pool): on no published scale.",
    )
    n_items: int
    n_unparsable: int = Field(description="Replies without a readable score or verdict.")
    n_judge_failed: int = Field(description="Judge calls that failed after their retries.")
    mean_answer_chars: float = Field(description="Everything the model wrote, thoughts included.")
    mean_judged_chars: float = Field(description="What the judge or grader read.")
    details: dict[str, Any] = Field(
        default_factory=dict, description="The benchmark's full report."
    )

    def comparable(self, figure: PublishedFigure) -> bool:
        """Whether ``figure`` was computed like this summary's number of its metric."""
        return (
            figure.benchmark == self.benchmark
            and figure.metric not in self.local_only
            and figure.version == self.version
            and figure.judge == self.judge
            and (figure.baseline is None or figure.baseline == self.baseline)
        )


def published_figures(summary: BenchmarkSummary, metric: str) -> dict[str, float]:
    """The paper's figures that may stand beside ``summary``'s ``metric``, by model."""
    return {f.model: f.value for f in PUBLISHED if f.metric == metric and summary.comparable(f)}


def summarize(
    benchmark: Benchmark,
    model: str,
    results: Sequence[EvalItemResult],
    items: Sequence[Any],
    k: int,
    *,
    context: BenchmarkContext | None = None,
    judge: str | None = None,
    baseline: str | None = None,
) -> BenchmarkSummary:
    """One model's numbers on one benchmark, with the counts of what could not be scored
    and what they were computed on (version, baseline, judge)."""
    results = list(results)
    spec = BENCHMARKS[benchmark]
    if results:
        extra = {"context": context, "judge": judge} if spec.uses_context else {}
        metrics, details = spec.metrics(results, items, k, **extra)
    else:  # e.g. Arena-Hard without a baseline: nothing was judged
        metrics, details = {HEADLINE[benchmark]: None}, {"skipped": "no judged items"}
    failed = sum(r.parse_error == JUDGE_CALL_FAILED for r in results)
    unparsable = sum(r.parse_error is not None for r in results) - failed
    n = max(1, len(results))
    return BenchmarkSummary(
        benchmark=benchmark,
        model=model,
        metrics=metrics,
        version=spec.version(items),
        baseline=baseline,
        judge=judge if spec.judged else None,
        local_only=details.pop("local_only", []),
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
    """One row per (benchmark, metric) of the model: its value, the baseline model's, and
    the paper's where it was computed on the same version, baseline and judge (a metric
    on local battles only is marked so and has none)."""
    base = {(s.benchmark, m): v for s in baseline for m, v in s.metrics.items()}
    rows = []
    for s in model:
        for metric, value in s.metrics.items():
            local = metric in s.local_only
            row: dict[str, Any] = {
                "benchmark": s.benchmark.value,
                "metric": f"{metric} (local battles)" if local else metric,
                s.model: _round(value),
            }
            if baseline:
                row[baseline[0].model] = _round(base.get((s.benchmark, metric)))
            figures = published_figures(s, metric)
            for name in PUBLISHED_MODELS:
                row[name] = figures.get(name)
            row |= {
                "version": s.version,
                "baseline": s.baseline,
                "judge": s.judge,
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
    first = next(iter(summaries.values()), [])
    if published:
        for s in first:
            metric = HEADLINE[s.benchmark]
            for name, value in published_figures(s, metric).items():
                series.setdefault(name, {})[f"{s.benchmark.value}:{metric}"] = value
    return grouped_bars(path, "benchmark headline numbers", series, ylabel="score")
