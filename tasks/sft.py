"""The Prefect task of LongCoT SFT: launch the training job, follow it, retry by resuming.

The job runs wherever ``compute.launcher`` says (bolt.train.launch); this task only
turns its progress lines into a Prefect progress artifact and log lines. A failed job
(a node lost, a pod evicted) fails the task; Prefect's retry relaunches it and the
entrypoint resumes from the last checkpoint in the store, so a retry redoes at most
``sft.save_steps`` steps.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.context import TaskRunContext

from bolt.config import PipelineConfig
from bolt.store import ArtifactStore, Manifest
from bolt.train.launch import TrainJob, run_job
from bolt.train.outputs import STAGE
from bolt.train.progress import parse_progress
from bolt.train.sft import sft_fingerprint
from tasks.runtime import CACHED_RESULT, stage_key

SFT_MODULE = "bolt.train.sft"


class TrainingProgress:
    """Turns the job's BOLT_PROGRESS lines into a progress artifact and log lines."""

    def __init__(self, fingerprint: str):
        self.artifact = create_progress_artifact(0.0, description=f"sft {fingerprint}: steps")
        self.logger = get_run_logger()
        self.last: dict[str, Any] | None = None

    def __call__(self, line: str) -> None:
        record = parse_progress(line)
        if record is None:
            if line.startswith("launch:"):
                self.logger.info(line)
            return
        self.last = record
        if record.get("max_steps"):
            update_progress_artifact(self.artifact, 100.0 * record["step"] / record["max_steps"])
        self.logger.info(
            "sft step %s/%s: loss %.4f, %s tokens/s",
            record["step"],
            record.get("max_steps"),
            record.get("loss", float("nan")),
            record.get("tokens_per_s"),
        )


def _sft_key(_: TaskRunContext, params: dict[str, Any]) -> str:
    return stage_key(
        params["cfg"], STAGE, sft_fingerprint(params["cfg"], params["sft_set"].fingerprint)
    )


@task(name="train-sft", retries=2, retry_delay_seconds=60, cache_key_fn=_sft_key, **CACHED_RESULT)
def train_sft(cfg: PipelineConfig, sft_set: Manifest) -> Manifest:
    store = ArtifactStore.from_config(cfg.storage)
    fp = sft_fingerprint(cfg, sft_set.fingerprint)
    if (done := store.manifest(STAGE, fp)) is not None:
        return done
    job = TrainJob(STAGE, fp, SFT_MODULE, ("--sft-set", sft_set.fingerprint), cfg.name)
    # A fixed folder per job: a retry on this machine finds its local checkpoint copies.
    job_dir = Path(tempfile.gettempdir()) / "bolt-jobs" / job.name
    run_job(cfg, job, job_dir, TrainingProgress(fp))
    manifest = store.require(STAGE, fp)
    # Committed: the local checkpoint copies (GBs at scale) have served their purpose.
    shutil.rmtree(job_dir, ignore_errors=True)
    return manifest
