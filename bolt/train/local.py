"""The local launcher: the job as a subprocess of this machine, its log read line by line.

The job runs in its own folder under the launcher's scratch (``JobDirs``): its working
folder, a fresh HOME and TMPDIR, its own scratch; it imports bolt from this checkout and
reads and writes nothing of the worker's but the store.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
from collections import deque
from collections.abc import Iterable
from pathlib import Path

from bolt.config import PipelineConfig
from bolt.train.job import (
    REPO,
    JobDirs,
    LaunchError,
    LogSink,
    TrainJob,
    build_cache_env,
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
    command = node_command(cfg, job, "config.yaml", "deepspeed.json", "0", "127.0.0.1", str(REPO))
    return shlex.join(command)


def free_port() -> int:
    """A TCP port nothing listens on now: each local job's rendezvous gets its own, so a
    job never collides with another on this machine (or a killed one's orphan)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def job_env(cfg: PipelineConfig, dirs: JobDirs, port: int) -> dict[str, str]:
    """The worker's environment with the job's own HOME, TMPDIR, scratch and rendezvous
    port; on a CPU, the single-process DeepSpeed environment of ARCHITECTURE.md §6."""
    path = os.environ.get("PYTHONPATH")
    env = {
        **os.environ,
        "HOME": str(dirs.home),
        "TMPDIR": str(dirs.tmp),
        "BOLT_TRAIN_DIR": str(dirs.work),
        "PYTHONPATH": f"{REPO}{os.pathsep}{path}" if path else str(REPO),
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
        **build_cache_env(),
    }
    if cfg.compute.gpus_per_node == 0:
        env |= {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0"}
    return env


def run(cfg: PipelineConfig, job: TrainJob, job_dir: Path, on_line: LogSink) -> None:
    """A subprocess on this machine, in ``job_dir``'s run folder."""
    dirs = JobDirs(job_dir).fresh()
    config_path, ds_path = write_job_files(cfg, job, job_dir)
    port = int(os.environ.get("MASTER_PORT") or free_port())
    command = node_command(
        cfg, job, str(config_path), str(ds_path), "0", "127.0.0.1", str(REPO), str(port)
    )
    on_line(f"launch: {shlex.join(command)} (in {dirs.run})")
    with subprocess.Popen(
        command,
        env=job_env(cfg, dirs, port),
        cwd=dirs.run,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # a kill of the job reaches every process it started
    ) as process:
        try:
            tail = stream_lines(process.stdout, on_line)
        except BaseException:  # the task was cancelled or interrupted: so is the job
            os.killpg(process.pid, signal.SIGTERM)
            raise
    if process.returncode != 0:
        raise LaunchError(
            f"{job.name}: local training exited with {process.returncode}:\n" + "\n".join(tail)
        )
