"""The shard runner of every sharded stage: each pending shard as its own Prefect task.

``bolt.sharding.run_sharded`` decides which shards are pending; this submits one task per
pending shard, all at once (the task runner decides how many run side by side; under
Ray each asks for its engine's GPUs), and gathers their receipts in plan order. A shard
task's arguments are ``(cfg, fp, plan, *inputs)``: it rebuilds the shard's work there.
"""

from __future__ import annotations

from typing import Any

from prefect import Task, get_run_logger

from bolt.config import PipelineConfig
from bolt.sharding import ShardPlan, ShardRunner, ShardWork
from bolt.stages import Stage
from bolt.store import ShardInfo
from tasks.reporting import ShardProgress
from tasks.runtime import shard_resources


def shard_tasks(
    shard_task: Task[..., ShardInfo], cfg: PipelineConfig, stage: Stage, *inputs: Any
) -> ShardRunner[Any]:
    """A runner submitting ``shard_task(cfg, fp, plan, *inputs)`` for each pending shard."""

    def run(fp: str, plans: list[ShardPlan[Any]], _work: ShardWork[Any]) -> list[ShardInfo]:
        progress = ShardProgress(stage, fp, len(plans))
        with shard_resources(cfg, stage):
            futures = [shard_task.submit(cfg, fp, plan, *inputs) for plan in plans]
        shards, logger = [], get_run_logger()
        try:
            for future in futures:
                shard = future.result()
                shards.append(shard)
                progress.advance(shard)
                logger.info(
                    "%s shard %s: %s records in %s s",
                    stage,
                    shard.index,
                    shard.records,
                    shard.meta.get("seconds"),
                )
        finally:
            progress.close()
        return shards

    return run
