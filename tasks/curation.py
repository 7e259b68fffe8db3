"""Prefect task of the curation stage: one task (labelling is batched in one engine call)."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from bolt.config import PipelineConfig
from bolt.curation.stage import run_curation
from bolt.store import ArtifactStore, Manifest
from tasks.engine_pool import context_length, engine_for


@task(name="curate-queries", retries=1, retry_delay_seconds=10, cache_policy=NO_CACHE)
def curate_queries(cfg: PipelineConfig) -> Manifest:
    store = ArtifactStore.from_config(cfg.storage)
    # The labeller runs with the bootstrap engine's settings (same hardware, same kind).
    labeller, engine_cfg = cfg.data.labeler_model, cfg.bootstrap.engine
    return run_curation(
        cfg,
        store,
        lambda: engine_for(cfg, labeller, engine_cfg),
        context_length(cfg, labeller, engine_cfg),
    )
