"""The whole BOLT recipe as one Prefect flow: stages in order, each resumable.

curation -> bootstrap -> filter (the SFT set) -> SFT -> online DPO -> eval of the SFT
model and the last policy (the Fig. 6 trajectory). ``until`` stops after a stage, for a
run that only makes data; each stage also runs alone (`bolt stage NAME`).
"""

from __future__ import annotations

from collections.abc import Callable

from prefect import Flow, flow, tags

from bolt.config import STAGE_SECTIONS, PipelineConfig
from bolt.config_loader import load_config
from bolt.resources import POOL
from bolt.store import ArtifactStore, Manifest
from flows.evaluation import checkpoint_models, eval_stage_flow, eval_trajectory_flow
from flows.online import online_flow
from flows.sft import sft_flow
from flows.stages import bootstrap_flow, curation_flow, filter_flow
from tasks.preflight import preflight_task
from tasks.reporting import summary_row
from tasks.runtime import result_storage, task_runner

Summary = dict[str, dict[str, object]]


def _check_until(until: str | None) -> None:
    if until is not None and until not in STAGE_SECTIONS:
        raise ValueError(f"until={until!r} is not one of {', '.join(STAGE_SECTIONS)}")


@flow(name="bolt-pipeline", flow_run_name="{cfg.name}")
def pipeline(cfg: PipelineConfig, until: str | None = None) -> Summary:
    """Every stage in order, or those up to and including ``until``."""
    _check_until(until)
    # Every model, dataset, credential, pool and cluster the config names, in seconds.
    preflight_task(cfg)
    store = ArtifactStore.from_config(cfg.storage)
    wanted = STAGE_SECTIONS[: STAGE_SECTIONS.index(until) + 1] if until else STAGE_SECTIONS
    done: list[Manifest] = []
    try:
        with tags("stage:data"):
            data = curation_flow(cfg)
        done.append(data)
        if "bootstrap" in wanted:
            with tags("stage:bootstrap"):
                boot = bootstrap_flow.with_options(task_runner=task_runner(cfg))(cfg, data)
            done.append(boot)
        if "filter" in wanted:
            with tags("stage:filter"):
                sft_set = filter_flow(cfg, data, boot)
            done.append(sft_set)
        # Training needs the memory the generation engines and reward models hold.
        POOL.release()
        if "sft" in wanted:
            with tags("stage:sft"):
                sft = sft_flow(cfg, sft_set)
            done.append(sft)
        if "online" in wanted:
            with tags("stage:online"):
                policy = online_flow(cfg, sft)
            done.append(policy)
        if "eval" in wanted:
            with tags("stage:eval"):
                done.append(eval_trajectory_flow(cfg, _checkpoints(cfg, store, sft, policy)))
    finally:
        # Engines and reward models hold memory (GPU memory in production).
        POOL.release()
    return {m.stage: summary_row(store, m) for m in done}


def _checkpoints(
    cfg: PipelineConfig, store: ArtifactStore, sft: Manifest, policy: Manifest
) -> list[tuple[str, str]]:
    """The models the final evaluation compares: the SFT model, then the last policy
    (labelled as ``bolt stage eval`` labels them, so its evals are these)."""
    return checkpoint_models(store, [sft, policy])


def run_pipeline(cfg: PipelineConfig, until: str | None = None) -> Summary:
    """The pipeline with this config's result storage (beside the artifacts) and tags."""
    with tags("bolt", f"config:{cfg.name}"):
        return pipeline.with_options(result_storage=result_storage(cfg))(cfg, until)


@flow(name="bolt-pipeline-from-config", flow_run_name="{config}")
def pipeline_from_config(
    config: str = "configs/tiny-cpu.yaml",
    overrides: list[str] | None = None,
    until: str | None = None,
) -> Summary:
    """The pipeline for deployments and UI runs: a config file path plus dotted overrides,
    optionally stopping after the stage ``until`` names."""
    return run_pipeline(load_config(config, overrides or []), until)


def _one_stage(stage_flow: Flow[..., Manifest]) -> Callable[[PipelineConfig], Summary]:
    def run(cfg: PipelineConfig) -> Summary:
        preflight_task(cfg)
        try:
            with tags("bolt", f"config:{cfg.name}"):
                manifest = stage_flow.with_options(
                    task_runner=task_runner(cfg), result_storage=result_storage(cfg)
                )(cfg)
        finally:
            POOL.release()
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
