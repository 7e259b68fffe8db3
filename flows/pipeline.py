"""The whole BOLT recipe as one Prefect flow: stages in order, each resumable.

Implemented so far: query curation, LongCoT bootstrapping, scoring and filtering into
the SFT set. SFT, online DPO and evaluation join here as their stages land.
"""

from __future__ import annotations

from collections.abc import Callable

from prefect import Flow, flow
from prefect.task_runners import ThreadPoolTaskRunner

from bolt.config import PipelineConfig
from bolt.config_loader import load_config
from bolt.store import ArtifactStore, Manifest
from flows.stages import bootstrap_flow, curation_flow, filter_flow
from tasks.engine_pool import close_all
from tasks.reporting import summary_row
from tasks.reward_pool import release_all

Summary = dict[str, dict[str, object]]


def _runner(cfg: PipelineConfig) -> ThreadPoolTaskRunner:
    return ThreadPoolTaskRunner(max_workers=cfg.compute.max_workers)


def _release() -> None:
    """Engines and reward models hold memory (GPU memory in production): free them."""
    release_all()
    close_all()


@flow(name="bolt-pipeline", flow_run_name="{cfg.name}")
def pipeline(cfg: PipelineConfig) -> Summary:
    store = ArtifactStore.from_config(cfg.storage)
    try:
        data = curation_flow(cfg)
        boot = bootstrap_flow.with_options(task_runner=_runner(cfg))(cfg, data)
        sft_set = filter_flow(cfg, data, boot)
    finally:
        _release()
    return {m.stage: summary_row(store, m) for m in (data, boot, sft_set)}


@flow(name="bolt-pipeline-from-config", flow_run_name="{config}")
def pipeline_from_config(
    config: str = "configs/tiny-cpu.yaml", overrides: list[str] | None = None
) -> Summary:
    """The pipeline for deployments and UI runs: a config file path plus dotted overrides."""
    return pipeline(load_config(config, overrides or []))


def _one_stage(stage_flow: Flow[..., Manifest]) -> Callable[[PipelineConfig], Summary]:
    def run(cfg: PipelineConfig) -> Summary:
        try:
            manifest = stage_flow.with_options(task_runner=_runner(cfg))(cfg)
        finally:
            _release()
        return {manifest.stage: summary_row(ArtifactStore.from_config(cfg.storage), manifest)}

    return run


# `bolt stage NAME`: the stages that exist so far (each runs what it needs from cache).
STAGE_FLOWS = {
    "data": _one_stage(curation_flow),
    "bootstrap": _one_stage(bootstrap_flow),
    "filter": _one_stage(filter_flow),
}
