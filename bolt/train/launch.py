"""Training launchers behind one interface: ``render_spec`` and ``run_job``, dispatched on
``compute.launcher`` (local subprocess, Kubernetes Indexed Job, Slurm batch script).

Every launcher runs the same command on each node, ``accelerate launch -m
bolt.train.sft --config ... --sft-set ...`` (one plain process on a CPU machine), and
follows the job by its log lines; the training entrypoint itself resumes from the last
checkpoint in the store, so relaunching a failed job is how a node failure is retried.
Before anything launches, the memory estimate refuses plans the nodes cannot hold.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml

from bolt.config import Launcher, PipelineConfig, TrainCommon
from bolt.train.deepspeed import deepspeed_config
from bolt.train.plan import (
    PUBLISHED_SHAPES,
    ModelShape,
    check_fits,
    estimate_memory,
    gradient_accumulation,
)

ACCELERATE_CONFIG = "infra/accelerate/deepspeed.yaml"
MASTER_PORT = 29500
LogSink = Callable[[str], None]


class LaunchError(RuntimeError):
    """A training job failed; the message carries the end of its log."""


@dataclass(frozen=True)
class TrainJob:
    """One training run to launch: which entrypoint, on which input, under which name."""

    stage: str
    fingerprint: str
    module: str
    args: tuple[str, ...]
    run_name: str
    # The config section with the job's training settings (batch, ZeRO stage, precision).
    section: Literal["sft", "online"] = "sft"

    def training(self, cfg: PipelineConfig) -> TrainCommon:
        return cfg.sft if self.section == "sft" else cfg.online

    @property
    def name(self) -> str:
        """A name valid for Kubernetes objects and Slurm jobs (<= 52 chars, DNS-1123)."""
        base = f"{self.run_name}-{self.stage}-{self.fingerprint[:10]}".lower()
        cleaned = "".join(c if c.isalnum() or c == "-" else "-" for c in base)
        return cleaned.strip("-")[:52].rstrip("-")


def world_size(cfg: PipelineConfig) -> int:
    return cfg.compute.nodes * max(1, cfg.compute.gpus_per_node)


def config_yaml(cfg: PipelineConfig) -> str:
    """The resolved config the job reads (defaults included, so nothing is re-derived)."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)


def deepspeed_json(cfg: PipelineConfig, job: TrainJob) -> dict:
    train, world = job.training(cfg), world_size(cfg)
    accumulation = gradient_accumulation(train.global_batch_size, train.micro_batch_size, world)
    return deepspeed_config(train, world, accumulation)


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


def node_command(
    cfg: PipelineConfig,
    job: TrainJob,
    config_path: str,
    deepspeed_path: str,
    machine_rank: str,
    master_addr: str,
) -> list[str]:
    """What each node runs. On GPUs: accelerate starts one process per GPU."""
    entry = ["-m", job.module, "--config", config_path, *job.args]
    c = cfg.compute
    if c.gpus_per_node == 0:
        return [sys.executable, *entry]
    return [
        "accelerate",
        "launch",
        "--config_file",
        ACCELERATE_CONFIG,
        "--num_machines",
        str(c.nodes),
        "--num_processes",
        str(world_size(cfg)),
        "--machine_rank",
        machine_rank,
        "--main_process_ip",
        master_addr,
        "--main_process_port",
        str(MASTER_PORT),
        "--deepspeed_config_file",
        deepspeed_path,
        *entry,
    ]


def stream_lines(lines, on_line: LogSink, keep: int = 40) -> deque[str]:
    """Pass every log line on; keep the last ``keep`` for an error message."""
    tail: deque[str] = deque(maxlen=keep)
    for raw in lines:
        line = raw.rstrip("\n")
        tail.append(line)
        on_line(line)
    return tail


def run_local(cfg: PipelineConfig, job: TrainJob, job_dir: Path, on_line: LogSink) -> None:
    """A subprocess on this machine; DESIGN.md §5's single-process DeepSpeed env on a CPU."""
    job_dir.mkdir(parents=True, exist_ok=True)
    config_path = job_dir / "config.yaml"
    config_path.write_text(config_yaml(cfg))
    ds_path = job_dir / "deepspeed.json"
    ds_path.write_text(yaml.safe_dump(deepspeed_json(cfg, job)))
    command = node_command(cfg, job, str(config_path), str(ds_path), "0", "127.0.0.1")
    env = {
        **os.environ,
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": os.environ.get("MASTER_PORT", str(MASTER_PORT)),
    }
    if cfg.compute.gpus_per_node == 0:
        env |= {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0"}
    env.setdefault("BOLT_TRAIN_DIR", str(job_dir / "work"))
    on_line(f"launch: {shlex.join(command)}")
    with subprocess.Popen(
        command,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # a kill of the job reaches every process it started
    ) as process:
        tail = stream_lines(process.stdout, on_line)
    if process.returncode != 0:
        raise LaunchError(
            f"{job.name}: local training exited with {process.returncode}:\n" + "\n".join(tail)
        )


def render_spec(cfg: PipelineConfig, job: TrainJob) -> str:
    """The job spec the configured launcher submits (a shell command line for local)."""
    check_plan(cfg, job)
    match cfg.compute.launcher:
        case Launcher.local:
            return shlex.join(
                node_command(cfg, job, "config.yaml", "deepspeed.json", "0", "127.0.0.1")
            )
        case Launcher.kubernetes:
            from bolt.train.kubernetes import render_kubernetes

            return render_kubernetes(cfg, job)
        case Launcher.slurm:
            from bolt.train.slurm import render_sbatch

            return render_sbatch(cfg, job, Path(cfg.compute.workdir) / ".bolt-jobs" / job.name)


def run_job(cfg: PipelineConfig, job: TrainJob, job_dir: Path, on_line: LogSink) -> None:
    """Launch, stream the log to ``on_line``, wait; raise LaunchError when the job fails."""
    check_plan(cfg, job)
    match cfg.compute.launcher:
        case Launcher.local:
            run_local(cfg, job, job_dir, on_line)
        case Launcher.kubernetes:
            from bolt.train.kubernetes import run_kubernetes

            run_kubernetes(cfg, job, on_line)
        case Launcher.slurm:
            from bolt.train.slurm import run_slurm

            run_slurm(cfg, job, Path(cfg.compute.workdir) / ".bolt-jobs" / job.name, on_line)
