"""Prefect tasks of scoring (one per bootstrap shard) and filtering (one pass)."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.context import TaskRunContext

from bolt.config import PipelineConfig
from bolt.filtering.stage import filter_fingerprint, run_filter, run_score, run_score_shard
from bolt.rewards.live import rewards_for
from bolt.sharding import ShardPlan
from bolt.stages import Stage
from bolt.store import ArtifactStore, Manifest, ShardInfo
from tasks.runtime import CACHED_RESULT, shard_key, stage_key
from tasks.sharding import shard_tasks


def _filter_key(ctx: TaskRunContext, params: dict[str, Any]) -> str:
    scored, data = params["scored"], params["data"]
    return stage_key(
        ctx,
        params["cfg"],
        Stage.filter,
        filter_fingerprint(params["cfg"], scored.fingerprint, data.fingerprint),
    )


def _rewards(cfg: PipelineConfig):
    return lambda: rewards_for(cfg, cfg.filter.rewards, Stage.score)


@task(
    name="score-shard",
    task_run_name="score-shard-{plan.index:05d}",
    retries=1,
    retry_delay_seconds=30,
    cache_key_fn=shard_key(Stage.score),
    **CACHED_RESULT,
)
def score_shard(
    cfg: PipelineConfig, fp: str, plan: ShardPlan[ShardInfo], bootstrap: Manifest, data: Manifest
) -> ShardInfo:
    """One bootstrap shard's samples, format-checked and scored."""
    store = ArtifactStore.from_config(cfg.storage)
    return run_score_shard(cfg, store, fp, plan, bootstrap, data, _rewards(cfg))


def score_samples(cfg: PipelineConfig, bootstrap: Manifest, data: Manifest) -> Manifest:
    """The scored samples (in a flow): each unscored bootstrap shard as a ``score-shard``
    task, then the commit; a rerun scores only the shards not yet stored."""
    store = ArtifactStore.from_config(cfg.storage)
    runner = shard_tasks(score_shard, cfg, Stage.score, bootstrap, data)
    return run_score(cfg, store, bootstrap, data, _rewards(cfg), runner)


@task(name="select-sft-set", retries=1, cache_key_fn=_filter_key, **CACHED_RESULT)
def select_sft_set(cfg: PipelineConfig, scored: Manifest, data: Manifest) -> Manifest:
    return run_filter(cfg, ArtifactStore.from_config(cfg.storage), scored, data)
