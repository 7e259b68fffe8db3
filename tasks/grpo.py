"""Prefect tasks of RLMT's GRPO (online.algorithm: grpo): the strict-mode scores (one
task per samples shard), the groups with their advantages and the training job, each
cached by its fingerprint. The prompts and samples are the DPO loop's tasks
(``tasks.online``), the samples read with ``n`` = the group size
(``bolt.online.grpo_data.grpo_config``)."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.context import TaskRunContext

from bolt.config import PipelineConfig
from bolt.online import grpo_data
from bolt.rewards.live import rewards_for
from bolt.sharding import ShardPlan
from bolt.stages import Stage
from bolt.store import ArtifactStore, Manifest, ShardInfo
from bolt.train.grpo import grpo_job
from bolt.train.stage import train_stage
from tasks.runtime import CACHED_RESULT, shard_key, stage_key
from tasks.sharding import shard_tasks
from tasks.training import TrainingProgress


def _groups_key(ctx: TaskRunContext, p: dict[str, Any]) -> str:
    fp = grpo_data.groups_fingerprint(p["cfg"], p["scores"].fingerprint, p["iteration"])
    return stage_key(ctx, p["cfg"], Stage.online_groups, fp)


def _policy_key(ctx: TaskRunContext, p: dict[str, Any]) -> str:
    job = grpo_job(
        p["cfg"], p["iteration"], p["groups"].fingerprint, p["policy_id"], p["reference_id"]
    )
    return stage_key(ctx, p["cfg"], Stage.online_policy, job.fingerprint)


def _rewards(cfg: PipelineConfig):
    return lambda: rewards_for(cfg, cfg.online.rewards, Stage.online_scores)


@task(
    name="online-grpo-scores-shard",
    task_run_name="online-grpo-scores-shard-{plan.index:05d}",
    retries=1,
    cache_key_fn=shard_key(Stage.online_scores),
    **CACHED_RESULT,
)
def score_groups_shard(
    cfg: PipelineConfig, fp: str, plan: ShardPlan[ShardInfo], samples: Manifest, prompts: Manifest
) -> ShardInfo:
    store = ArtifactStore.from_config(cfg.storage)
    return grpo_data.run_grpo_scores_shard(cfg, store, fp, plan, samples, prompts, _rewards(cfg))


def score_groups(cfg: PipelineConfig, samples: Manifest, prompts: Manifest) -> Manifest:
    """The strict-mode scores (in a flow): one ``online-grpo-scores-shard`` task per
    samples shard not scored yet, then the commit."""
    store = ArtifactStore.from_config(cfg.storage)
    runner = shard_tasks(score_groups_shard, cfg, Stage.online_scores, samples, prompts)
    return grpo_data.run_grpo_scores(cfg, store, samples, prompts, _rewards(cfg), runner)


@task(name="online-groups", cache_key_fn=_groups_key, **CACHED_RESULT)
def make_groups(
    cfg: PipelineConfig, scores: Manifest, prompts: Manifest, iteration: int
) -> Manifest:
    store = ArtifactStore.from_config(cfg.storage)
    return grpo_data.run_groups(cfg, store, scores, prompts, iteration)


@task(
    name="online-grpo", retries=2, retry_delay_seconds=60, cache_key_fn=_policy_key, **CACHED_RESULT
)
def train_grpo(
    cfg: PipelineConfig, iteration: int, groups: Manifest, policy_id: str, reference_id: str
) -> Manifest:
    """Launch the GRPO job (compute.launcher); a retry relaunches it and it resumes."""
    job = grpo_job(cfg, iteration, groups.fingerprint, policy_id, reference_id)
    progress = TrainingProgress(f"grpo iteration {iteration}", {"kl": "kl"})
    return train_stage(cfg, job, progress)
