"""Stage 4 as Prefect flows: evaluate one model (against the baseline), or a series of
checkpoints with the trajectory plot of BOLT's Fig. 6."""

from __future__ import annotations

import tempfile
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from bolt.config import PipelineConfig
from bolt.evals.report import HEADLINE, trajectory
from bolt.evals.stage import (
    Baseline,
    eval_model,
    load_benchmarks,
    load_report_rows,
    summaries_of,
)
from bolt.fingerprint import fingerprint
from bolt.store import ArtifactStore, Manifest
from tasks.evaluation import answer_benchmarks, grade_benchmarks
from tasks.reporting import artifact_key, report_stage

TRAJECTORY_STAGE = "eval_trajectory"


@flow(name="eval", flow_run_name="{cfg.name}-eval")
def eval_flow(cfg: PipelineConfig, model: str | Path, label: str | None = None) -> Manifest:
    """Answer, grade and report ``model`` (a catalog name or a model folder, e.g. an SFT
    or DPO checkpoint from the store); the baseline is answered and graded first."""
    store = ArtifactStore.from_config(cfg.storage)
    items = load_benchmarks(cfg)
    baseline = None
    if cfg.eval.baseline_model:
        base = eval_model(cfg, cfg.eval.baseline_model)
        base_answers = answer_benchmarks(cfg, base, items)
        baseline = Baseline(base, base_answers, grade_benchmarks(cfg, base, items, base_answers))
    tested = eval_model(cfg, model, label)
    answers = answer_benchmarks(cfg, tested, items)
    manifest = grade_benchmarks(cfg, tested, items, answers, baseline)
    rows = load_report_rows(manifest)
    create_table_artifact(
        rows,
        key=artifact_key(cfg.name, "eval", tested.label),
        description=f"{tested.label}: benchmarks against {cfg.eval.baseline_model or 'no baseline'} and the paper",
    )
    report_stage(store, manifest, cfg.name)
    get_run_logger().info("eval %s: %s", tested.label, manifest.stats.get("judge_usage"))
    return manifest


@flow(name="eval-stage", flow_run_name="{cfg.name}-eval-stage")
def eval_stage_flow(cfg: PipelineConfig) -> Manifest:
    """``bolt stage eval``: the config's base model (``sft.base_model``) until a trained
    checkpoint is passed to :func:`eval_flow` by the pipeline."""
    return eval_flow(cfg, cfg.sft.base_model)


@flow(name="eval-trajectory", flow_run_name="{cfg.name}-eval-trajectory")
def eval_trajectory_flow(cfg: PipelineConfig, checkpoints: list[tuple[str, str]]) -> Manifest:
    """Evaluate ``(label, model)`` checkpoints in training order (SFT, DPO iter 1, ...),
    then draw the Fig. 6 trajectory of each benchmark's headline number."""
    store = ArtifactStore.from_config(cfg.storage)
    manifests = [(label, eval_flow(cfg, model, label)) for label, model in checkpoints]
    points = [
        (label, {s.benchmark.value: s.metrics.get(HEADLINE[s.benchmark]) for s in summaries_of(m)})
        for label, m in manifests
    ]
    fp = fingerprint(
        TRAJECTORY_STAGE,
        {"points": points},
        upstream={label: m.fingerprint for label, m in manifests},
    )
    if (done := store.manifest(TRAJECTORY_STAGE, fp)) is None:
        with tempfile.TemporaryDirectory() as tmp:
            plot = trajectory(Path(tmp) / "trajectory.png", points)
            files = [store.put_file(TRAJECTORY_STAGE, fp, "trajectory.png", plot)]
        done = store.commit(
            Manifest(
                stage=TRAJECTORY_STAGE,
                fingerprint=fp,
                code_version="1",
                config={"checkpoints": [label for label, _ in checkpoints]},
                upstream={label: m.fingerprint for label, m in manifests},
                files=files,
                stats={"points": points},
            )
        )
    create_table_artifact(
        [{"checkpoint": label} | values for label, values in points],
        key=artifact_key(cfg.name, "eval-trajectory"),
        description=f"headline numbers across checkpoints; plot at {store.uri(TRAJECTORY_STAGE, fp, 'trajectory.png')}",
    )
    return done
