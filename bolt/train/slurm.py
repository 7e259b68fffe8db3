"""The Slurm launcher: a batch script rendered from ``infra/slurm/train.sbatch.j2`` into a
job folder on the cluster's shared filesystem (with the config and DeepSpeed files it
names), submitted with ``sbatch --parsable``, followed with ``squeue`` while it runs
(its output file tailed for the log) and judged with ``sacct`` when it is gone.
"""

from __future__ import annotations

import shlex
import subprocess
import time
from collections import deque
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from bolt.config import PipelineConfig
from bolt.train.deepspeed import INFRA
from bolt.train.job import (
    MASTER_PORT,
    LaunchError,
    LogSink,
    TrainJob,
    node_command,
    shell_line,
    write_job_files,
)

TEMPLATE = "train.sbatch.j2"
# squeue states after which the job will not run again by itself.
FINISHED = {
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "PREEMPTED",
}


def time_limit(hours: float) -> str:
    minutes = round(hours * 60)
    return f"{minutes // 1440}-{minutes % 1440 // 60:02d}:{minutes % 60:02d}:00"


def job_dir_on_cluster(cfg: PipelineConfig, job: TrainJob) -> Path:
    """The job's folder on the cluster's shared filesystem (script, config, log)."""
    return Path(cfg.compute.workdir) / ".bolt-jobs" / job.name


def render(cfg: PipelineConfig, job: TrainJob) -> str:
    """The batch script, naming its files in the job's folder on the cluster."""
    c, job_dir = cfg.compute, job_dir_on_cluster(cfg, job)
    command = node_command(
        cfg,
        job,
        str(job_dir / "config.yaml"),
        str(job_dir / "deepspeed.json"),
        "$SLURM_NODEID",
        "$MASTER_ADDR",
    )
    env = Environment(
        loader=FileSystemLoader(INFRA / "slurm"),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["shell_quote"] = shlex.quote
    return env.get_template(TEMPLATE).render(
        name=job.name,
        nodes=c.nodes,
        gpus_per_node=c.gpus_per_node,
        time_limit=time_limit(c.time_limit_hours),
        log_path=str(job_dir / "train.log"),
        partition=c.slurm_partition,
        account=c.slurm_account,
        master_port=MASTER_PORT,
        workdir=c.workdir,
        command=shell_line(command),
    )


def _run(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=True)
    except FileNotFoundError as e:
        raise LaunchError(f"compute.launcher is slurm but {command[0]} is not on PATH") from e
    except subprocess.CalledProcessError as e:
        raise LaunchError(f"{shlex.join(command)} failed: {e.stderr.strip()}") from e
    return done.stdout.strip()


def job_state(job_id: str) -> str | None:
    """The squeue state (PENDING, RUNNING, ...) or None when the job left the queue."""
    state = _run(["squeue", "-h", "-j", job_id, "-o", "%T"])
    return state.splitlines()[0].strip() if state else None


def final_state(job_id: str) -> str:
    """sacct's verdict for the whole allocation, e.g. 'COMPLETED 0:0'."""
    rows = _run(["sacct", "-j", job_id, "-n", "-X", "-P", "-o", "State,ExitCode"]).splitlines()
    return rows[0].replace("|", " ") if rows else "UNKNOWN"


def _new_lines(log: Path, offset: int) -> tuple[list[str], int]:
    if not log.is_file():
        return [], offset
    with open(log, encoding="utf-8", errors="replace") as f:
        f.seek(offset)
        text = f.read()
    complete, _, rest = text.rpartition("\n")
    return (complete.split("\n") if complete else []), offset + len(text) - len(rest)


def run(cfg: PipelineConfig, job: TrainJob, scratch: Path, on_line: LogSink) -> None:
    """Submit, follow and judge the job; its files live on the cluster, not in ``scratch``."""
    job_dir = job_dir_on_cluster(cfg, job)
    write_job_files(cfg, job, job_dir)
    script = job_dir / "train.sbatch"
    script.write_text(render(cfg, job))
    log = job_dir / "train.log"
    log.unlink(missing_ok=True)  # a relaunch's log starts empty
    job_id = _run(["sbatch", "--parsable", str(script)]).split(";")[0]
    on_line(f"launch: slurm job {job_id} ({script})")
    tail: deque[str] = deque(maxlen=40)
    offset = 0
    while True:
        state = job_state(job_id)
        lines, offset = _new_lines(log, offset)
        for line in lines:
            tail.append(line)
            on_line(line)
        if state is None or state in FINISHED:
            break
        time.sleep(cfg.compute.poll_seconds)
    verdict = final_state(job_id)
    if not verdict.startswith("COMPLETED"):
        raise LaunchError(f"slurm job {job_id} ended {verdict}:\n" + "\n".join(tail))
