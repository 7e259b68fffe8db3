"""One Prefect flow per stage. Each returns its output manifest and reads its inputs'
manifests from the store (from cache when they are already committed)."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner

from bolt.bootstrap.stage import run_bootstrap
from bolt.config import PipelineConfig
from bolt.stages import Stage
from bolt.store import ArtifactStore, Manifest
from tasks.bootstrap import bootstrap_shard, teacher, teacher_context
from tasks.curation import curate
from tasks.filtering import score_samples, select_sft_set
from tasks.reporting import report_stage
from tasks.sharding import shard_tasks


# Shard tasks one at a time unless the caller passes the run's runner
# (tasks.runtime.with_task_runner): the shards of a stage share the process's engine.
@flow(
    name="curation",
    flow_run_name="{cfg.name}-curation",
    task_runner=ThreadPoolTaskRunner(max_workers=1),
)
def curation_flow(cfg: PipelineConfig) -> Manifest:
    store = ArtifactStore.from_config(cfg.storage)
    manifest = curate(cfg)
    get_run_logger().info(
        "curation: %s queries kept, %s set aside",
        manifest.counts.get("kept"),
        manifest.counts.get("rejected"),
    )
    report_stage(store, manifest, cfg.name)
    return manifest


@flow(
    name="bootstrap",
    flow_run_name="{cfg.name}-bootstrap",
    task_runner=ThreadPoolTaskRunner(max_workers=1),
)
def bootstrap_flow(cfg: PipelineConfig, data: Manifest | None = None) -> Manifest:
    store = ArtifactStore.from_config(cfg.storage)
    data = data or curation_flow(cfg)
    runner = shard_tasks(bootstrap_shard, cfg, Stage.bootstrap)
    manifest = run_bootstrap(cfg, store, data, teacher(cfg), teacher_context(cfg), runner)
    report_stage(store, manifest, cfg.name)
    return manifest


@flow(
    name="filter",
    flow_run_name="{cfg.name}-filter",
    task_runner=ThreadPoolTaskRunner(max_workers=1),
)
def filter_flow(
    cfg: PipelineConfig, data: Manifest | None = None, bootstrap: Manifest | None = None
) -> Manifest:
    store = ArtifactStore.from_config(cfg.storage)
    data = data or curation_flow(cfg)
    bootstrap = bootstrap or bootstrap_flow(cfg, data)
    scored = score_samples(cfg, bootstrap, data)
    report_stage(store, scored, cfg.name)
    selected = select_sft_set(cfg, scored, data)
    get_run_logger().info(
        "filter: %s SFT examples from %s samples", selected.records, scored.records
    )
    report_stage(store, selected, cfg.name)
    return selected
