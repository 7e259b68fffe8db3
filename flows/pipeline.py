"""The whole BOLT recipe as one Prefect flow: stages in order, each resumable.

curation -> bootstrap -> filter (the SFT set) -> SFT -> online DPO -> eval of the SFT
model and the last policy (the Fig. 6 trajectory). ``until`` stops after a stage, for a
run that only makes data; each stage also runs alone (`bolt stage NAME`).

The deployments' run form (``pipeline_from_config``, ``stage_from_config``) offers
choices, not free text: the stage as a select (``StageName``), the config as a select of
the shipped ``configs/*.yaml`` or a path, and each override checked against
``OVERRIDE_PATTERN`` by the Prefect server before the run is created. Loading the config
is the run's first step (``validate-config``): a wrong key fails the run at once, naming
the key. The run's results are Prefect artifacts (``tasks.reporting``).
"""

# No `from __future__ import annotations` here: a served deployment's runner ships the flow
# function to the run's process without this module's globals, so the parameters' types
# (ShippedConfig, StageName, Override) must be objects in its signature, not names.

import logging
import time
from collections.abc import Callable, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from prefect import Flow, flow, get_run_logger, tags, task
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import MissingContextError
from pydantic import Field

from bolt.config import STAGE_SECTIONS, PipelineConfig
from bolt.config_loader import load_config
from bolt.resources import POOL
from bolt.stages import Stage
from bolt.store import ArtifactStore, Manifest
from bolt.summary import collect
from bolt.tracking import close_pipeline_run, open_pipeline_run
from flows.evaluation import checkpoint_models, eval_stage_flow, eval_trajectory_flow
from flows.online import online_flow
from flows.sft import sft_flow
from flows.stages import bootstrap_flow, curation_flow, filter_flow
from tasks.preflight import preflight_task
from tasks.reporting import report_results, report_run, summary_row
from tasks.runtime import result_storage, with_task_runner
from tasks.tracking import track_outputs

Summary = dict[str, dict[str, object]]

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
# The run form's choices: Prefect's parameter schema makes an enum a select.
ShippedConfig = StrEnum(
    "ShippedConfig", {p.stem: p.stem for p in sorted(CONFIG_DIR.glob("*.yaml"))}
)
StageName = StrEnum("StageName", {s: s for s in STAGE_SECTIONS})
# `dotted.key=value`, as `bolt run` takes them (list items by index: `a.b[0].c=1`).
OVERRIDE_PATTERN = r"^[A-Za-z0-9_.\[\]-]+=.*$"
Override = Annotated[str, Field(pattern=OVERRIDE_PATTERN)]
# A shipped config by name, or a path to any YAML config (the form shows a toggle).
ConfigChoice = ShippedConfig | Annotated[str, Field(title="path", min_length=1)]


def _check_until(until: str | None) -> None:
    if until is not None and until not in STAGE_SECTIONS:
        raise ValueError(f"until={until!r} is not one of {', '.join(STAGE_SECTIONS)}")


@flow(name="bolt-pipeline", flow_run_name="{cfg.name}")
def pipeline(cfg: PipelineConfig, until: str | None = None) -> Summary:
    """Every stage in order, or those up to and including ``until``."""
    _check_until(until)
    # Every model, dataset, credential, pool and cluster the config names, in seconds.
    preflight_task(cfg)
    cfg = open_pipeline_run(cfg)  # the tracking run (MLflow, W&B) the stages nest under
    store = ArtifactStore.from_config(cfg.storage)
    wanted = STAGE_SECTIONS[: STAGE_SECTIONS.index(until) + 1] if until else STAGE_SECTIONS
    done: list[Manifest] = []
    # Each output's config section and wall seconds, cache checks included (`bolt
    # rehearse` prints them beside `bolt plan`'s projection).
    timing: dict[str, dict[str, object]] = {}
    clock = [time.monotonic()]

    def finished(manifest: Manifest, section: str) -> None:
        now = time.monotonic()
        timing[manifest.stage] = {"section": section, "seconds": now - clock[0]}
        clock[0] = now
        done.append(manifest)
        _report(report_run, cfg, store, done)
        _report(track_outputs, cfg, store, done)

    try:
        with tags("stage:data"):
            data = with_task_runner(curation_flow, cfg)(cfg)
        finished(data, "data")
        if "bootstrap" in wanted:
            with tags("stage:bootstrap"):
                boot = with_task_runner(bootstrap_flow, cfg)(cfg, data)
            finished(boot, "bootstrap")
        if "filter" in wanted:
            with tags("stage:filter"):
                sft_set = with_task_runner(filter_flow, cfg)(cfg, data, boot)
            finished(sft_set, "filter")
        # Training needs the memory the generation engines and reward models hold.
        POOL.release()
        if "sft" in wanted:
            with tags("stage:sft"):
                sft = sft_flow(cfg, sft_set)
            finished(sft, "sft")
        if "online" in wanted:
            with tags("stage:online"):
                policy = with_task_runner(online_flow, cfg)(cfg, sft)
            finished(policy, "online")
        if "eval" in wanted:
            with tags("stage:eval"):
                checkpoints = _checkpoints(cfg, store, sft, policy)
                trajectory = with_task_runner(eval_trajectory_flow, cfg)(cfg, checkpoints)
            finished(trajectory, "eval")
    finally:
        # Engines and reward models hold memory (GPU memory in production).
        POOL.release()
        close_pipeline_run(cfg)  # FAILED when a stage raised
    _report(_report_results, cfg, store, done)
    return {m.stage: summary_row(store, m) | timing[m.stage] for m in done}


def _report_results(cfg: PipelineConfig, store: ArtifactStore, done: list[Manifest]) -> None:
    by_stage = {m.stage: m for m in done}
    results = collect(store, by_stage.get(Stage.online_policy), by_stage.get(Stage.eval_trajectory))
    report_results(cfg, store, results)


def _report(
    report: Callable[[PipelineConfig, ArtifactStore, list[Manifest]], None],
    cfg: PipelineConfig,
    store: ArtifactStore,
    done: list[Manifest],
) -> None:
    """An artifact for the UI; one that cannot be made never fails the run it reports."""
    try:
        report(cfg, store, done)
    except Exception:  # noqa: BLE001 -- a report must not fail the stages it reports
        _logger().warning("could not write the %s artifact", report.__name__, exc_info=True)


def _logger() -> logging.Logger | logging.LoggerAdapter:
    """The flow run's logger (shown in the Prefect UI); `bolt stage` calls a stage's flow
    from outside any run, where the standard one logs instead."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("bolt.pipeline")


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


def config_file(config: str) -> Path:
    """A shipped config's file (by its name), else the path as given."""
    name = str(config)
    if name in ShippedConfig.__members__ and not Path(name).is_file():
        return CONFIG_DIR / f"{name}.yaml"
    return Path(name)


@task(name="validate-config", cache_policy=NO_CACHE, persist_result=False)
def validate_config(config: str, overrides: Sequence[str] = ()) -> PipelineConfig:
    """The config and its overrides, loaded and validated before anything else runs: a
    missing file, a wrong key, type or value fails the run here, naming the key."""
    path = config_file(config)
    if not path.is_file():
        shipped = ", ".join(ShippedConfig.__members__)
        raise FileNotFoundError(f"config: no file {str(path)!r} (shipped configs: {shipped})")
    cfg = load_config(path, list(overrides))
    get_run_logger().info("config %s (%s) with %d override(s)", cfg.name, path, len(overrides))
    return cfg


@flow(name="bolt-pipeline-from-config", flow_run_name="{config}")
def pipeline_from_config(
    config: ConfigChoice = ShippedConfig["tiny-cpu"],
    overrides: Sequence[Override] = (),
    until: StageName = StageName.eval,
) -> Summary:
    """The BOLT pipeline, stage by stage, from a config and its overrides.

    Args:
        config: A shipped config (configs/*.yaml), or the path of a YAML config.
        overrides: Dotted overrides, one per item, e.g. `sft.lr=1e-5` or
            `online.rewards[0].weight=2`; a wrong key fails the run at once, naming it.
        until: The stage to stop after (eval: the whole pipeline).
    """
    cfg = validate_config(config, overrides)
    return run_pipeline(cfg, None if until == StageName.eval else str(until))


def _one_stage(stage: str, stage_flow: Flow[..., Manifest]) -> Callable[[PipelineConfig], Summary]:
    def run(cfg: PipelineConfig) -> Summary:
        preflight_task(cfg)
        # Tracked as a pipeline run of one stage: its outputs (the scores before an SFT
        # set, an online iteration's sub-stages) nest under it, its training job streams
        # its curves into the stage's run.
        cfg = open_pipeline_run(cfg, stage)
        store = ArtifactStore.from_config(cfg.storage)
        try:
            with tags("bolt", f"config:{cfg.name}"):
                stored = stage_flow.with_options(result_storage=result_storage(cfg))
                manifest = with_task_runner(stored, cfg)(cfg)
            _report(track_outputs, cfg, store, [manifest])
        finally:
            POOL.release()
            close_pipeline_run(cfg)  # FAILED when the stage raised
        return {manifest.stage: summary_row(store, manifest)}

    return run


# `bolt stage NAME`: the stages that exist so far (each runs what it needs from cache).
STAGE_FLOWS = {
    name: _one_stage(name, stage_flow)
    for name, stage_flow in (
        ("data", curation_flow),
        ("bootstrap", bootstrap_flow),
        ("filter", filter_flow),
        ("sft", sft_flow),
        ("online", online_flow),
        ("eval", eval_stage_flow),
    )
}


@flow(name="bolt-stage-from-config", flow_run_name="{stage}-{config}")
def stage_from_config(
    stage: StageName = StageName.data,
    config: ConfigChoice = ShippedConfig["tiny-cpu"],
    overrides: Sequence[Override] = (),
) -> Summary:
    """One stage of a config; the stages it needs come from the store.

    Args:
        stage: The stage to run.
        config: A shipped config (configs/*.yaml), or the path of a YAML config.
        overrides: Dotted overrides, one per item, e.g. `sft.lr=1e-5`; a wrong key fails
            the run at once, naming it.
    """
    if str(stage) not in STAGE_FLOWS:
        raise ValueError(f"stage {stage!r} is not one of {', '.join(STAGE_FLOWS)}")
    return STAGE_FLOWS[str(stage)](validate_config(config, overrides))
