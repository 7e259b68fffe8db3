"""Evaluation (BOLT §4): one module per benchmark, as the BOLT paper reports them, and the
stage that runs them.

BOLT reports MT-Bench, Arena-Hard (style-controlled), WildBench, ZebraLogic (cell
accuracy) and MATH500. Each benchmark module (``mt_bench``, ``arena_hard``, ``wildbench``,
``zebralogic``, ``math500``) holds the whole benchmark: its items, the chat the model
answers, its judge requests or rule grading, the parsers of judge and model outputs and
its numbers, ending in a :class:`~bolt.evals.spec.BenchmarkSpec`; ``registry`` lists
them. The generic stage code reaches a benchmark only through its spec: ``data``
(loading; ``rows`` reads local, S3 and pinned hub files), ``answering``, ``judging``,
``report``, ``stage`` (answers, grades, report, sharded and resumable) and
``trajectory`` (BOLT's Fig. 6). ``judges`` are the API and the local checklist judge.
Beside their benchmark sit the official files' layouts and rules: ``arena_hard_files``
(answers, judgments, the leaderboard pool), ``style_control`` (Arena-Hard v0.1's style
features and Bradley-Terry fit), ``wildbench_files`` (items, reference outputs) and
``wildbench_results``; ``official`` imports the result files users download. Models are reached only through the engine and the judge the
caller hands in (the Prefect tasks take both from ``bolt.resources.POOL``).
"""

from __future__ import annotations

from bolt.config import BenchmarkName as Benchmark  # defined once, with the config

__all__ = ["Benchmark", "mean_or_none"]


def mean_or_none(values: list[float]) -> float | None:
    """The mean of ``values``; None for no values (a metric over nothing is not 0)."""
    return sum(values) / len(values) if values else None
