"""PNG plots for stage reports (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on cluster nodes or CI
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure


def grouped_bars(
    path: Path, title: str, series: dict[str, dict[str, float]], ylabel: str = "count"
) -> Path:
    """Bars per category, one colour per series (e.g. topic counts before/after)."""
    categories = sorted({c for values in series.values() for c in values})
    width = 0.8 / max(1, len(series))
    fig, ax = plt.subplots(figsize=(max(6, len(categories) * 0.9), 4))
    for i, (name, values) in enumerate(series.items()):
        xs = [j + i * width for j in range(len(categories))]
        ax.bar(xs, [values.get(c, 0) for c in categories], width=width, label=name)
    ax.set_xticks(
        [j + width * (len(series) - 1) / 2 for j in range(len(categories))],
        categories,
        rotation=30,
        ha="right",
    )
    return _save(fig, ax, path, title, ylabel=ylabel)


def histogram(
    path: Path, title: str, values: dict[str, list[float]], xlabel: str, bins: int = 30
) -> Path:
    """Overlaid histograms (e.g. token lengths of thoughts and responses)."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, xs in values.items():
        if xs:
            ax.hist(xs, bins=bins, alpha=0.6, label=f"{name} (n={len(xs)})")
    return _save(fig, ax, path, title, xlabel=xlabel, ylabel="count")


def curves(
    path: Path, title: str, series: dict[str, list[tuple[float, float]]], xlabel: str, ylabel: str
) -> Path:
    """Line plots of (x, y) points, one line per series (e.g. a training loss curve)."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, points in series.items():
        if points:
            ax.plot([x for x, _ in points], [y for _, y in points], marker=".", label=name)
    return _save(fig, ax, path, title, xlabel=xlabel, ylabel=ylabel)


def _save(
    fig: Figure, ax: Axes, path: Path, title: str, ylabel: str, xlabel: str | None = None
) -> Path:
    """Label the axes, write the PNG and close the figure (pyplot keeps every open one)."""
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
