"""Stage 4 as Prefect flows: evaluate one model (against the baseline), or a series of
checkpoints with the trajectory plot of BOLT's Fig. 6.

Every model's answers are made before any grading starts: answering engines and judges
evict each other from the pool (``bolt.resources``), so in this order each starts once.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from bolt.config import PipelineConfig
from bolt.evals.stage import Baseline, EvalModel, eval_model, load_benchmarks, load_report_rows
from bolt.evals.trajectory import PLOT, run_trajectory
from bolt.stages import Stage
from bolt.store import ArtifactStore, Manifest
from tasks.evaluation import answer_benchmarks, grade_benchmarks
from tasks.reporting import artifact_key, report_stage


def _publish(
    cfg: PipelineConfig, store: ArtifactStore, model: EvalModel, manifest: Manifest
) -> None:
    """The eval's table as a Prefect artifact, and its stage report."""
    create_table_artifact(
        load_report_rows(manifest),
        key=artifact_key(cfg.name, "eval", model.label),
        description=f"{model.label}: benchmarks against {cfg.eval.baseline_model or 'no baseline'} and the paper",
    )
    report_stage(store, manifest, cfg.name)
    get_run_logger().info("eval %s: %s", model.label, manifest.stats.get("judge_usage"))


def _evaluate(cfg: PipelineConfig, models: list[EvalModel]) -> list[Manifest]:
    """Answer the baseline and ``models``, then grade the baseline and each model."""
    store = ArtifactStore.from_config(cfg.storage)
    items = load_benchmarks(cfg)
    base = eval_model(cfg, cfg.eval.baseline_model) if cfg.eval.baseline_model else None
    base_answers = answer_benchmarks(cfg, base, items) if base else None
    answers = [answer_benchmarks(cfg, model, items) for model in models]
    baseline = (
        Baseline(base, base_answers, grade_benchmarks(cfg, base, items, base_answers))
        if base is not None and base_answers is not None
        else None
    )
    manifests = []
    for model, answered in zip(models, answers, strict=True):
        manifests.append(grade_benchmarks(cfg, model, items, answered, baseline))
        _publish(cfg, store, model, manifests[-1])
    return manifests


@flow(name="eval", flow_run_name="{cfg.name}-eval")
def eval_flow(cfg: PipelineConfig, model: str | Path, label: str | None = None) -> Manifest:
    """Answer, grade and report ``model`` (a catalog name or a model folder, e.g. an SFT
    or DPO checkpoint from the store) against the baseline."""
    return _evaluate(cfg, [eval_model(cfg, model, label)])[0]


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
    models = [eval_model(cfg, model, label) for label, model in checkpoints]
    evaluations = [(m.label, e) for m, e in zip(models, _evaluate(cfg, models), strict=True)]
    done = run_trajectory(store, evaluations)
    create_table_artifact(
        [{"checkpoint": label} | values for label, values in done.stats["points"]],
        key=artifact_key(cfg.name, "eval-trajectory"),
        description=f"headline numbers across checkpoints; plot at {store.uri(Stage.eval_trajectory, done.fingerprint, PLOT)}",
    )
    return done
