"""One training stage run from the pipeline's side: launch the job, wait, return its
manifest. The same sequence for SFT (BOLT §3.2) and each DPO iteration (§3.3)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from bolt.config import PipelineConfig
from bolt.resources import POOL
from bolt.store import ArtifactStore, Manifest
from bolt.train.job import LogSink, TrainJob
from bolt.train.launch import run_job


def local_job_dir(job: TrainJob) -> Path:
    """A fixed folder per job: a retry on this machine finds its local checkpoint copies."""
    return Path(tempfile.gettempdir()) / "bolt-jobs" / job.name


def train_stage(cfg: PipelineConfig, job: TrainJob, on_line: LogSink) -> Manifest:
    """The manifest the job commits, launching it unless the store already holds one.

    A failed job raises ``LaunchError``; launching it again resumes from the store's
    last complete checkpoint, so a retry redoes at most ``save_steps`` steps.
    """
    store = ArtifactStore.from_config(cfg.storage)
    if (done := store.manifest(job.stage, job.fingerprint)) is not None:
        return done
    # The job is another process: every engine and model of this one frees the accelerator.
    POOL.release()
    job_dir = local_job_dir(job)
    run_job(cfg, job, job_dir, on_line)
    manifest = store.require(job.stage, job.fingerprint)
    # Committed: the local checkpoint copies (GBs at scale) have served their purpose.
    shutil.rmtree(job_dir, ignore_errors=True)
    return manifest
