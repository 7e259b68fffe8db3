"""Stage 4 as Prefect flows: evaluate one model (against the baseline), or a series of
checkpoints with the trajectory plot of BOLT's Fig. 6; ``bolt stage eval`` (and the
``nightly-eval`` deployment) evaluates the config's newest committed SFT model and policy,
found in its store.

Every model's answers are made before any grading starts: answering engines and judges
evict each other from the pool (``bolt.resources``), so in this order each starts once.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.exceptions import MissingContextError
from prefect.task_runners import ThreadPoolTaskRunner

from bolt.config import PipelineConfig
from bolt.evals.stage import Baseline, EvalModel, eval_model, load_benchmarks, load_report_rows
from bolt.evals.trajectory import PLOT, run_trajectory
from bolt.export.lineage import model_label, policy_algorithm
from bolt.stages import Stage
from bolt.store import ArtifactStore, Manifest, local_model_dir
from bolt.train.fingerprints import MODEL_DIR, sft_fingerprint
from tasks.evaluation import answer_benchmarks, grade_benchmarks
from tasks.reporting import artifact_key, report_stage
from tasks.runtime import with_task_runner

# Where stored models are fetched to: the folder flows.online fetches policies to (the
# same folder, so a checkpoint evaluated by the pipeline keeps its eval identity).
MODEL_CACHE = Path(tempfile.gettempdir()) / "bolt-online-models"


def _publish(
    cfg: PipelineConfig, store: ArtifactStore, model: EvalModel, manifest: Manifest
) -> None:
    """The eval's table as a Prefect artifact, and its stage report."""
    create_table_artifact(
        load_report_rows(manifest),
        key=artifact_key(cfg.name, "eval", model.label),
        description=f"{model.label} ({model.path}): benchmarks against {cfg.eval.baseline_model or 'no baseline'} and the paper",
    )
    report_stage(store, manifest, cfg.name)
    get_run_logger().info(
        "eval %s (%s): %s", model.label, model.path, manifest.stats.get("judge_usage")
    )


def _evaluate(cfg: PipelineConfig, models: list[EvalModel]) -> list[Manifest]:
    """Answer ``models`` and the baseline, then grade the baseline and each model. The
    models answer first: the engine a caller left live on one of them (the online loop's
    sampler) answers before anything else starts."""
    store = ArtifactStore.from_config(cfg.storage)
    items = load_benchmarks(cfg)
    answers = [answer_benchmarks(cfg, model, items) for model in models]
    base = eval_model(cfg, cfg.eval.baseline_model) if cfg.eval.baseline_model else None
    base_answers = answer_benchmarks(cfg, base, items) if base else None
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


@flow(name="eval", flow_run_name="{cfg.name}-eval", task_runner=ThreadPoolTaskRunner(max_workers=1))
def eval_flow(cfg: PipelineConfig, model: str | Path, label: str | None = None) -> Manifest:
    """Answer, grade and report ``model`` (a catalog name or a model folder, e.g. an SFT
    or DPO checkpoint from the store) against the baseline."""
    return _evaluate(cfg, [eval_model(cfg, model, label)])[0]


def checkpoint_label(manifest: Manifest) -> str:
    """A trained model's name in reports, as the pipeline and the export know it: ``SFT``
    or ``<ALGORITHM>-<iteration>`` (``DPO-2``, ``GRPO-1``; which store output it is goes
    beside it: log, model folder)."""
    if manifest.stage == Stage.sft:
        return "SFT"
    return model_label(manifest.config.get("iteration", "?"), policy_algorithm(manifest))


def _ancestors(manifest: Manifest, by_fp: dict[str, Manifest]) -> set[str]:
    """Every fingerprint ``manifest`` was made from, through the store's manifests
    (upstream values are fingerprints or model ids ``<stage>/<fingerprint>``)."""
    seen: set[str] = set()
    todo = list(manifest.upstream.values())
    while todo:
        fp = todo.pop().rpartition("/")[2]
        if fp in seen:
            continue
        seen.add(fp)
        if fp in by_fp:
            todo += by_fp[fp].upstream.values()
    return seen


def newest_checkpoints(cfg: PipelineConfig, store: ArtifactStore) -> list[Manifest]:
    """The config's newest committed SFT model and, when there is one, the last policy
    trained from it: an SFT manifest counts when its fingerprint is this config's for its
    SFT set (same SFT settings and base model); a policy when it descends from that SFT
    model (highest iteration, then newest). Empty when no SFT model is committed."""
    manifests = store.list_manifests()
    by_fp = {m.fingerprint: m for m in manifests}
    sfts = [
        m
        for m in manifests
        if m.stage == Stage.sft and m.fingerprint == sft_fingerprint(cfg, m.upstream["filter"])
    ]
    if not sfts:
        return []
    sft = max(sfts, key=lambda m: m.created_at)
    policies = [
        m
        for m in manifests
        if m.stage == Stage.online_policy and sft.fingerprint in _ancestors(m, by_fp)
    ]
    if not policies:
        return [sft]
    return [sft, max(policies, key=lambda m: (m.config.get("iteration", 0), m.created_at))]


def checkpoint_models(store: ArtifactStore, checkpoints: list[Manifest]) -> list[tuple[str, str]]:
    """``(label, local model folder)`` of stored SFT/policy checkpoints, fetched once."""
    return [
        (checkpoint_label(m), local_model_dir(store, m, MODEL_DIR, MODEL_CACHE))
        for m in checkpoints
    ]


def _logger() -> logging.Logger | logging.LoggerAdapter:
    """The flow run's logger; the module's outside a run (``eval_stage_flow.fn``)."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(__name__)


@flow(
    name="eval-stage",
    flow_run_name="{cfg.name}-eval-stage",
    task_runner=ThreadPoolTaskRunner(max_workers=1),
)
def eval_stage_flow(cfg: PipelineConfig) -> Manifest:
    """``bolt stage eval``: the config's newest committed SFT model and last policy (the
    Fig. 6 pair), found in its store and named in the log and each report's header; the
    base model (``sft.base_model``) while no SFT model is committed. Returns the last
    model's eval."""
    store = ArtifactStore.from_config(cfg.storage)
    found = newest_checkpoints(cfg, store)
    log = _logger()
    if not found:
        log.info(
            "no committed SFT model for %s: evaluating the base model %s",
            cfg.name,
            cfg.sft.base_model,
        )
        return with_task_runner(eval_flow, cfg)(cfg, cfg.sft.base_model)
    for m in found:
        log.info(
            "evaluating %s: %s/%s committed %s",
            checkpoint_label(m),
            m.stage,
            m.fingerprint,
            m.created_at,
        )
    checkpoints = checkpoint_models(store, found)
    if len(checkpoints) == 1:
        return with_task_runner(eval_flow, cfg)(cfg, checkpoints[0][1], checkpoints[0][0])
    return _evaluate_checkpoints(cfg, checkpoints)[1][-1]


def _evaluate_checkpoints(
    cfg: PipelineConfig, checkpoints: list[tuple[str, str]]
) -> tuple[Manifest, list[Manifest]]:
    """Each checkpoint's eval, then the trajectory of their headline numbers."""
    store = ArtifactStore.from_config(cfg.storage)
    models = [eval_model(cfg, model, label) for label, model in checkpoints]
    manifests = _evaluate(cfg, models)
    done = run_trajectory(store, [(m.label, e) for m, e in zip(models, manifests, strict=True)])
    create_table_artifact(
        [{"checkpoint": label} | values for label, values in done.stats["points"]],
        key=artifact_key(cfg.name, "eval-trajectory"),
        description=f"headline numbers across checkpoints; plot at {store.uri(Stage.eval_trajectory, done.fingerprint, PLOT)}",
    )
    return done, manifests


@flow(
    name="eval-trajectory",
    flow_run_name="{cfg.name}-eval-trajectory",
    task_runner=ThreadPoolTaskRunner(max_workers=1),
)
def eval_trajectory_flow(cfg: PipelineConfig, checkpoints: list[tuple[str, str]]) -> Manifest:
    """Evaluate ``(label, model)`` checkpoints in training order (SFT, DPO iter 1, ...),
    then draw the Fig. 6 trajectory of each benchmark's headline number."""
    return _evaluate_checkpoints(cfg, checkpoints)[0]
