"""How a pipeline run reaches the experiment tracker (``bolt.tracking``): after each
stage, every output of the run so far (the scores before the SFT set, each online
iteration's sub-stages, each evaluated model's answers and grades) in its stage run;
an output already logged in this pipeline run is skipped."""

from __future__ import annotations

from collections.abc import Sequence

from bolt.config import PipelineConfig
from bolt.store import ArtifactStore, Manifest
from bolt.tracking import log_outputs
from tasks.reporting import run_outputs


def track_outputs(cfg: PipelineConfig, store: ArtifactStore, done: Sequence[Manifest]) -> None:
    log_outputs(cfg, store, run_outputs(store, done))
