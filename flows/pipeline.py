"""The whole BOLT recipe as one Prefect flow: stages in order, each resumable.

The pipeline flow runs query curation, LongCoT bootstrapping, scoring and filtering
into the SFT set. SFT and evaluation run as stages (`bolt stage sft|eval`, the stage
deployment); they join the pipeline flow, with online DPO, next.
"""

from __future__ import annotations

from collections.abc import Callable

from prefect import Flow, flow, tags

from bolt.config import PipelineConfig
from bolt.config_loader import load_config
from bolt.store import ArtifactStore, Manifest
from flows.evaluation import eval_stage_flow
from flows.online import online_flow
from flows.sft import sft_flow
from flows.stages import bootstrap_flow, curation_flow, filter_flow
from tasks.engine_pool import close_all
from tasks.evaluation import release_judges
from tasks.reporting import summary_row
from tasks.reward_pool import release_all
from tasks.runtime import result_storage, task_runner

Summary = dict[str, dict[str, object]]


def _release() -> None:
    """Engines and reward models hold memory (GPU memory in production): free them."""
    release_all()
    release_judges()
    close_all()


@flow(name="bolt-pipeline", flow_run_name="{cfg.name}")
def pipeline(cfg: PipelineConfig) -> Summary:
    store = ArtifactStore.from_config(cfg.storage)
    try:
        with tags("stage:data"):
            data = curation_flow(cfg)
        with tags("stage:bootstrap"):
            boot = bootstrap_flow.with_options(task_runner=task_runner(cfg))(cfg, data)
        with tags("stage:filter"):
            sft_set = filter_flow(cfg, data, boot)
    finally:
        _release()
    return {m.stage: summary_row(store, m) for m in (data, boot, sft_set)}


def run_pipeline(cfg: PipelineConfig) -> Summary:
    """The pipeline with this config's result storage (beside the artifacts) and tags."""
    with tags("bolt", f"config:{cfg.name}"):
        return pipeline.with_options(result_storage=result_storage(cfg))(cfg)


@flow(name="bolt-pipeline-from-config", flow_run_name="{config}")
def pipeline_from_config(
    config: str = "configs/tiny-cpu.yaml", overrides: list[str] | None = None
) -> Summary:
    """The pipeline for deployments and UI runs: a config file path plus dotted overrides."""
    return run_pipeline(load_config(config, overrides or []))


def _one_stage(stage_flow: Flow[..., Manifest]) -> Callable[[PipelineConfig], Summary]:
    def run(cfg: PipelineConfig) -> Summary:
        try:
            with tags("bolt", f"config:{cfg.name}"):
                manifest = stage_flow.with_options(
                    task_runner=task_runner(cfg), result_storage=result_storage(cfg)
                )(cfg)
        finally:
            _release()
        return {manifest.stage: summary_row(ArtifactStore.from_config(cfg.storage), manifest)}

    return run


# `bolt stage NAME`: the stages that exist so far (each runs what it needs from cache).
STAGE_FLOWS = {
    "data": _one_stage(curation_flow),
    "bootstrap": _one_stage(bootstrap_flow),
    "filter": _one_stage(filter_flow),
    "sft": _one_stage(sft_flow),
    "online": _one_stage(online_flow),
    "eval": _one_stage(eval_stage_flow),
}


@flow(name="bolt-stage-from-config", flow_run_name="{stage}-{config}")
def stage_from_config(
    stage: str = "data", config: str = "configs/tiny-cpu.yaml", overrides: list[str] | None = None
) -> Summary:
    """One stage for deployments and UI runs; the stages it needs come from the store."""
    if stage not in STAGE_FLOWS:
        raise ValueError(f"stage {stage!r} is not one of {', '.join(STAGE_FLOWS)}")
    return STAGE_FLOWS[stage](load_config(config, overrides or []))
