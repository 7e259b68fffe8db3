"""Experiment tracking (``tracking`` in the config): a run per pipeline run, a nested run
per stage output, the training curves through the trainers' own integrations.

The pipeline flow opens the pipeline run (``open_pipeline_run``, which returns the config
with ``tracking.uri`` resolved and ``tracking.run_id`` set), logs each output once it is
committed (``log_outputs``) and closes the run (``close_pipeline_run``). A training job
is another process, perhaps on another machine: it reads the tracking section from the
config it is given (``configure_job``, in every entrypoint) and hands the HF Trainer its
own ``MLflowCallback`` / ``WandbCallback`` pointed at its stage's run
(``attach_trainer``), so the loss curve streams into the stage run as the job trains.

Tracking never fails the work it tracks: every call here logs a warning and carries on.
What each run holds is ``bolt.tracking.content``'s.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from uuid import uuid4

import yaml

from bolt.config import PipelineConfig, TrackingBackend, TrackingConfig
from bolt.store import ArtifactStore, Manifest
from bolt.tracking import content, mlflow_runs, wandb_runs

log = logging.getLogger("bolt.tracking")
# The resolved tracking section, as JSON, in a training job's environment.
JOB_ENV = "BOLT_TRACKING"
LOCAL_FOLDER = "mlflow"


def local_folder(cfg: PipelineConfig) -> Path:
    """Where local tracking data lives: the storage root's folder for a file:// root,
    else the working directory (absolute: the jobs run in their own folders)."""
    root = cfg.storage.root
    if root.startswith("file://"):
        return Path(root.removeprefix("file://")).expanduser().absolute()
    return Path.cwd().absolute()


def default_uri(cfg: PipelineConfig) -> str:
    """MLFLOW_TRACKING_URI when set, else a SQLite store under the run's folder (MLflow 3
    refuses new file stores: the database backend is its supported local store)."""
    if env := os.environ.get("MLFLOW_TRACKING_URI"):
        return env
    return f"sqlite:///{local_folder(cfg) / LOCAL_FOLDER / 'mlflow.db'}"


def resolve(cfg: PipelineConfig) -> TrackingConfig:
    """The tracking section with its defaults filled in (URI, experiment, project)."""
    t = cfg.tracking
    experiment = t.experiment or cfg.name
    return t.model_copy(
        update={
            "uri": t.uri or default_uri(cfg),
            "experiment": experiment,
            "project": t.project or experiment,
        }
    )


def _artifact_location(cfg: PipelineConfig, uri: str) -> str | None:
    """Artifacts beside a local database (a server keeps its own)."""
    if uri.startswith("sqlite:///") and uri == default_uri(cfg):
        return (local_folder(cfg) / LOCAL_FOLDER / "artifacts").as_uri()
    return None


def _wandb_settings(t: TrackingConfig, folder: Path) -> dict[str, Any]:
    return {
        "project": t.project,
        "entity": t.entity,
        "group": t.run_id,
        "mode": t.mode,
        "dir": str(folder),
    }


def _warn(what: str) -> None:
    log.warning("tracking: could not %s", what, exc_info=True)  # noqa: LOG014 (in handlers)


def open_pipeline_run(cfg: PipelineConfig, stage: str | None = None) -> PipelineConfig:
    """Open the run of a pipeline run (or of ``bolt stage STAGE``, named
    ``<name>-<stage>`` and tagged ``bolt.only_stage``, so the UI tells the two apart);
    the config the stages get back carries it."""
    if cfg.tracking.backend == TrackingBackend.none or cfg.tracking.run_id:
        return cfg
    t = resolve(cfg)
    config = cfg.model_dump(mode="json")
    name = f"{cfg.name}-{stage}" if stage else cfg.name
    try:
        if t.backend == TrackingBackend.mlflow:
            tags = {"bolt.config_name": cfg.name, "bolt.storage_root": cfg.storage.root}
            if stage:
                tags["bolt.only_stage"] = stage
            run_id = mlflow_runs.open_parent(
                t.uri,
                t.experiment,
                _artifact_location(cfg, t.uri),
                name,
                tags,
                content.pipeline_params(config),
                yaml.safe_dump(config, sort_keys=False),
            )
        else:
            run_id = f"{cfg.name}-{uuid4().hex[:12]}"
            settings = _wandb_settings(t.model_copy(update={"run_id": run_id}), local_folder(cfg))
            wandb_runs.open_parent(settings, name, content.pipeline_params(config))
    except Exception:  # noqa: BLE001 -- tracking must not stop the run it tracks
        _warn(f"open the {t.backend} run at {t.uri}; this run is not tracked")
        return cfg
    log.info("tracking: %s run %s (%s)", t.backend, run_id, t.uri)
    return cfg.model_copy(update={"tracking": t.model_copy(update={"run_id": run_id})})


def close_pipeline_run(cfg: PipelineConfig, failed: bool | None = None) -> None:
    """End the pipeline run: FAILED while an exception propagates (``failed`` unset,
    called from a ``finally``), else FINISHED."""
    t = cfg.tracking
    if t.backend != TrackingBackend.mlflow or not t.run_id:
        return
    failed = sys.exc_info()[0] is not None if failed is None else failed
    try:
        mlflow_runs.close_parent(t.uri, t.run_id, failed)
    except Exception:  # noqa: BLE001
        _warn(f"close the run {t.run_id}")


def log_outputs(cfg: PipelineConfig, store: ArtifactStore, manifests: Iterable[Manifest]) -> None:
    """Each output in its stage run under the pipeline run (an output already logged in
    this pipeline run is skipped, so this is called again after every stage)."""
    t = cfg.tracking
    if t.backend == TrackingBackend.none or not t.run_id:
        return
    for manifest in manifests:
        try:
            if t.backend == TrackingBackend.mlflow:
                mlflow_runs.log_stage(t.uri, t.run_id, store, manifest)
            elif manifest.fingerprint not in _WANDB_LOGGED.setdefault(t.run_id, set()):
                wandb_runs.log_stage(_wandb_settings(t, local_folder(cfg)), store, manifest)
                _WANDB_LOGGED[t.run_id].add(manifest.fingerprint)
        except Exception:  # noqa: BLE001
            _warn(f"log {manifest.stage}/{manifest.fingerprint}")


# W&B offline runs cannot be read back: what this process logged, per pipeline run.
_WANDB_LOGGED: dict[str, set[str]] = {}


def configure_job(cfg: PipelineConfig) -> None:
    """In a training job: keep its config's tracking section for ``attach_trainer``."""
    if cfg.tracking.backend != TrackingBackend.none and cfg.tracking.run_id:
        os.environ[JOB_ENV] = json.dumps(
            {**resolve(cfg).model_dump(mode="json"), "local_folder": str(local_folder(cfg))}
        )


def attach_trainer(trainer: Any, stage: str, fingerprint: str, rank: int) -> None:
    """Give the job's HF Trainer its own tracking callback, pointed at the stage's run
    under the pipeline run (world rank 0 alone logs, as the callbacks do)."""
    raw = os.environ.get(JOB_ENV)
    if not raw or rank != 0:
        return
    settings = json.loads(raw)
    folder = Path(settings.pop("local_folder"))
    t = TrackingConfig.model_validate(settings)
    try:
        if t.backend == TrackingBackend.mlflow:
            run_id = mlflow_runs.stage_run(t.uri, t.run_id, stage, fingerprint)
            env = mlflow_runs.job_environment(t.uri, t.experiment, run_id)
            trainer.add_callback(mlflow_runs.trainer_callback(env))
        else:
            env = wandb_runs.job_environment(_wandb_settings(t, folder), stage, fingerprint)
            trainer.add_callback(wandb_runs.trainer_callback(env))
    except Exception:  # noqa: BLE001 -- the job trains untracked rather than not at all
        _warn(f"attach the trainer to the {t.backend} run of {stage}/{fingerprint}")
        return
    where = t.uri if t.backend == TrackingBackend.mlflow else f"{folder}/wandb, {t.mode}"
    print(f"tracking: {stage} logs to {t.backend} ({where})", flush=True)
