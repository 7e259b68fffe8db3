"""Prefect tasks of online DPO: one per sub-stage of an iteration, each cached by its
fingerprint (a rerun shows finished sub-stages as Cached), each retried as its work
allows: sampling and scoring hold models and retry once; training relaunches the job,
which resumes from the store's last checkpoint."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.context import TaskRunContext

from bolt.config import PipelineConfig
from bolt.engines import make_engine
from bolt.engines.base import Engine
from bolt.online import stage
from bolt.store import ArtifactStore, Manifest
from bolt.train.dpo import STAGE as POLICY_STAGE
from bolt.train.launch import TrainJob, run_job
from bolt.train.progress import parse_progress
from tasks.reward_pool import rewards_for
from tasks.runtime import CACHED_RESULT, stage_key

DPO_MODULE = "bolt.train.dpo"
# One policy engine at a time: iteration k+1 samples from new weights, so the engine of
# iteration k is closed (it holds the accelerator's memory) before the next starts.
_policy_engine: dict[str, Engine] = {}


def policy_engine(cfg: PipelineConfig, policy_dir: str) -> Engine:
    if policy_dir not in _policy_engine:
        release_policy_engine()
        _policy_engine[policy_dir] = make_engine(
            cfg.bootstrap.engine,
            policy_dir,
            seed=cfg.online.sampling.seed,
            device=cfg.compute.device,
        )
    return _policy_engine[policy_dir]


def release_policy_engine() -> None:
    while _policy_engine:
        _policy_engine.popitem()[1].close()


def _prompts_key(_: TaskRunContext, p: dict[str, Any]) -> str:
    return stage_key(p["cfg"], stage.PROMPTS, stage.prompts_fingerprint(p["cfg"], p["iteration"]))


def _samples_key(_: TaskRunContext, p: dict[str, Any]) -> str:
    fp = stage.samples_fingerprint(p["cfg"], p["prompts"].fingerprint, p["policy_id"])
    return stage_key(p["cfg"], stage.SAMPLES, fp)


def _scores_key(_: TaskRunContext, p: dict[str, Any]) -> str:
    return stage_key(
        p["cfg"], stage.SCORES, stage.scores_fingerprint(p["cfg"], p["samples"].fingerprint)
    )


def _pairs_key(_: TaskRunContext, p: dict[str, Any]) -> str:
    fp = stage.pairs_fingerprint(p["cfg"], p["scores"].fingerprint, p["iteration"])
    return stage_key(p["cfg"], stage.PAIRS, fp)


def _reference_key(_: TaskRunContext, p: dict[str, Any]) -> str:
    fp = stage.reference_fingerprint(p["cfg"], p["pairs"].fingerprint, p["reference_id"])
    return stage_key(p["cfg"], stage.REFERENCE, fp)


def _policy_key(_: TaskRunContext, p: dict[str, Any]) -> str:
    fp = stage.policy_fingerprint(
        p["cfg"],
        p["pairs"].fingerprint,
        p["reference"].fingerprint,
        p["policy_id"],
        p["iteration"],
    )
    return stage_key(p["cfg"], POLICY_STAGE, fp)


@task(name="online-prompts", retries=1, cache_key_fn=_prompts_key, **CACHED_RESULT)
def choose_prompts(cfg: PipelineConfig, iteration: int) -> Manifest:
    return stage.run_prompts(cfg, ArtifactStore.from_config(cfg.storage), iteration)


@task(name="online-samples", retries=1, cache_key_fn=_samples_key, **CACHED_RESULT)
def sample_policy(
    cfg: PipelineConfig, prompts: Manifest, policy_id: str, policy_dir: str
) -> Manifest:
    store = ArtifactStore.from_config(cfg.storage)
    return stage.run_samples(cfg, store, prompts, policy_id, lambda: policy_engine(cfg, policy_dir))


@task(name="online-scores", retries=1, cache_key_fn=_scores_key, **CACHED_RESULT)
def score_samples(cfg: PipelineConfig, samples: Manifest, prompts: Manifest) -> Manifest:
    store = ArtifactStore.from_config(cfg.storage)
    return stage.run_scores(
        cfg, store, samples, prompts, lambda: rewards_for(cfg, cfg.online.rewards)
    )


@task(name="online-pairs", cache_key_fn=_pairs_key, **CACHED_RESULT)
def make_pairs(
    cfg: PipelineConfig, scores: Manifest, prompts: Manifest, iteration: int
) -> Manifest:
    return stage.run_pairs(cfg, ArtifactStore.from_config(cfg.storage), scores, prompts, iteration)


@task(name="online-reference", retries=1, cache_key_fn=_reference_key, **CACHED_RESULT)
def reference_logps(
    cfg: PipelineConfig, pairs: Manifest, reference_id: str, reference_dir: str
) -> Manifest:
    store = ArtifactStore.from_config(cfg.storage)
    return stage.run_reference(cfg, store, pairs, reference_id, reference_dir)


class DpoProgress:
    """Logs the job's BOLT_PROGRESS lines: loss and implicit-reward margin per step."""

    def __init__(self, iteration: int):
        self.iteration, self.logger = iteration, get_run_logger()

    def __call__(self, line: str) -> None:
        record = parse_progress(line)
        if record is None:
            if line.startswith("launch:"):
                self.logger.info(line)
            return
        self.logger.info(
            "dpo iteration %s step %s/%s: loss %.4f, reward margin %s",
            self.iteration,
            record["step"],
            record.get("max_steps"),
            record.get("loss", float("nan")),
            record.get("reward_margin"),
        )


@task(
    name="online-dpo", retries=2, retry_delay_seconds=60, cache_key_fn=_policy_key, **CACHED_RESULT
)
def train_policy(
    cfg: PipelineConfig,
    iteration: int,
    pairs: Manifest,
    reference: Manifest,
    policy_id: str,
    policy_dir: str,
) -> Manifest:
    """Launch the DPO job (compute.launcher); a retry relaunches it and it resumes."""
    store = ArtifactStore.from_config(cfg.storage)
    fp = stage.policy_fingerprint(
        cfg, pairs.fingerprint, reference.fingerprint, policy_id, iteration
    )
    if (done := store.manifest(POLICY_STAGE, fp)) is not None:
        return done
    # The sampling engine's memory is the trainer's now.
    release_policy_engine()
    args = (
        "--iteration", str(iteration),
        "--policy-dir", policy_dir,
        "--pairs", pairs.fingerprint,
        "--reference", reference.fingerprint,
        "--fingerprint", fp,
    )  # fmt: skip
    job = TrainJob(POLICY_STAGE, fp, DPO_MODULE, args, cfg.name, section="online")
    job_dir = Path(tempfile.gettempdir()) / "bolt-jobs" / job.name
    run_job(cfg, job, job_dir, DpoProgress(iteration))
    policy = store.require(POLICY_STAGE, fp)
    shutil.rmtree(job_dir, ignore_errors=True)  # committed: local checkpoints not needed
    return policy
