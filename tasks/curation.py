"""Prefect task of the curation stage: one task (labelling is batched in one engine call)."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.context import TaskRunContext

from bolt.config import PipelineConfig
from bolt.curation.stage import curation_fingerprint, run_curation
from bolt.engines.live import context_length, engine_for
from bolt.evals.contamination import index_for
from bolt.stages import Stage
from bolt.store import ArtifactStore, Manifest
from tasks.runtime import CACHED_RESULT, stage_key


def _key(_: TaskRunContext, params: dict[str, Any]) -> str:
    return stage_key(params["cfg"], Stage.curation, curation_fingerprint(params["cfg"]))


@task(name="curate-queries", retries=1, retry_delay_seconds=10, cache_key_fn=_key, **CACHED_RESULT)
def curate_queries(cfg: PipelineConfig) -> Manifest:
    store = ArtifactStore.from_config(cfg.storage)
    labeller, engine_cfg = cfg.data.labeler_model, cfg.engine_settings(Stage.curation)
    return run_curation(
        cfg,
        store,
        lambda: engine_for(cfg, labeller, engine_cfg),
        context_length(cfg, labeller, engine_cfg),
        # The models of data.synthetic_sources (Magpie, SkillMix) on the same engine settings.
        engine_for=lambda model: engine_for(cfg, model, engine_cfg),
        # The evaluated benchmarks' prompts (data.decontamination).
        contamination=index_for(cfg),
    )
