"""The training job every launcher runs: what to launch (``TrainJob``), the files it
reads (the resolved config, the DeepSpeed config), the command each node runs, and the
folders it runs in (``JobDirs``: its own working folder, a fresh HOME and TMPDIR, so a
job can depend on nothing of the worker's but the store).

The launchers (``local``, ``kubernetes``, ``slurm``) build on this module and
``bolt.train.launch`` dispatches between them, so nothing here knows any launcher.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml

from bolt.config import PipelineConfig, TrainCommon
from bolt.models import cache_root
from bolt.train.deepspeed import deepspeed_config
from bolt.train.plan import gradient_accumulation

# This checkout, where the local launcher's jobs import bolt from.
REPO = Path(__file__).resolve().parents[2]
# Relative to the checkout on the nodes (compute.workdir); jobs run in their own folder.
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


def build_cache_env() -> dict[str, str]:
    """Where a job on a filesystem the worker shares finds compiled kernels: the worker's
    own torch extensions cache. DeepSpeed JIT-compiles its CPU ops (``deepspeed_shm_comm``,
    about a minute on 2 cores) into ``$HOME/.cache/torch_extensions`` at every start, so
    a job in a fresh HOME would compile them again each launch. Compiled code, not data:
    nothing one stage hands the next goes through it."""
    path = os.environ.get("TORCH_EXTENSIONS_DIR") or "~/.cache/torch_extensions"
    return {"TORCH_EXTENSIONS_DIR": str(Path(path).expanduser())}


@dataclass(frozen=True)
class JobDirs:
    """A job's folders on a filesystem it shares with the launcher: ``run`` its working
    folder, ``home`` and ``tmp`` its HOME and TMPDIR (all three emptied at each launch),
    ``work`` its scratch (BOLT_TRAIN_DIR: local checkpoint copies, fetched models), kept
    so a relaunch on the same machine need not fetch its checkpoint back."""

    root: Path

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @property
    def work(self) -> Path:
        return self.root / "work"

    def fresh(self) -> JobDirs:
        for folder in (self.run, self.home, self.tmp):
            shutil.rmtree(folder, ignore_errors=True)
        for folder in (self.run, self.home, self.tmp, self.work):
            folder.mkdir(parents=True, exist_ok=True)
        return self


def world_size(cfg: PipelineConfig) -> int:
    return cfg.compute.nodes * max(1, cfg.compute.gpus_per_node)


def _absolute(path: str) -> str:
    return str(Path(path).expanduser().absolute())


def job_config(cfg: PipelineConfig, shared_filesystem: bool = False) -> PipelineConfig:
    """The config as a job reads it: a job runs in its own folder, so what the worker's
    folder anchors (a relative ``file://`` storage root, relative catalog model paths)
    becomes absolute; everything else is the worker's config unchanged.

    On a filesystem the job shares with the worker (local, Slurm), the catalog's model
    cache is the worker's, resolved (``~`` and BOLT_MODEL_CACHE): a base model is
    prepared once, not in every job's fresh HOME. It caches catalog sources only; what
    one stage hands the next still travels through the store alone."""
    root = cfg.storage.root
    if root.startswith("file://"):
        root = "file://" + _absolute(root.removeprefix("file://"))
    catalog = {
        name: entry.model_copy(update={"path": _absolute(entry.path)}) if entry.path else entry
        for name, entry in cfg.models.catalog.items()
    }
    models = {"catalog": catalog}
    if shared_filesystem:
        models["cache_dir"] = str(cache_root(cfg.models).absolute())
    return cfg.model_copy(
        update={
            "storage": cfg.storage.model_copy(update={"root": root}),
            "models": cfg.models.model_copy(update=models),
        }
    )


def config_yaml(cfg: PipelineConfig, shared_filesystem: bool = False) -> str:
    """The resolved config the job reads (defaults included, so nothing is re-derived)."""
    config = job_config(cfg, shared_filesystem).model_dump(mode="json")
    return yaml.safe_dump(config, sort_keys=False)


def deepspeed_json(cfg: PipelineConfig, job: TrainJob) -> dict:
    train, world = job.training(cfg), world_size(cfg)
    accumulation = gradient_accumulation(train.global_batch_size, train.micro_batch_size, world)
    return deepspeed_config(train, world, accumulation)


def write_job_files(cfg: PipelineConfig, job: TrainJob, job_dir: Path) -> tuple[Path, Path]:
    """The config and DeepSpeed files a node reads, written into ``job_dir`` (on a
    filesystem the job shares with this machine)."""
    job_dir.mkdir(parents=True, exist_ok=True)
    config_path, deepspeed_path = job_dir / "config.yaml", job_dir / "deepspeed.json"
    config_path.write_text(config_yaml(cfg, shared_filesystem=True))
    deepspeed_path.write_text(json.dumps(deepspeed_json(cfg, job), indent=2))
    return config_path, deepspeed_path


def node_command(
    cfg: PipelineConfig,
    job: TrainJob,
    config_path: str,
    deepspeed_path: str,
    machine_rank: str,
    master_addr: str,
    checkout: str,
    master_port: str = str(MASTER_PORT),
) -> list[str]:
    """What each node runs. On GPUs: accelerate starts one process per GPU, with the
    accelerate config of the checkout at ``checkout`` (jobs run in their own folder)."""
    entry = ["-m", job.module, "--config", config_path, *job.args]
    c = cfg.compute
    if c.gpus_per_node == 0:
        return [sys.executable, *entry]
    return [
        "accelerate",
        "launch",
        "--config_file",
        f"{checkout.rstrip('/')}/{ACCELERATE_CONFIG}",
        "--num_machines",
        str(c.nodes),
        "--num_processes",
        str(world_size(cfg)),
        "--machine_rank",
        machine_rank,
        "--main_process_ip",
        master_addr,
        "--main_process_port",
        master_port,
        "--deepspeed_config_file",
        deepspeed_path,
        *entry,
    ]


def shell_line(args: list[str]) -> str:
    """A command line for a pod or a batch script: ``$VARS`` expand there, the rest is quoted."""
    return " ".join(a if a.startswith("$") else shlex.quote(a) for a in args)
