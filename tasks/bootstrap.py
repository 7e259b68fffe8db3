"""Prefect tasks of the bootstrapping stage: one task per shard, retried on its own.

The store's shard receipts are the resume mechanism (``bolt.sharding``): a task whose
shard already has a receipt returns it without touching the engine, so a rerun (CLI or
Prefect UI) costs only the shards that did not finish.
"""

from __future__ import annotations

from prefect import task

from bolt.bootstrap.stage import run_shard
from bolt.config import PipelineConfig
from bolt.engines.live import context_length, engine_for
from bolt.records import Query
from bolt.sharding import ShardPlan
from bolt.stages import Stage
from bolt.store import ArtifactStore, ShardInfo
from tasks.runtime import CACHED_RESULT, shard_key


def teacher(cfg: PipelineConfig):
    """The live teacher engine (a factory: started only for a shard that is made)."""
    name, engine_cfg = cfg.bootstrap.teacher_model, cfg.engine_settings(Stage.bootstrap)
    return lambda: engine_for(cfg, name, engine_cfg)


def teacher_context(cfg: PipelineConfig) -> int | None:
    return context_length(cfg, cfg.bootstrap.teacher_model, cfg.engine_settings(Stage.bootstrap))


@task(
    name="bootstrap-shard",
    task_run_name="bootstrap-shard-{plan.index:05d}",
    retries=2,
    retry_delay_seconds=[10, 60],
    cache_key_fn=shard_key(Stage.bootstrap),
    **CACHED_RESULT,
)
def bootstrap_shard(cfg: PipelineConfig, fp: str, plan: ShardPlan[Query]) -> ShardInfo:
    store = ArtifactStore.from_config(cfg.storage)
    return run_shard(store, fp, plan, cfg, teacher(cfg), teacher_context(cfg))
