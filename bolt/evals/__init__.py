"""Evaluation metrics and parsers, one module per benchmark (as the BOLT paper reports them).

BOLT reports MT-Bench, Arena-Hard (style-controlled), WildBench, ZebraLogic (cell
accuracy) and MATH500. Each module here is the pure layer of one benchmark: loading its
items, parsing judge or model outputs, and turning judged items into the numbers the
paper reports. Generation and judge calls live elsewhere; nothing here touches a model.
"""

from __future__ import annotations

from bolt.config import BenchmarkName as Benchmark  # defined once, with the config

__all__ = ["Benchmark", "mean_or_none"]


def mean_or_none(values: list[float]) -> float | None:
    """The mean of ``values``; None for no values (a metric over nothing is not 0)."""
    return sum(values) / len(values) if values else None
