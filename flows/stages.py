"""One Prefect flow per stage. Each returns its output manifest and reads its inputs'
manifests from the store (from cache when they are already committed)."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner

from bolt.bootstrap.stage import bootstrap_fingerprint, commit_bootstrap, examples_dir, plan_shards
from bolt.config import PipelineConfig
from bolt.prompts import load_examples
from bolt.records import Query
from bolt.store import ArtifactStore, Manifest
from tasks.bootstrap import bootstrap_shard
from tasks.curation import curate_queries
from tasks.filtering import score_samples, select_sft_set
from tasks.reporting import ShardProgress, report_stage


@flow(name="curation", flow_run_name="{cfg.name}-curation")
def curation_flow(cfg: PipelineConfig) -> Manifest:
    store = ArtifactStore.from_config(cfg.storage)
    manifest = curate_queries(cfg)
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
    examples = load_examples(examples_dir(cfg))
    fp = bootstrap_fingerprint(cfg, data.fingerprint, examples)
    if (done := store.manifest("bootstrap", fp)) is not None:
        return done
    queries = list(store.read_records(data, Query))
    plans = plan_shards(queries, cfg.bootstrap.shard_size)
    progress = ShardProgress("bootstrap", fp, len(plans))
    futures = [bootstrap_shard.submit(cfg, fp, plan, examples) for plan in plans]
    shards, logger = [], get_run_logger()
    try:
        for future in futures:
            shard = future.result()
            shards.append(shard)
            progress.advance(shard)
            logger.info(
                "shard %s: %s samples, %s tok/s",
                shard.index,
                shard.records,
                shard.meta.get("output_tokens_per_s"),
            )
    finally:
        progress.close()
    manifest = commit_bootstrap(store, fp, cfg, data, shards, queries)
    report_stage(store, manifest, cfg.name)
    return manifest


@flow(name="filter", flow_run_name="{cfg.name}-filter")
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
