"""The whole BOLT recipe as one Prefect flow: stages in order, each resumable.

Implemented so far: query curation and LongCoT bootstrapping. Filtering, SFT, online
DPO and evaluation join here as their stages land (issues 4-7).
"""

from __future__ import annotations

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner

from bolt.config import PipelineConfig
from bolt.config_loader import load_config
from bolt.store import ArtifactStore
from flows.stages import bootstrap_flow, curation_flow
from tasks.engine_pool import close_all
from tasks.reporting import summary_row


def _runner(cfg: PipelineConfig) -> ThreadPoolTaskRunner:
    return ThreadPoolTaskRunner(max_workers=cfg.compute.max_workers)


@flow(name="bolt-pipeline", flow_run_name="{cfg.name}")
def pipeline(cfg: PipelineConfig) -> dict[str, dict[str, object]]:
    store = ArtifactStore.from_config(cfg.storage)
    try:
        data = curation_flow(cfg)
        boot = bootstrap_flow.with_options(task_runner=_runner(cfg))(cfg, data)
    finally:
        close_all()
    return {m.stage: summary_row(store, m) for m in (data, boot)}


@flow(name="bolt-pipeline-from-config", flow_run_name="{config}")
def pipeline_from_config(
    config: str = "configs/tiny-cpu.yaml", overrides: list[str] | None = None
) -> dict[str, dict[str, object]]:
    """The pipeline for deployments and UI runs: a config file path plus dotted overrides."""
    return pipeline(load_config(config, overrides or []))


def _curation_only(cfg: PipelineConfig) -> dict[str, dict[str, object]]:
    try:
        manifest = curation_flow(cfg)
    finally:
        close_all()
    return {manifest.stage: summary_row(ArtifactStore.from_config(cfg.storage), manifest)}


def _bootstrap_only(cfg: PipelineConfig) -> dict[str, dict[str, object]]:
    try:
        manifest = bootstrap_flow.with_options(task_runner=_runner(cfg))(cfg)
    finally:
        close_all()
    return {manifest.stage: summary_row(ArtifactStore.from_config(cfg.storage), manifest)}


# `bolt stage NAME`: the stages that exist so far.
STAGE_FLOWS = {"data": _curation_only, "bootstrap": _bootstrap_only}
