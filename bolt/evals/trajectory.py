"""The trajectory of BOLT's Fig. 6 (Pang et al., 2025): each benchmark's headline number
across checkpoints (SFT, DPO iteration 1, 2, ...), as one ``eval_trajectory`` output.

Its fingerprint is the points themselves and the evals they come from, so a new
checkpoint or a re-graded one draws a new plot and an unchanged series draws none.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bolt.evals.report import HEADLINE
from bolt.evals.stage import summaries_of
from bolt.fingerprint import fingerprint
from bolt.plots import plt
from bolt.stages import Stage
from bolt.store import ArtifactStore, Manifest

PLOT = "trajectory.png"
CODE_VERSION = "1"

# (checkpoint label, {benchmark: its headline number}), in training order.
Point = tuple[str, dict[str, float | None]]


def trajectory_points(evaluations: Sequence[tuple[str, Manifest]]) -> list[Point]:
    """Each checkpoint's headline numbers, from its ``eval`` manifest."""
    return [
        (label, {s.benchmark.value: s.metrics.get(HEADLINE[s.benchmark]) for s in summaries_of(m)})
        for label, m in evaluations
    ]


def best_point(points: Sequence[Point], benchmark: str) -> int | None:
    """The index of the point with the highest ``benchmark`` headline (every headline is
    higher-is-better; the first wins a tie), None when no point has that number."""
    scored = [(i, values.get(benchmark)) for i, (_, values) in enumerate(points)]
    scored = [(i, v) for i, v in scored if v is not None]
    if not scored:
        return None
    return max(scored, key=lambda item: (item[1], -item[0]))[0]


def _upstream(evaluations: Sequence[tuple[str, Manifest]]) -> dict[str, str]:
    return {label: m.fingerprint for label, m in evaluations}


def trajectory_fingerprint(evaluations: Sequence[tuple[str, Manifest]]) -> str:
    return fingerprint(
        Stage.eval_trajectory,
        {"points": trajectory_points(evaluations)},
        upstream=_upstream(evaluations),
        code_version=CODE_VERSION,
    )


def draw_trajectory(path: Path, points: Sequence[Point]) -> Path:
    """Fig. 6-like lines: each metric across checkpoints, given as ``(label, {metric:
    value})`` in training order; missing values are gaps."""
    labels = [label for label, _ in points]
    metrics = sorted({m for _, values in points for m in values})
    fig, ax = plt.subplots(figsize=(max(6, len(labels) * 1.2), 4))
    for metric in metrics:
        ys = [values.get(metric) for _, values in points]
        ax.plot(
            range(len(labels)),
            [float("nan") if y is None else y for y in ys],
            marker="o",
            label=metric,
        )
    ax.set_xticks(range(len(labels)), labels)
    ax.set_ylabel("score")
    ax.set_title("benchmarks across training")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def run_trajectory(store: ArtifactStore, evaluations: Sequence[tuple[str, Manifest]]) -> Manifest:
    """Plot and commit the trajectory of ``(label, eval manifest)`` checkpoints, in
    training order; an unchanged series is read back from the store."""
    fp = trajectory_fingerprint(evaluations)
    if (done := store.manifest(Stage.eval_trajectory, fp)) is not None:
        return done
    points = trajectory_points(evaluations)
    plot = store.put_plot(
        Stage.eval_trajectory, fp, PLOT, lambda path: draw_trajectory(path, points)
    )
    return store.commit(
        Manifest(
            stage=Stage.eval_trajectory,
            fingerprint=fp,
            code_version=CODE_VERSION,
            config={"checkpoints": [label for label, _ in evaluations]},
            upstream=_upstream(evaluations),
            files=[plot],
            stats={"points": points},
        )
    )
