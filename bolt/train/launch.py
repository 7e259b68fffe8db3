"""Training launchers behind one interface: ``render_spec`` and ``run_job``, dispatched on
``compute.launcher`` (local subprocess, Kubernetes Indexed Job, Slurm batch script).

Every launcher runs the same command on each node (``bolt.train.job.node_command``:
``accelerate launch -m bolt.train.sft --config ... --sft-set ...``, one plain process on
a CPU machine) and follows the job by its log lines; the training entrypoint itself
resumes from the last checkpoint in the store, so relaunching a failed job is how a
node failure is retried. Before anything launches, the memory estimate refuses plans
the nodes cannot hold.

A launcher is a module with ``render(cfg, job) -> str`` (the spec it submits) and
``run(cfg, job, scratch, on_line)`` (launch, stream the log, wait, raise LaunchError on
failure); adding one is that module, a ``Launcher`` value and a line in ``LAUNCHERS``.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from bolt.config import Launcher, PipelineConfig
from bolt.train import kubernetes, local, slurm
from bolt.train.job import LogSink, TrainJob, deepspeed_json, world_size
from bolt.train.plan import PUBLISHED_SHAPES, ModelShape, check_fits, estimate_memory

LAUNCHERS: dict[Launcher, ModuleType] = {
    Launcher.local: local,
    Launcher.kubernetes: kubernetes,
    Launcher.slurm: slurm,
}


def model_shape(cfg: PipelineConfig) -> ModelShape | None:
    """The base model's shape (the DPO policy's too) from a local config.json or the
    published table."""
    entry = cfg.models.catalog[cfg.sft.base_model]
    if entry.path and (Path(entry.path).expanduser() / "config.json").is_file():
        return ModelShape.from_model_dir(Path(entry.path).expanduser())
    return PUBLISHED_SHAPES.get(entry.hf_id or "")


def check_plan(cfg: PipelineConfig, job: TrainJob, shape: ModelShape | None = None) -> None:
    """Refuse (PlanError) a GPU plan whose per-GPU share cannot fit; accumulation must divide."""
    deepspeed_json(cfg, job)  # raises PlanError when the batch does not divide the world size
    shape = shape or model_shape(cfg)
    if cfg.compute.device != "cuda" or shape is None:
        return
    c, train = cfg.compute, job.training(cfg)
    estimate = estimate_memory(
        shape,
        zero=train.zero,
        precision=train.precision,
        world_size=world_size(cfg),
        gpus_per_node=c.gpus_per_node,
        micro_batch=train.micro_batch_size,
        max_length=train.max_length,
    )
    where = (
        f"{job.section} of {cfg.sft.base_model} on {c.nodes} node(s) x {c.gpus_per_node} "
        f"{c.gpu_type} with {train.zero}"
    )
    check_fits(estimate, c.gpu_type, where)


def render_spec(cfg: PipelineConfig, job: TrainJob) -> str:
    """The job spec the configured launcher submits (a shell command line for local)."""
    check_plan(cfg, job)
    return LAUNCHERS[cfg.compute.launcher].render(cfg, job)


def run_job(cfg: PipelineConfig, job: TrainJob, scratch: Path, on_line: LogSink) -> None:
    """Launch, stream the log to ``on_line``, wait; raise LaunchError when the job fails.

    ``scratch`` is this machine's folder for the job (the local launcher's config and
    checkpoints); the cluster launchers keep their files where the cluster sees them."""
    check_plan(cfg, job)
    LAUNCHERS[cfg.compute.launcher].run(cfg, job, scratch, on_line)
