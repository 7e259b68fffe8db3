"""The Fig. 6 trajectory stage: its points, its pinned fingerprint, one commit per series."""

from __future__ import annotations

from bolt.evals import Benchmark
from bolt.evals.report import BenchmarkSummary
from bolt.evals.trajectory import PLOT, run_trajectory, trajectory_fingerprint, trajectory_points
from bolt.stages import Stage
from bolt.store import ArtifactStore, Manifest, backend_for


def _eval(fp: str, mt_bench: float, arena_hard: float | None) -> Manifest:
    summaries = [
        BenchmarkSummary(
            benchmark=b,
            model="m",
            metrics={metric: value, "other": 1.0},
            n_items=1,
            n_unparsable=0,
            n_judge_failed=0,
            mean_answer_chars=1.0,
            mean_judged_chars=1.0,
        )
        for b, metric, value in [
            (Benchmark.mt_bench, "mt_bench", mt_bench),
            (Benchmark.arena_hard, "arena_hard_sc", arena_hard),
        ]
    ]
    return Manifest(
        stage=Stage.eval,
        fingerprint=fp,
        code_version="1",
        config={},
        stats={"summaries": [s.model_dump(mode="json") for s in summaries]},
    )


EVALUATIONS = [("SFT", _eval("a" * 16, 6.5, None)), ("DPO iter 1", _eval("b" * 16, 7.25, 31.0))]


def test_points_are_each_checkpoints_headline_numbers():
    assert trajectory_points(EVALUATIONS) == [
        ("SFT", {"mt_bench": 6.5, "arena_hard": None}),
        ("DPO iter 1", {"mt_bench": 7.25, "arena_hard": 31.0}),
    ]


def test_fingerprint_is_pinned():
    # the value the flow computed before the stage moved into bolt/evals: finished
    # trajectories keep their folders
    assert trajectory_fingerprint(EVALUATIONS) == "b9273f19492f4d6c"


def test_run_commits_the_plot_once(tmp_path):
    store = ArtifactStore(backend_for(f"file://{tmp_path}", None))
    done = run_trajectory(store, EVALUATIONS)
    assert done.stage == Stage.eval_trajectory and done.fingerprint == "b9273f19492f4d6c"
    assert done.upstream == {"SFT": "a" * 16, "DPO iter 1": "b" * 16}
    assert done.config == {"checkpoints": ["SFT", "DPO iter 1"]}
    assert [f.path for f in done.files] == [PLOT]
    png = store.backend.get_bytes(f"{Stage.eval_trajectory}/{done.fingerprint}/{PLOT}")
    assert png.startswith(b"\x89PNG")
    assert run_trajectory(store, EVALUATIONS) == store.manifest(
        Stage.eval_trajectory, done.fingerprint
    )
