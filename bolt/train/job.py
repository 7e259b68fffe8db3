"""The training job every launcher runs: what to launch (``TrainJob``), the files it
reads (the resolved config, the DeepSpeed config) and the command each node runs.

The launchers (``local``, ``kubernetes``, ``slurm``) build on this module and
``bolt.train.launch`` dispatches between them, so nothing here knows any launcher.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml

from bolt.config import PipelineConfig, TrainCommon
from bolt.train.deepspeed import deepspeed_config
from bolt.train.plan import gradient_accumulation

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


def write_job_files(cfg: PipelineConfig, job: TrainJob, job_dir: Path) -> tuple[Path, Path]:
    """The config and DeepSpeed files a node reads, written into ``job_dir``."""
    job_dir.mkdir(parents=True, exist_ok=True)
    config_path, deepspeed_path = job_dir / "config.yaml", job_dir / "deepspeed.json"
    config_path.write_text(config_yaml(cfg))
    deepspeed_path.write_text(json.dumps(deepspeed_json(cfg, job), indent=2))
    return config_path, deepspeed_path


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


def shell_line(args: list[str]) -> str:
    """A command line for a pod or a batch script: ``$VARS`` expand there, the rest is quoted."""
    return " ".join(a if a.startswith("$") else shlex.quote(a) for a in args)
