"""The Weights & Biases backend. W&B has no nested runs: the pipeline run is a group
(``tracking.run_id``), with a ``pipeline`` run holding the config and one run per stage
output (``job_type`` the stage), each with an id derived from the group, stage and
fingerprint, so the training job and the pipeline log into the same run. Offline mode
(the default) writes the runs under ``<dir>/wandb/`` with no network; ``wandb sync``
uploads them.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bolt.store import ArtifactStore, Manifest
from bolt.tracking.content import (
    artifact_files,
    stage_curves,
    stage_metrics,
    stage_params,
    stage_run_name,
    stage_tags,
)


def _wandb():
    try:
        import wandb
    except ImportError as exc:
        raise RuntimeError(
            "tracking.backend=wandb needs the wandb package: pip install 'wandb>=0.31' "
            "(offline mode needs no account), or set tracking.backend=mlflow or none"
        ) from exc
    return wandb


def run_id(group: str, stage: str, fingerprint: str) -> str:
    digest = hashlib.sha256(f"{group}/{stage}/{fingerprint}".encode()).hexdigest()
    return digest[:24]


def _init(settings: Mapping[str, Any], **kwargs: Any):
    wandb = _wandb()
    return wandb.init(
        project=settings["project"],
        entity=settings.get("entity"),
        group=settings["group"],
        mode=settings["mode"],
        dir=settings["dir"],
        resume="allow",
        reinit="create_new",
        **kwargs,
    )


def open_parent(settings: Mapping[str, Any], name: str, params: Mapping[str, str]) -> None:
    Path(settings["dir"]).mkdir(parents=True, exist_ok=True)
    run = _init(
        settings,
        id=run_id(settings["group"], "pipeline", ""),
        name=name,
        job_type="pipeline",
        config=dict(params),
    )
    run.finish()


def log_stage(settings: Mapping[str, Any], store: ArtifactStore, manifest: Manifest) -> str:
    """An output's config, tags, metrics (summary), curves and plots in its stage run."""
    wandb = _wandb()
    stage, fp = str(manifest.stage), manifest.fingerprint
    ident = run_id(settings["group"], stage, fp)
    run = _init(
        settings,
        id=ident,
        name=stage_run_name(stage, fp),
        job_type=stage,
        config=stage_params(manifest),
        tags=[stage],
    )
    try:
        run.summary.update(stage_tags(store, manifest))
        run.summary.update(stage_metrics(store, manifest))
        for key, points in stage_curves(manifest).items():
            run.define_metric(key, step_metric=f"{key}.step")
            for step, value in points:
                run.log({f"{key}.step": step, key: value})
        files = artifact_files(manifest)
        if files:
            artifact = wandb.Artifact(f"{stage}-{fp}", type="bolt-output")
            with tempfile.TemporaryDirectory(prefix="bolt-tracking-") as tmp:
                for relpath in files:
                    local = store.get_file(manifest, relpath, Path(tmp) / relpath)
                    artifact.add_file(str(local), name=relpath)
                    if relpath.endswith(".png"):
                        run.log({f"plots/{relpath}": wandb.Image(str(local))})
                run.log_artifact(artifact)
    finally:
        run.finish()
    return ident


def job_environment(settings: Mapping[str, Any], stage: str, fingerprint: str) -> dict[str, str]:
    """What the HF Trainer's ``WandbCallback`` (and ``wandb.init``) read to log into
    the stage's run."""
    env = {
        "WANDB_PROJECT": settings["project"],
        "WANDB_RUN_GROUP": settings["group"],
        "WANDB_RUN_ID": run_id(settings["group"], stage, fingerprint),
        "WANDB_RESUME": "allow",
        "WANDB_JOB_TYPE": stage,
        "WANDB_MODE": settings["mode"],
        "WANDB_DIR": settings["dir"],
        "WANDB_LOG_MODEL": "false",
    }
    if settings.get("entity"):
        env["WANDB_ENTITY"] = settings["entity"]
    return env


def trainer_callback(env: Mapping[str, str]) -> Any:
    os.environ.update(env)
    _wandb()
    from transformers.integrations import WandbCallback

    return WandbCallback()
