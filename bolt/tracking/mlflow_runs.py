"""The MLflow backend, through ``MlflowClient`` only (no active-run state in the worker,
whose tasks run in threads): the pipeline run, the stage runs nested under it (the
``mlflow.parentRunId`` tag, what ``start_run(nested=True)`` sets), and the training
job's hand-over to the HF Trainer's ``MLflowCallback``.

A stage run is found again by its tags (parent run, stage, fingerprint): the training
job creates its stage's run when it starts (so the curves stream in live), and the
pipeline logs the output's params, metrics and plots into the same run once the stage
has committed; a relaunched job resumes the same run.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bolt.store import ArtifactStore, Manifest
from bolt.tracking.content import (
    PLOT_SUFFIXES,
    artifact_files,
    parent_metrics,
    stage_curves,
    stage_metrics,
    stage_params,
    stage_run_name,
    stage_tags,
)

PARENT_TAG = "mlflow.parentRunId"
RUN_NAME_TAG = "mlflow.runName"
LOGGED_TAG = "bolt.logged"
# One log_batch call holds at most this many params (MLflow's limit) or metrics.
BATCH = 100


def _mlflow():
    try:
        import mlflow
    except ImportError as exc:  # pragma: no cover - mlflow ships with the cpu/gpu extras
        raise RuntimeError(
            "tracking.backend=mlflow needs the mlflow package: pip install 'mlflow>=3.17,<4' "
            "(the cpu and gpu extras have it), or set tracking.backend=none"
        ) from exc
    return mlflow


def client(uri: str):
    return _mlflow().tracking.MlflowClient(tracking_uri=uri)


def experiment_id(c, name: str, artifact_location: str | None) -> str:
    """The experiment's id, created (with its artifact location) when it is new."""
    found = c.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    try:
        return c.create_experiment(name, artifact_location=artifact_location)
    except Exception:
        found = c.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def log_params(c, run_id: str, values: Mapping[str, str]) -> None:
    """Params in batches; a param already logged (with any value) is left as it is."""
    from mlflow.entities import Param

    have = c.get_run(run_id).data.params
    todo = [Param(k, v) for k, v in values.items() if k not in have]
    for i in range(0, len(todo), BATCH):
        c.log_batch(run_id, params=todo[i : i + BATCH])


def log_metrics(c, run_id: str, values: Mapping[str, float], step: int = 0) -> None:
    import time

    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    todo = [Metric(k, v, now, step) for k, v in values.items()]
    for i in range(0, len(todo), BATCH):
        c.log_batch(run_id, metrics=todo[i : i + BATCH])


def log_curves(c, run_id: str, curves: Mapping[str, list[tuple[int, float]]]) -> None:
    import time

    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    todo = [Metric(k, v, now, step) for k, points in curves.items() for step, v in points]
    for i in range(0, len(todo), BATCH * 10):
        c.log_batch(run_id, metrics=todo[i : i + BATCH * 10])


def open_parent(
    uri: str,
    experiment: str,
    artifact_location: str | None,
    name: str,
    tags: Mapping[str, str],
    params: Mapping[str, str],
    config_yaml: str,
) -> str:
    c = client(uri)
    run = c.create_run(
        experiment_id(c, experiment, artifact_location),
        run_name=name,
        tags={**tags, "bolt.kind": "pipeline"},
    )
    log_params(c, run.info.run_id, params)
    c.log_text(run.info.run_id, config_yaml, "config.yaml")
    return run.info.run_id


def close_parent(uri: str, run_id: str, failed: bool) -> None:
    client(uri).set_terminated(run_id, "FAILED" if failed else "FINISHED")


def stage_run(uri: str, parent_id: str, stage: str, fingerprint: str) -> str:
    """The id of the parent's run for (stage, fingerprint), created when there is none."""
    c = client(uri)
    parent = c.get_run(parent_id)
    exp = parent.info.experiment_id
    query = (
        f"tags.`{PARENT_TAG}` = '{parent_id}' and tags.`bolt.stage` = '{stage}' "
        f"and tags.`bolt.fingerprint` = '{fingerprint}'"
    )
    found = c.search_runs([exp], filter_string=query, max_results=1)
    if found:
        return found[0].info.run_id
    tags = {
        PARENT_TAG: parent_id,
        "bolt.stage": stage,
        "bolt.fingerprint": fingerprint,
        "bolt.kind": "stage",
    }
    return c.create_run(exp, run_name=stage_run_name(stage, fingerprint), tags=tags).info.run_id


def log_stage(uri: str, parent_id: str, store: ArtifactStore, manifest: Manifest) -> str | None:
    """An output's params, tags, metrics, curves and plots in its stage run (once: a run
    already marked logged is left alone); its eval scores on the parent too."""
    run_id = stage_run(uri, parent_id, str(manifest.stage), manifest.fingerprint)
    c = client(uri)
    if c.get_run(run_id).data.tags.get(LOGGED_TAG) == "true":
        return None
    for key, value in stage_tags(store, manifest).items():
        c.set_tag(run_id, key, value)
    log_params(c, run_id, stage_params(manifest))
    log_metrics(c, run_id, stage_metrics(store, manifest))
    log_curves(c, run_id, stage_curves(manifest))
    _log_files(c, run_id, store, manifest)
    if scores := parent_metrics(manifest):
        log_metrics(c, parent_id, scores)
    c.set_tag(run_id, LOGGED_TAG, "true")
    run = c.get_run(run_id)
    if run.info.status in ("RUNNING", "SCHEDULED"):
        c.set_terminated(run_id, "FINISHED")
    return run_id


def _log_files(c, run_id: str, store: ArtifactStore, manifest: Manifest) -> None:
    with tempfile.TemporaryDirectory(prefix="bolt-tracking-") as tmp:
        for relpath in artifact_files(manifest):
            local = store.get_file(manifest, relpath, Path(tmp) / relpath)
            folder = "plots" if relpath.endswith(PLOT_SUFFIXES) else "reports"
            sub = str(Path(relpath).parent)
            c.log_artifact(run_id, str(local), folder if sub == "." else f"{folder}/{sub}")


def job_environment(uri: str, experiment: str, run_id: str) -> dict[str, str]:
    """What the HF Trainer's ``MLflowCallback`` reads to log into the stage run: the
    tracking URI, the experiment and the run to resume. It logs no params of its own
    (the stage's config is logged by the pipeline, and a relaunched job's arguments
    would clash with the first launch's); metrics stream synchronously enough that a
    job killed mid-run keeps the steps it reached."""
    return {
        "MLFLOW_TRACKING_URI": uri,
        "MLFLOW_EXPERIMENT_NAME": experiment,
        "MLFLOW_RUN_ID": run_id,
        "MLFLOW_MAX_LOG_PARAMS": "0",
    }


def trainer_callback(env: Mapping[str, str]) -> Any:
    """The HF Trainer's own MLflow integration, configured by ``env`` (set first)."""
    os.environ.update(env)
    _mlflow()
    from transformers.integrations import MLflowCallback

    return MLflowCallback()
