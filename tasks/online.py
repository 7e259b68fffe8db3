"""Prefect tasks of online DPO: one per sub-stage of an iteration, each cached by its
fingerprint (a rerun shows finished sub-stages as Cached), each retried as its work
allows: sampling and scoring hold models and retry once; training relaunches the job,
which resumes from the store's last checkpoint. The reference log-prob pass and DPO are
jobs (bolt.train.stage): each gets its inputs by store reference, never a worker folder."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.context import TaskRunContext

from bolt.config import PipelineConfig
from bolt.evals.contamination import index_for
from bolt.online import stage
from bolt.records import Query
from bolt.rewards.live import rewards_for
from bolt.sharding import ShardPlan
from bolt.stages import Stage
from bolt.store import ArtifactStore, Manifest, ShardInfo
from bolt.train.fingerprints import policy_fingerprint
from bolt.train.reference import reference_fingerprint
from bolt.train.stage import dpo_job, reference_job, train_stage
from tasks.runtime import CACHED_RESULT, shard_key, stage_key
from tasks.sharding import shard_tasks
from tasks.training import TrainingProgress


def _prompts_key(ctx: TaskRunContext, p: dict[str, Any]) -> str:
    fp = stage.prompts_fingerprint(p["cfg"], p["iteration"])
    return stage_key(ctx, p["cfg"], Stage.online_prompts, fp)


def _pairs_key(ctx: TaskRunContext, p: dict[str, Any]) -> str:
    fp = stage.pairs_fingerprint(p["cfg"], p["scores"].fingerprint, p["iteration"])
    return stage_key(ctx, p["cfg"], Stage.online_pairs, fp)


def _reference_key(ctx: TaskRunContext, p: dict[str, Any]) -> str:
    fp = reference_fingerprint(p["cfg"], p["pairs"].fingerprint, p["reference_id"])
    return stage_key(ctx, p["cfg"], Stage.online_reference, fp)


def _policy_key(ctx: TaskRunContext, p: dict[str, Any]) -> str:
    fp = policy_fingerprint(
        p["cfg"], p["pairs"].fingerprint, p["reference"].fingerprint, p["policy_id"], p["iteration"]
    )
    return stage_key(ctx, p["cfg"], Stage.online_policy, fp)


@task(name="online-prompts", retries=1, cache_key_fn=_prompts_key, **CACHED_RESULT)
def choose_prompts(cfg: PipelineConfig, iteration: int) -> Manifest:
    store = ArtifactStore.from_config(cfg.storage)
    return stage.run_prompts(cfg, store, iteration, contamination=index_for(cfg))


@task(
    name="online-samples-shard",
    task_run_name="online-samples-shard-{plan.index:05d}",
    retries=1,
    cache_key_fn=shard_key(Stage.online_samples),
    **CACHED_RESULT,
)
def sample_shard(
    cfg: PipelineConfig, fp: str, plan: ShardPlan[Query], policy_dir: str
) -> ShardInfo:
    store = ArtifactStore.from_config(cfg.storage)
    engine = lambda: stage.policy_engine(cfg, policy_dir)
    return stage.run_samples_shard(cfg, store, fp, plan, engine)


def sample_policy(
    cfg: PipelineConfig, prompts: Manifest, policy_id: str, policy_dir: str
) -> Manifest:
    """The policy's samples (in a flow): each unfinished shard of ``online.shard_size``
    prompts as an ``online-samples-shard`` task, then the commit."""
    store = ArtifactStore.from_config(cfg.storage)
    runner = shard_tasks(sample_shard, cfg, Stage.online_samples, policy_dir)
    engine = lambda: stage.policy_engine(cfg, policy_dir)
    return stage.run_samples(cfg, store, prompts, policy_id, engine, runner)


def _online_rewards(cfg: PipelineConfig):
    return lambda: rewards_for(cfg, cfg.online.rewards, Stage.online_scores)


@task(
    name="online-scores-shard",
    task_run_name="online-scores-shard-{plan.index:05d}",
    retries=1,
    cache_key_fn=shard_key(Stage.online_scores),
    **CACHED_RESULT,
)
def score_shard(
    cfg: PipelineConfig, fp: str, plan: ShardPlan[ShardInfo], samples: Manifest, prompts: Manifest
) -> ShardInfo:
    store = ArtifactStore.from_config(cfg.storage)
    return stage.run_scores_shard(store, fp, plan, samples, prompts, _online_rewards(cfg))


def score_samples(cfg: PipelineConfig, samples: Manifest, prompts: Manifest) -> Manifest:
    """The samples' scores (in a flow): one ``online-scores-shard`` task per samples
    shard not scored yet, then the commit."""
    store = ArtifactStore.from_config(cfg.storage)
    runner = shard_tasks(score_shard, cfg, Stage.online_scores, samples, prompts)
    return stage.run_scores(cfg, store, samples, prompts, _online_rewards(cfg), runner)


@task(name="online-pairs", cache_key_fn=_pairs_key, **CACHED_RESULT)
def make_pairs(
    cfg: PipelineConfig, scores: Manifest, prompts: Manifest, iteration: int
) -> Manifest:
    return stage.run_pairs(cfg, ArtifactStore.from_config(cfg.storage), scores, prompts, iteration)


@task(name="online-reference", retries=1, cache_key_fn=_reference_key, **CACHED_RESULT)
def reference_logps(cfg: PipelineConfig, pairs: Manifest, reference_id: str) -> Manifest:
    """Launch the reference pass (compute.launcher) under the model ``reference_id``."""
    job = reference_job(cfg, pairs.fingerprint, reference_id)
    return train_stage(cfg, job, TrainingProgress(f"reference {job.fingerprint}", {}))


@task(
    name="online-dpo", retries=2, retry_delay_seconds=60, cache_key_fn=_policy_key, **CACHED_RESULT
)
def train_policy(
    cfg: PipelineConfig,
    iteration: int,
    pairs: Manifest,
    reference: Manifest,
    policy_id: str,
) -> Manifest:
    """Launch the DPO job (compute.launcher) from the policy ``policy_id`` (a store id the
    job fetches itself); a retry relaunches it and it resumes."""
    job = dpo_job(cfg, iteration, pairs.fingerprint, reference.fingerprint, policy_id)
    progress = TrainingProgress(f"dpo iteration {iteration}", {"reward margin": "reward_margin"})
    return train_stage(cfg, job, progress)
