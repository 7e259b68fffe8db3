"""Prefect tasks of the curation stage: the synthetic sources' queries (each SkillMix
skills list one task, then one task per generation shard, each resumable by its
receipt), the candidates (one task), their labels (one task per ``data.shard_size``
queries, each resumable by its receipt) and the commit (``curate-queries``, cached by
the curation fingerprint)."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.context import TaskRunContext

from bolt.config import PipelineConfig
from bolt.curation.generation import (
    make_skills,
    run_generation,
    run_generation_shard,
    source_named,
)
from bolt.curation.stage import (
    curation_fingerprint,
    run_candidates,
    run_curation,
    run_label_shard,
    run_labels,
)
from bolt.engines.live import context_length, engine_for
from bolt.evals.contamination import index_for
from bolt.records import Query
from bolt.sharding import ShardPlan
from bolt.stages import Stage
from bolt.store import ArtifactStore, Manifest, ShardInfo
from tasks.runtime import CACHED_RESULT, shard_key, stage_key
from tasks.sharding import shard_tasks


def _key(ctx: TaskRunContext, params: dict[str, Any]) -> str:
    return stage_key(ctx, params["cfg"], Stage.curation, curation_fingerprint(params["cfg"]))


def _candidates_key(ctx: TaskRunContext, params: dict[str, Any]) -> str:
    cfg = params["cfg"]
    return stage_key(ctx, cfg, Stage.curation_candidates, curation_fingerprint(cfg))


def _label_key(ctx: TaskRunContext, params: dict[str, Any]) -> str:
    plan, candidates = params["plan"], params["candidates"]
    return stage_key(ctx, params["cfg"], Stage.curation_labels, candidates.fingerprint, plan.index)


def _labeller(cfg: PipelineConfig):
    name, engine_cfg = cfg.data.labeler_model, cfg.engine_settings(Stage.curation)
    return lambda: engine_for(cfg, name, engine_cfg), context_length(cfg, name, engine_cfg)


def _synthetic_engines(cfg: PipelineConfig):
    """The models of data.synthetic_sources (Magpie, SkillMix) on the labeller's settings."""
    return lambda model: engine_for(cfg, model, cfg.engine_settings(Stage.curation))


@task(name="curation-skills", retries=1, retry_delay_seconds=10)
def curation_skills(cfg: PipelineConfig, fp: str, source: str) -> str | None:
    """A SkillMix source's skills list, extracted once (a retry finds it stored)."""
    store = ArtifactStore.from_config(cfg.storage)
    return make_skills(cfg, store, fp, source_named(cfg, source), _synthetic_engines(cfg))


@task(
    name="curation-generation-shard",
    task_run_name="curation-generation-shard-{plan.index:05d}",
    retries=2,
    retry_delay_seconds=[10, 60],
    cache_key_fn=shard_key(Stage.curation_generated),
    **CACHED_RESULT,
)
def generation_shard(cfg: PipelineConfig, fp: str, plan: ShardPlan[int]) -> ShardInfo:
    store = ArtifactStore.from_config(cfg.storage)
    return run_generation_shard(cfg, store, fp, plan, _synthetic_engines(cfg))


@task(
    name="curation-candidates",
    retries=1,
    retry_delay_seconds=10,
    cache_key_fn=_candidates_key,
    **CACHED_RESULT,
)
def curation_candidates(cfg: PipelineConfig) -> Manifest:
    store = ArtifactStore.from_config(cfg.storage)
    fp = curation_fingerprint(cfg)
    return run_candidates(cfg, store, fp, _synthetic_engines(cfg), index_for(cfg))


@task(
    name="curation-labels-shard",
    task_run_name="curation-labels-shard-{plan.index:05d}",
    retries=2,
    retry_delay_seconds=[10, 60],
    cache_key_fn=_label_key,
    **CACHED_RESULT,
)
def label_shard(
    cfg: PipelineConfig, fp: str, plan: ShardPlan[Query], candidates: Manifest
) -> ShardInfo:
    store = ArtifactStore.from_config(cfg.storage)
    engine, context = _labeller(cfg)
    return run_label_shard(cfg, store, plan, candidates, engine, context)


@task(name="curate-queries", retries=1, retry_delay_seconds=10, cache_key_fn=_key, **CACHED_RESULT)
def curate_queries(cfg: PipelineConfig) -> Manifest:
    """The commit (and, run on its own, the whole stage in this task)."""
    store = ArtifactStore.from_config(cfg.storage)
    engine, context = _labeller(cfg)
    return run_curation(
        cfg,
        store,
        engine,
        context,
        engine_for=_synthetic_engines(cfg),
        # The evaluated benchmarks' prompts (data.decontamination).
        contamination=index_for(cfg),
    )


def curate(cfg: PipelineConfig) -> Manifest:
    """The curation output (in a flow): each ungenerated shard of the synthetic sources
    as a ``curation-generation-shard`` task, the candidates, each unlabelled shard as a
    ``curation-labels-shard`` task, then ``curate-queries`` commits."""
    store = ArtifactStore.from_config(cfg.storage)
    fp = curation_fingerprint(cfg)
    if store.manifest(Stage.curation, fp) is None:
        if cfg.data.synthetic_sources:
            runner = shard_tasks(generation_shard, cfg, Stage.curation)
            skills = lambda source: curation_skills(cfg, fp, source.name)
            run_generation(cfg, store, fp, _synthetic_engines(cfg), runner, skills)
        candidates = curation_candidates(cfg)
        engine, context = _labeller(cfg)
        runner = shard_tasks(label_shard, cfg, Stage.curation, candidates)
        run_labels(cfg, store, candidates, engine, context, runner)
    return curate_queries(cfg)
