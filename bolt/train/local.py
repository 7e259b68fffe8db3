"""The local launcher: the job as a subprocess of this machine, its log read line by line."""

from __future__ import annotations

import os
import shlex
import subprocess
from collections import deque
from collections.abc import Iterable
from pathlib import Path

from bolt.config import PipelineConfig
from bolt.train.job import (
    MASTER_PORT,
    LaunchError,
    LogSink,
    TrainJob,
    node_command,
    write_job_files,
)


def stream_lines(lines: Iterable[str], on_line: LogSink, keep: int = 40) -> deque[str]:
    """Pass every log line on; keep the last ``keep`` for an error message."""
    tail: deque[str] = deque(maxlen=keep)
    for raw in lines:
        line = raw.rstrip("\n")
        tail.append(line)
        on_line(line)
    return tail


def render(cfg: PipelineConfig, job: TrainJob) -> str:
    """The command line the job runs, with its files beside it."""
    return shlex.join(node_command(cfg, job, "config.yaml", "deepspeed.json", "0", "127.0.0.1"))


def run(cfg: PipelineConfig, job: TrainJob, job_dir: Path, on_line: LogSink) -> None:
    """A subprocess on this machine; on a CPU, the single-process DeepSpeed environment of
    ARCHITECTURE.md §6 (one rank, its own master address)."""
    config_path, ds_path = write_job_files(cfg, job, job_dir)
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
