"""The Slurm launcher: a batch script rendered from ``infra/slurm/train.sbatch.j2`` into a
job folder on the cluster's shared filesystem (with the config and DeepSpeed files it
names), submitted with ``sbatch --parsable``, followed with ``squeue`` while it runs
(its output file tailed for the log), cancelled with ``scancel`` when the launcher is
interrupted, and judged by its final state and exit code.

The verdict comes from ``scontrol show job -o`` while the controller remembers the job
(``MinJobAge`` seconds after its end), then from the ``jobcomp/filetxt`` file
(``JobCompLoc`` of ``scontrol show config``), then from ``sacct`` (which needs
slurmdbd). All three give ``Key=Value`` records read by ``parse_job_record``.
"""

from __future__ import annotations

import os
import re
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
    JobDirs,
    LaunchError,
    LogSink,
    TrainJob,
    build_cache_env,
    node_command,
    shell_line,
    write_job_files,
)

TEMPLATE = "train.sbatch.j2"
# Job states after which the job will not run again by itself.
FINISHED = {
    "BOOT_FAIL",
    "CANCELLED",
    "COMPLETED",
    "DEADLINE",
    "FAILED",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "PREEMPTED",
    "TIMEOUT",
}
# The pending reason of a job whose launch failed on its node: Slurm requeued it held, and
# it waits for `scontrol release` forever (a node's slurmd refused the launch: a bad
# credential, a missing spool folder, a full disk). Other holds (JobHeldUser,
# JobHeldAdmin) are someone's decision and are waited out.
HELD_AFTER_FAILED_LAUNCH = "launch_failed_requeued_held"
# What squeue and scontrol answer (exit 1) for a job the controller no longer holds.
FORGOTTEN = "Invalid job id specified"
# A key of a Slurm record: a word (with / and : as in Socks/Node, ReqB:S:C:T) before '='
# at the start or after whitespace; a value runs up to the next such key.
_KEY = re.compile(r"(?:^|(?<=\s))([A-Za-z][\w/:]*)=")
# Seconds to wait for a finished job's record to reach scontrol or the jobcomp file.
VERDICT_WAIT = 60.0


def parse_job_record(text: str) -> dict[str, str]:
    """The ``Key=Value`` pairs of ``scontrol show job -o`` or of a jobcomp/filetxt line.

    A value may hold spaces (``Command=/x/run.sh --a b``, a job name) and ``=``
    (``Tres=cpu=1,mem=2G``): it runs up to the next whitespace-led ``Key=``."""
    line = text.strip()
    keys = list(_KEY.finditer(line))
    record = {}
    for key, following in zip(keys, [*keys[1:], None], strict=False):
        end = following.start() if following else len(line)
        record[key.group(1)] = line[key.end() : end].strip()
    return record


def parse_config(text: str) -> dict[str, str]:
    """``scontrol show config``'s ``Name = value`` lines."""
    pairs = (re.match(r"^(\w+)\s*=\s*(.*?)\s*$", line) for line in text.splitlines())
    return {m.group(1): m.group(2) for m in pairs if m}


def time_limit(hours: float) -> str:
    minutes = round(hours * 60)
    return f"{minutes // 1440}-{minutes % 1440 // 60:02d}:{minutes % 60:02d}:00"


def job_dir_on_cluster(cfg: PipelineConfig, job: TrainJob) -> Path:
    """The job's folder on the cluster's shared filesystem (script, config, log, and the
    job's own run folder, HOME, TMPDIR and scratch: ``JobDirs``)."""
    return Path(cfg.compute.workdir) / ".bolt-jobs" / job.name


def render(cfg: PipelineConfig, job: TrainJob) -> str:
    """The batch script, naming its files in the job's folder on the cluster."""
    c, job_dir = cfg.compute, job_dir_on_cluster(cfg, job)
    dirs = JobDirs(job_dir)
    command = node_command(
        cfg,
        job,
        str(job_dir / "config.yaml"),
        str(job_dir / "deepspeed.json"),
        "$SLURM_NODEID",
        "$MASTER_ADDR",
        c.workdir,
        "$MASTER_PORT",
    )
    # Set in each node's task: its own scratch; on CPUs (no accelerate) its rank too.
    task_env = [f"BOLT_TRAIN_DIR={shlex.quote(str(dirs.work))}/node-$SLURM_NODEID"]
    if c.gpus_per_node == 0:
        task_env += ["RANK=$SLURM_PROCID", "WORLD_SIZE=$SLURM_NTASKS", "LOCAL_RANK=$SLURM_LOCALID"]
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
        run_dir=str(dirs.run),
        home_dir=str(dirs.home),
        tmp_dir=str(dirs.tmp),
        partition=c.slurm_partition,
        account=c.slurm_account,
        master_port=MASTER_PORT,
        workdir=c.workdir,
        command=" ".join([*task_env, shell_line(command)]),
    )


def _call(command: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            command, capture_output=True, text=True, check=False, timeout=120, env=env
        )
    except FileNotFoundError as e:
        raise LaunchError(f"compute.launcher is slurm but {command[0]} is not on PATH") from e


def _run(command: list[str], env: dict[str, str] | None = None) -> str:
    done = _call(command, env)
    if done.returncode != 0:
        raise LaunchError(f"{shlex.join(command)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def queue_entry(job_id: str) -> tuple[str, str] | None:
    """The squeue state (PENDING, RUNNING, ...) and its reason (``Resources``,
    ``Priority``, ``None`` while it runs), or None when the job left the queue."""
    done = _call(["squeue", "-h", "-j", job_id, "-o", "%T %r"])
    if done.returncode != 0:
        if FORGOTTEN in done.stderr:
            return None
        raise LaunchError(f"squeue -j {job_id} failed: {done.stderr.strip()}")
    lines = done.stdout.strip().splitlines()
    if not lines:
        return None
    state, _, reason = lines[0].strip().partition(" ")
    return state, reason.strip()


def scontrol_record(job_id: str) -> dict[str, str] | None:
    """The controller's record of the job, None once it has forgotten it (MinJobAge)."""
    done = _call(["scontrol", "show", "job", "-o", job_id])
    if done.returncode != 0:
        if FORGOTTEN in done.stderr:
            return None
        raise LaunchError(f"scontrol show job {job_id} failed: {done.stderr.strip()}")
    return parse_job_record(done.stdout.splitlines()[0]) if done.stdout.strip() else None


def jobcomp_record(job_id: str) -> dict[str, str] | None:
    """The job's line in the jobcomp/filetxt file, when the cluster keeps one."""
    done = _call(["scontrol", "show", "config"])
    if done.returncode != 0:
        return None
    config = parse_config(done.stdout)
    location = Path(config.get("JobCompLoc") or "/nonexistent")
    if config.get("JobCompType") != "jobcomp/filetxt" or not location.is_file():
        return None
    found = None
    for line in location.read_text(errors="replace").splitlines():
        if f"JobId={job_id} " in f"{line} ":
            found = parse_job_record(line)  # the last line wins (a requeued job)
    return found


def sacct_record(job_id: str) -> dict[str, str] | None:
    """sacct's verdict for the whole allocation (needs slurmdbd); None when it has none."""
    done = _call(["sacct", "-j", job_id, "-n", "-X", "-P", "-o", "JobID,State,ExitCode"])
    rows = [r.split("|") for r in done.stdout.splitlines() if r.count("|") == 2]
    if done.returncode != 0 or not rows:
        return None
    ident, state, code = rows[0]
    # 'CANCELLED by 0': the state is the first word.
    return {"JobId": ident, "JobState": state.split()[0] if state else "", "ExitCode": code}


def final_record(job_id: str, poll_seconds: float, wait: float = VERDICT_WAIT) -> dict[str, str]:
    """The finished job's record (JobState, ExitCode): scontrol, else the jobcomp file,
    else sacct; waits up to ``wait`` seconds for one to show a finished state."""
    deadline = time.monotonic() + wait
    record: dict[str, str] | None = None
    while True:
        for source in (scontrol_record, jobcomp_record, sacct_record):
            record = source(job_id)
            if record is not None:
                break
        state = (record or {}).get("JobState", "").partition(" ")[0]
        if state in FINISHED:
            return {**(record or {}), "JobState": state}
        if time.monotonic() > deadline:
            return record or {"JobId": job_id, "JobState": "UNKNOWN", "ExitCode": "?"}
        time.sleep(min(poll_seconds, 2.0))


def _new_lines(log: Path, offset: int, final: bool = False) -> tuple[list[str], int]:
    """Complete lines written since ``offset`` (and, when ``final``, the unfinished last)."""
    if not log.is_file():
        return [], offset
    with open(log, encoding="utf-8", errors="replace") as f:
        f.seek(offset)
        text = f.read()
    if final:
        return (text.rstrip("\n").split("\n") if text.strip() else []), offset + len(text)
    complete, _, rest = text.rpartition("\n")
    return (complete.split("\n") if complete else []), offset + len(text) - len(rest)


def follow(job_id: str, log: Path, poll_seconds: float, on_line: LogSink) -> deque[str]:
    """Pass the job's log lines on until it leaves the queue; the last 40 for an error.
    While it waits, each new pending reason is a line of its own; a job held after a
    failed launch raises ``LaunchError`` (the caller cancels it, the task's retry submits
    it again), since Slurm would never start it."""
    tail: deque[str] = deque(maxlen=40)
    offset, failures, reported = 0, 0, ""
    while True:
        try:
            entry, failures = queue_entry(job_id), 0
        except LaunchError:
            failures += 1  # a busy controller: try again, give up after a few polls
            if failures >= 5:
                raise
            entry = ("UNKNOWN", "")
        state, reason = entry if entry else (None, "")
        if state == "PENDING" and reason != reported:
            reported = reason
            on_line(f"launch: slurm job {job_id} pending ({reason})")
            if reason == HELD_AFTER_FAILED_LAUNCH:
                raise LaunchError(
                    f"slurm job {job_id} is held after its launch failed on the node "
                    f"(Reason={reason}); Slurm will not start it by itself: the node's "
                    "slurmd log says why the launch failed"
                )
        lines, offset = _new_lines(log, offset, final=state is None or state in FINISHED)
        for line in lines:
            tail.append(line)
            on_line(line)
        if state is None or state in FINISHED:
            return tail
        time.sleep(poll_seconds)


def cancel(job_id: str, on_line: LogSink) -> None:
    done = _call(["scancel", job_id])
    on_line(f"launch: scancel {job_id} (exit {done.returncode}) {done.stderr.strip()}".rstrip())


def run(cfg: PipelineConfig, job: TrainJob, scratch: Path, on_line: LogSink) -> None:
    """Submit, follow and judge the job; its files live on the cluster, not in ``scratch``.
    An interrupted launcher (the task cancelled, a KeyboardInterrupt) cancels the job."""
    job_dir = job_dir_on_cluster(cfg, job)
    JobDirs(job_dir).fresh()
    write_job_files(cfg, job, job_dir)
    script = job_dir / "train.sbatch"
    script.write_text(render(cfg, job))
    log = job_dir / "train.log"
    log.unlink(missing_ok=True)  # a relaunch's log starts empty
    # --export=ALL hands the job this environment (the build cache included), then its
    # own HOME and TMPDIR.
    submit_env = {**os.environ, **build_cache_env()}
    job_id = _run(["sbatch", "--parsable", str(script)], submit_env).split(";")[0]
    on_line(f"launch: slurm job {job_id} ({script})")
    try:
        tail = follow(job_id, log, cfg.compute.poll_seconds, on_line)
    except BaseException:
        cancel(job_id, on_line)
        raise
    record = final_record(job_id, cfg.compute.poll_seconds)
    state, code = record.get("JobState", "UNKNOWN"), record.get("ExitCode", "?")
    if state != "COMPLETED":
        raise LaunchError(
            f"slurm job {job_id} ({job.name}) ended {state} with exit code {code}:\n"
            + "\n".join(tail)
        )
    on_line(f"launch: slurm job {job_id} ended {state} with exit code {code}")
