"""Prefect tasks of scoring (one per bootstrap shard) and filtering (one pass)."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.context import TaskRunContext

from bolt.config import PipelineConfig
from bolt.filtering.stage import filter_fingerprint, run_filter, run_score, score_fingerprint
from bolt.rewards.live import rewards_for
from bolt.stages import Stage
from bolt.store import ArtifactStore, Manifest
from tasks.runtime import CACHED_RESULT, stage_key


def _score_key(_: TaskRunContext, params: dict[str, Any]) -> str:
    return stage_key(
        params["cfg"],
        Stage.score,
        score_fingerprint(params["cfg"], params["bootstrap"].fingerprint),
    )


def _filter_key(_: TaskRunContext, params: dict[str, Any]) -> str:
    scored, data = params["scored"], params["data"]
    return stage_key(
        params["cfg"],
        Stage.filter,
        filter_fingerprint(params["cfg"], scored.fingerprint, data.fingerprint),
    )


@task(
    name="score-samples",
    retries=1,
    retry_delay_seconds=30,
    cache_key_fn=_score_key,
    **CACHED_RESULT,
)
def score_samples(cfg: PipelineConfig, bootstrap: Manifest, data: Manifest) -> Manifest:
    """Resumes shard by shard: a retry or rerun scores only the shards not yet stored."""
    store = ArtifactStore.from_config(cfg.storage)
    return run_score(
        cfg, store, bootstrap, data, lambda: rewards_for(cfg, cfg.filter.rewards, Stage.score)
    )


@task(name="select-sft-set", retries=1, cache_key_fn=_filter_key, **CACHED_RESULT)
def select_sft_set(cfg: PipelineConfig, scored: Manifest, data: Manifest) -> Manifest:
    return run_filter(cfg, ArtifactStore.from_config(cfg.storage), scored, data)
