"""Prefect tasks of scoring (one per bootstrap shard) and filtering (one pass)."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from bolt.config import PipelineConfig
from bolt.filtering.stage import run_filter, run_score
from bolt.store import ArtifactStore, Manifest
from tasks.reward_pool import rewards_for


@task(name="score-samples", retries=1, retry_delay_seconds=30, cache_policy=NO_CACHE)
def score_samples(cfg: PipelineConfig, bootstrap: Manifest, data: Manifest) -> Manifest:
    """Resumes shard by shard: a retry or rerun scores only the shards not yet stored."""
    store = ArtifactStore.from_config(cfg.storage)
    return run_score(cfg, store, bootstrap, data, lambda: rewards_for(cfg, cfg.filter.rewards))


@task(name="select-sft-set", retries=1, cache_policy=NO_CACHE)
def select_sft_set(cfg: PipelineConfig, scored: Manifest, data: Manifest) -> Manifest:
    return run_filter(cfg, ArtifactStore.from_config(cfg.storage), scored, data)
