"""How many accelerators one shard task holds, and how many engines fit a node.

One rule for the task runner (``tasks.runtime``: Ray's ``num_gpus`` per shard task) and
for ``bolt plan`` (the engines working side by side): a generation shard holds its
engine's ``tensor_parallel_size`` GPUs, or, when ``compute.engines_per_node`` is set, a
node's GPUs shared among that many engines (Ray then places at most that many per node);
a task whose models sit behind an API (``kind: openai``), or run on CPUs, holds none.
"""

from __future__ import annotations

from bolt.config import EngineConfig, EngineKind, JudgeKind, PipelineConfig, RewardBackend
from bolt.stages import Stage

GENERATION_STAGES = (
    Stage.curation,
    Stage.bootstrap,
    Stage.online_samples,
    Stage.eval_answers,
)


class PlacementError(ValueError):
    """The engines the config asks for do not fit its nodes."""


def _engine_gpus(engine: EngineConfig) -> int:
    return 0 if engine.kind == EngineKind.openai else engine.tensor_parallel_size


def _reward_gpus(backends: list[RewardBackend]) -> int:
    """A local reward model holds one GPU; a judge engine its tensor parallelism."""
    gpus = 0
    for backend in backends:
        if backend.judge_engine is not None:
            gpus = max(gpus, _engine_gpus(backend.judge_engine))
        elif backend.model:
            gpus = max(gpus, 1)
    return gpus


def engine_gpus(cfg: PipelineConfig, stage: Stage) -> int:
    """GPUs the models of one ``stage`` shard need (0 on CPUs or behind an API)."""
    if cfg.compute.device != "cuda":
        return 0
    if stage in GENERATION_STAGES:
        return _engine_gpus(cfg.engine_settings(stage))
    if stage == Stage.score:
        return _reward_gpus(cfg.filter.rewards)
    if stage == Stage.online_scores:
        return _reward_gpus(cfg.online.rewards)
    if stage == Stage.eval:
        judged = [cfg.eval.judge_of(b) for b in cfg.eval.benchmarks]
        local = any(j.kind == JudgeKind.local_checklist for j in judged)
        return _engine_gpus(cfg.engine_settings(Stage.eval)) if local else 0
    return 0


def engines_per_node(cfg: PipelineConfig, stage: Stage) -> int:
    """Engines of ``stage`` side by side on one node: ``compute.engines_per_node``, else
    as many as its GPUs hold (``gpus_per_node // tensor_parallel_size``); 1 on CPUs."""
    gpus = engine_gpus(cfg, stage)
    per_node = cfg.compute.gpus_per_node
    if gpus == 0 or per_node == 0:
        return cfg.compute.engines_per_node or 1
    fit = per_node // gpus
    wanted = cfg.compute.engines_per_node or fit
    if fit == 0 or wanted > fit:
        raise PlacementError(
            f"compute.engines_per_node={wanted} engines of {gpus} GPU(s) ({stage} shards) do not "
            f"fit compute.gpus_per_node={per_node}"
        )
    return wanted


def task_gpus(cfg: PipelineConfig, stage: Stage) -> float:
    """``num_gpus`` of one ``stage`` shard task: its engine's GPUs, widened to a node's
    share when ``compute.engines_per_node`` leaves GPUs over (Ray accepts fractions)."""
    gpus = engine_gpus(cfg, stage)
    if gpus == 0 or cfg.compute.gpus_per_node == 0:
        return float(gpus)
    return max(float(gpus), cfg.compute.gpus_per_node / engines_per_node(cfg, stage))


def parallel_devices(cfg: PipelineConfig, stage: Stage) -> int:
    """Devices working on ``stage`` at once: every engine of every node, each with its
    GPUs (a node's GPUs left over by the tensor parallelism stay idle)."""
    gpus = engine_gpus(cfg, stage)
    if gpus == 0 or cfg.compute.gpus_per_node == 0:
        return max(1, cfg.compute.nodes * cfg.compute.gpus_per_node)
    return cfg.compute.nodes * engines_per_node(cfg, stage) * gpus
