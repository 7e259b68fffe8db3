"""One job stage run from the pipeline's side: launch the job, wait, return its manifest.
The same sequence for SFT (BOLT §3.2) and, in each online iteration (§3.3), the
reference log-prob pass and DPO; the jobs of those three are built here.

Every job takes its inputs by store reference (fingerprints, model ids such as
``sft/<fp>``), never a folder of the worker's: a job runs in its own folder with a fresh
HOME and TMPDIR (``bolt.train.job.JobDirs``) wherever ``compute.launcher`` puts it.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from bolt.config import PipelineConfig
from bolt.resources import POOL
from bolt.stages import Stage
from bolt.store import ArtifactStore, Manifest
from bolt.train.fingerprints import policy_fingerprint, sft_fingerprint
from bolt.train.job import LogSink, TrainJob
from bolt.train.launch import run_job
from bolt.train.reference import reference_fingerprint

SFT_MODULE = "bolt.train.sft"
REFERENCE_MODULE = "bolt.train.reference"
DPO_MODULE = "bolt.train.dpo"


class NothingToTrainOn(ValueError):
    """A training stage's input set is empty: a retry cannot help, the stages before can."""


def require_examples(manifest: Manifest, what: str) -> None:
    """Raise before any job is launched when ``manifest`` holds no records, naming what
    the stage that made it left out and why (its ``dropped.*`` / ``skipped.*`` counts)."""
    if manifest.records:
        return
    left_out = {k: v for k, v in manifest.counts.items() if k.startswith(("dropped.", "skipped."))}
    why = ", ".join(f"{k} {v}" for k, v in sorted(left_out.items())) or "nothing was left out"
    raise NothingToTrainOn(
        f"the {what} {manifest.stage}/{manifest.fingerprint} is empty "
        f"({manifest.counts.get('samples', 0)} samples in; {why})"
    )


def sft_job(cfg: PipelineConfig, sft_set_fp: str) -> TrainJob:
    fp = sft_fingerprint(cfg, sft_set_fp)
    return TrainJob(Stage.sft, fp, SFT_MODULE, ("--sft-set", sft_set_fp), cfg.name)


def reference_job(cfg: PipelineConfig, pairs_fp: str, reference_id: str) -> TrainJob:
    """The reference log-prob pass of one iteration's pairs under the model ``reference_id``."""
    fp = reference_fingerprint(cfg, pairs_fp, reference_id)
    args = ("--pairs", pairs_fp, "--reference-model", reference_id)
    return TrainJob(Stage.online_reference, fp, REFERENCE_MODULE, args, cfg.name, "online")


def dpo_job(
    cfg: PipelineConfig, iteration: int, pairs_fp: str, reference_fp: str, policy_id: str
) -> TrainJob:
    """One iteration's DPO from the policy ``policy_id`` (``sft/<fp>``, ``online-policy/<fp>``)."""
    fp = policy_fingerprint(cfg, pairs_fp, reference_fp, policy_id, iteration)
    args = (
        "--iteration", str(iteration),
        "--policy", policy_id,
        "--pairs", pairs_fp,
        "--reference", reference_fp,
        "--fingerprint", fp,
    )  # fmt: skip
    return TrainJob(Stage.online_policy, fp, DPO_MODULE, args, cfg.name, section="online")


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
