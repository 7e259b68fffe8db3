"""Experiment tracking: where a pipeline run and its stages are logged (MLflow or W&B).

Nothing here changes an artifact: every field is ``AFFECTS_OUTPUT_NOT``, so pointing a
run at another tracking server, or switching tracking off, keeps every fingerprint.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from bolt.config.base import AFFECTS_OUTPUT_NOT, Strict
from bolt.config.enums import TrackingBackend


class TrackingConfig(Strict):
    """Experiment tracking: one run per pipeline run, one nested run per stage output."""

    backend: TrackingBackend = Field(
        TrackingBackend.mlflow,
        description="mlflow (default), wandb, or none. A run per pipeline run with one nested "
        "run per stage output (W&B: a run per stage, grouped by the pipeline run): config, "
        "fingerprints and store URIs as params/tags; counts, rejects by reason, rewards and "
        "eval scores as metrics; the plots as artifacts; training curves through the HF "
        "Trainer's own integration inside the training job.",
        json_schema_extra=AFFECTS_OUTPUT_NOT,
    )
    uri: str | None = Field(
        None,
        description="MLflow tracking URI: a server (http://host:5000) or a database "
        "(sqlite:///PATH). Unset: MLFLOW_TRACKING_URI when set, else a SQLite store at "
        "`<root>/mlflow/mlflow.db` (artifacts beside it) for a file:// storage root, "
        "`./mlflow/` for an s3:// root. Kubernetes jobs need a server (they share no disk).",
        json_schema_extra=AFFECTS_OUTPUT_NOT,
    )
    experiment: str | None = Field(
        None,
        description="MLflow experiment (W&B project when `project` is unset); default: "
        "the config's `name`.",
        json_schema_extra=AFFECTS_OUTPUT_NOT,
    )
    project: str | None = Field(
        None,
        description="W&B project; default: `experiment`, else `name`.",
        json_schema_extra=AFFECTS_OUTPUT_NOT,
    )
    entity: str | None = Field(
        None,
        description="W&B entity (team or user); default: yours.",
        json_schema_extra=AFFECTS_OUTPUT_NOT,
    )
    mode: Literal["offline", "online"] = Field(
        "offline",
        description="W&B mode: offline writes the runs under `<root>/wandb` (no network; "
        "`wandb sync` uploads them later); online needs WANDB_API_KEY.",
        json_schema_extra=AFFECTS_OUTPUT_NOT,
    )
    run_id: str | None = Field(
        None,
        description="Set by the pipeline, not by hand: the pipeline run's tracking run "
        "(MLflow run id, W&B group), which the training jobs read from their config to log "
        "their curves into their stage's run.",
        json_schema_extra=AFFECTS_OUTPUT_NOT,
    )
