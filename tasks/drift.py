"""Prefect tasks of DRIFT (online.algorithm: drift): the iteration's dissatisfaction
rows, the policy's revisions (one task per shard of rows) and the pairs, each cached by
its fingerprint. The
reference pass and the DPO job (with DRIFT's NLL term) are the DPO loop's tasks
(``tasks.online``)."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.context import TaskRunContext

from bolt.config import PipelineConfig
from bolt.evals.contamination import index_for
from bolt.online import drift, stage
from bolt.records import DissatisfactionRow
from bolt.sharding import ShardPlan
from bolt.stages import Stage
from bolt.store import ArtifactStore, Manifest, ShardInfo
from tasks.runtime import CACHED_RESULT, shard_key, stage_key
from tasks.sharding import shard_tasks


def _feedback_key(ctx: TaskRunContext, p: dict[str, Any]) -> str:
    fp = drift.feedback_fingerprint(p["cfg"], p["iteration"])
    return stage_key(ctx, p["cfg"], Stage.online_feedback, fp)


def _pairs_key(ctx: TaskRunContext, p: dict[str, Any]) -> str:
    fp = drift.drift_pairs_fingerprint(p["cfg"], p["samples"].fingerprint, p["iteration"])
    return stage_key(ctx, p["cfg"], Stage.online_pairs, fp)


@task(name="online-feedback", retries=1, cache_key_fn=_feedback_key, **CACHED_RESULT)
def choose_feedback(cfg: PipelineConfig, iteration: int) -> Manifest:
    store = ArtifactStore.from_config(cfg.storage)
    return drift.run_feedback(cfg, store, iteration, contamination=index_for(cfg))


@task(
    name="online-revisions-shard",
    task_run_name="online-revisions-shard-{plan.index:05d}",
    retries=1,
    cache_key_fn=shard_key(Stage.online_samples),
    **CACHED_RESULT,
)
def revisions_shard(
    cfg: PipelineConfig, fp: str, plan: ShardPlan[DissatisfactionRow], policy_dir: str
) -> ShardInfo:
    store = ArtifactStore.from_config(cfg.storage)
    engine = lambda: stage.policy_engine(cfg, policy_dir)
    return drift.run_drift_samples_shard(cfg, store, fp, plan, engine)


def sample_revisions(
    cfg: PipelineConfig, feedback: Manifest, policy_id: str, policy_dir: str
) -> Manifest:
    """The policy's revisions (in a flow): each unfinished shard of ``online.shard_size``
    rows as an ``online-revisions-shard`` task, then the commit."""
    store = ArtifactStore.from_config(cfg.storage)
    runner = shard_tasks(revisions_shard, cfg, Stage.online_samples, policy_dir)
    engine = lambda: stage.policy_engine(cfg, policy_dir)
    return drift.run_drift_samples(cfg, store, feedback, policy_id, engine, runner)


@task(name="online-drift-pairs", cache_key_fn=_pairs_key, **CACHED_RESULT)
def make_drift_pairs(
    cfg: PipelineConfig, samples: Manifest, feedback: Manifest, iteration: int
) -> Manifest:
    store = ArtifactStore.from_config(cfg.storage)
    return drift.run_drift_pairs(cfg, store, samples, feedback, iteration)
