"""A real one-node Slurm cluster on loopback for tests: ``munged``, ``slurmctld`` and
``slurmd`` (Debian's ``munge`` and ``slurm-wlm``) started as root from a generated
``slurm.conf`` in a temporary folder, with no accounting database.

Jobs are judged with ``scontrol show job`` (finished jobs stay there for ``MinJobAge``
seconds) or the ``jobcomp/filetxt`` file; ``sacct`` needs slurmdbd and does not work here.

    with LocalSlurmCluster() as cluster:
        subprocess.run(["sbatch", "--parsable", script], env=cluster.env, ...)

The ``slurm_cluster`` pytest fixture starts one for the whole session; it skips when not
root or when Slurm is not installed (``scripts/setup.sh`` installs it when run as root),
and fails instead when ``BOLT_REQUIRE_SLURM=1`` is set.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Self

import pytest

DAEMONS = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "scontrol", "squeue", "sinfo")
# A job's end as the controller reports it: the job left every state it could run again from.
FINISHED_STATES = {
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


class SlurmClusterError(RuntimeError):
    pass


def missing_tools() -> list[str]:
    return [name for name in DAEMONS if shutil.which(name) is None]


def unavailable_reason() -> str | None:
    """Why a local cluster cannot start here, or None when it can."""
    if os.geteuid() != 0:
        return "a local Slurm cluster needs root (slurmd runs jobs as any user)"
    missing = missing_tools()
    if missing:
        return (
            f"Slurm/munge not installed ({', '.join(missing)} missing); "
            "run scripts/setup.sh as root"
        )
    return None


# The daemons' ports come from below the kernel's ephemeral range (ip_local_port_range,
# 32768-60999 by default), which the suite's other servers (port 0) and every outgoing
# connection draw from: none of them can take a port between its choice and the daemon's
# bind. A lock file per port (under /tmp, shared by the session's workers, whose TMPDIRs
# differ) keeps the clusters that two workers run at once off each other's ports.
PORT_RANGE = range(20000, 32000)
PORT_LOCKS = Path("/tmp/bolt-slurm-ports")


def reserve_port() -> tuple[int, IO[str]]:
    """A port nothing listens on, and the open lock file that holds it for this cluster
    (closing the file gives it back)."""
    PORT_LOCKS.mkdir(exist_ok=True)
    for port in random.SystemRandom().sample(PORT_RANGE, 200):
        handle = open(PORT_LOCKS / f"{port}.lock", "w")  # noqa: SIM115 (held until stop)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            with socket.socket() as probe:
                probe.bind(("", port))
        except OSError:  # another cluster's, or something else listens there
            handle.close()
            continue
        return port, handle
    raise SlurmClusterError(f"no free port among 200 tried in {PORT_RANGE}")


def _tail(path: Path, lines: int = 25) -> str:
    if not path.is_file():
        return f"  ({path.name}: not written)"
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return "\n".join(f"  {line}" for line in text) or f"  ({path.name}: empty)"


def parse_key_values(text: str) -> dict[str, str]:
    """``Key=Value`` pairs of ``scontrol show job -o`` or a jobcomp/filetxt line.

    A value runs up to the next `` Key=`` (so values with spaces, such as a Command
    with arguments, stay whole); keys are word characters, ``/`` and ``:`` (``Socks/Node``,
    ``ReqB:S:C:T``)."""
    pairs = re.findall(r"(?:^|\s)([A-Za-z][\w/:]*)=(.*?)(?=\s+[A-Za-z][\w/:]*=|\s*$)", text.strip())
    return dict(pairs)


def parse_exit_code(value: str) -> tuple[int, int]:
    """Slurm's ``ExitCode=3:0``: (exit status, signal that ended the job; 0 when none)."""
    code, _, sig = value.partition(":")
    return int(code), int(sig or 0)


class LocalSlurmCluster:
    """One node (``localhost``) and one default partition (``debug``) on loopback ports.

    ``cpus`` defaults to the machine's; a larger number lets more one-CPU jobs run at
    once (the node then declares more CPUs than it has, via config_overrides)."""

    def __init__(
        self,
        root: Path | None = None,
        *,
        cpus: int | None = None,
        gpus: int = 0,
        start_timeout: float = 60.0,
        min_job_age: int = 600,
    ):
        self.owns_root = root is None
        self.root = Path(root) if root else Path(tempfile.mkdtemp(prefix="bolt-slurm-"))
        self.cpus = cpus
        self.gpus = gpus
        self.start_timeout = start_timeout
        self.min_job_age = min_job_age
        self.conf = self.root / "slurm.conf"
        # munged wants every folder above its socket searchable by all, and the path short
        # (sun_path): its own folder under the system temp, whatever root is.
        self.munge_dir = Path(tempfile.mkdtemp(prefix="bolt-munge-"))
        self.munge_socket = self.munge_dir / "munge.socket.2"
        self.jobcomp = self.root / "jobcomp.txt"
        self.partition = "debug"
        self.node = "localhost"
        self.procs: dict[str, subprocess.Popen] = {}
        self.port_locks: list[IO[str]] = []
        self.started_in: float | None = None

    # -- what clients need ------------------------------------------------------------
    @property
    def env(self) -> dict[str, str]:
        """The environment for sbatch/squeue/scontrol/scancel/sinfo: SLURM_CONF names the
        generated slurm.conf, whose ``AuthInfo=socket=...`` points the munge plugin at
        this cluster's munged (libmunge's MUNGE_SOCKET is not read by Slurm)."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def run(self, *command: str, timeout: float = 30, check: bool = True) -> str:
        done = subprocess.run(
            list(command),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise SlurmClusterError(
                f"{' '.join(command)} exited {done.returncode}: {done.stderr.strip()}"
            )
        return done.stdout

    # -- lifecycle --------------------------------------------------------------------
    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            if self.owns_root:
                shutil.rmtree(self.root, ignore_errors=True)
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
        if self.owns_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def start(self) -> None:
        reason = unavailable_reason()
        if reason:
            raise SlurmClusterError(reason)
        t0 = time.monotonic()
        for sub in ("state", "spool", "log"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(self.munge_dir, 0o755)
        try:
            self._start_munged()
            self.conf.write_text(self.render_conf())
            self._spawn("slurmctld", ["slurmctld", "-D", "-c", "-f", str(self.conf)])
            self._spawn("slurmd", ["slurmd", "-D", "-N", self.node, "-f", str(self.conf)])
            self._wait_idle()
        except BaseException:
            self.stop()
            raise
        self.started_in = time.monotonic() - t0

    def _spawn(self, name: str, command: list[str]) -> None:
        with open(self.root / "log" / f"{name}.out", "ab") as out:
            self.procs[name] = subprocess.Popen(
                command,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so stop() reaches children
            )

    def _start_munged(self) -> None:
        key = self.munge_dir / "munge.key"
        subprocess.run(
            ["mungekey", "--create", "--bits=1024", f"--keyfile={key}"],
            check=True,
            capture_output=True,
            timeout=30,
        )
        os.chown(key, 0, 0)
        os.chmod(key, 0o600)
        self._spawn(
            "munged",
            [
                "munged",
                "--foreground",
                f"--socket={self.munge_socket}",
                f"--key-file={key}",
                f"--pid-file={self.munge_dir / 'munged.pid'}",
                f"--log-file={self.root / 'log' / 'munged.log'}",
                f"--seed-file={self.munge_dir / 'munged.seed'}",
                "--num-threads=2",
            ],
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            self._check_alive()
            if self.munge_socket.exists():
                cred = subprocess.run(
                    ["munge", "-n", "-S", str(self.munge_socket)],
                    check=False,
                    capture_output=True,
                    timeout=10,
                )
                if cred.returncode == 0:
                    return
            time.sleep(0.1)
        raise SlurmClusterError("munged did not answer within 15 s\n" + self._logs())

    def machine(self) -> dict[str, str]:
        """``slurmd -C``'s view of this machine (CPUs, sockets, cores, RealMemory, ...)."""
        line = subprocess.run(
            ["slurmd", "-C"], capture_output=True, text=True, check=True, timeout=30
        ).stdout.splitlines()[0]
        return parse_key_values(line)

    def _reserve_port(self) -> int:
        port, lock = reserve_port()
        self.port_locks.append(lock)
        return port

    def render_conf(self) -> str:
        hw = self.machine()
        real_cpus = int(hw["CPUs"])
        cpus = self.cpus or real_cpus
        node_hw = (
            f"CPUs={cpus}"
            if cpus != real_cpus
            else " ".join(
                f"{k}={hw[k]}"
                for k in ("CPUs", "Boards", "SocketsPerBoard", "CoresPerSocket", "ThreadsPerCore")
                if k in hw
            )
        )
        r = self.root
        lines = {
            # Its own name: two clusters of one session never look alike.
            "ClusterName": "bolt-test-" + hashlib.sha1(str(self.root).encode()).hexdigest()[:8],
            "SlurmctldHost": "localhost",
            "SlurmctldPort": self._reserve_port(),
            "SlurmdPort": self._reserve_port(),
            "SlurmUser": "root",
            "SlurmdUser": "root",
            "AuthType": "auth/munge",
            "CredType": "cred/munge",
            "AuthInfo": f"socket={self.munge_socket}",
            "StateSaveLocation": r / "state",
            "SlurmdSpoolDir": r / "spool",
            "SlurmctldPidFile": r / "slurmctld.pid",
            "SlurmdPidFile": r / "slurmd.pid",
            "SlurmctldLogFile": r / "log" / "slurmctld.log",
            "SlurmdLogFile": r / "log" / "slurmd.log",
            "SlurmctldDebug": "info",
            "SlurmdDebug": "info",
            "ProctrackType": "proctrack/linuxproc",
            "TaskPlugin": "task/none",
            "JobAcctGatherType": "jobacct_gather/none",
            "SelectType": "select/cons_tres",
            # Cores only: a job without --mem does not take the whole node's memory.
            "SelectTypeParameters": "CR_Core",
            "AccountingStorageType": "accounting_storage/none",
            "JobCompType": "jobcomp/filetxt",
            "JobCompLoc": self.jobcomp,
            "MpiDefault": "none",
            "MailProg": shutil.which("true") or "/bin/true",
            "SwitchType": "switch/none",
            "ReturnToService": 2,
            # Finished jobs stay visible to scontrol/squeue this long (seconds).
            "MinJobAge": self.min_job_age,
            "KillWait": 2,
            "InactiveLimit": 0,
            "SlurmdTimeout": 60,
            "SlurmctldTimeout": 30,
            "MessageTimeout": 10,
            "SchedulerType": "sched/backfill",
        }
        if cpus != real_cpus:
            lines["SlurmdParameters"] = "config_overrides"
        gres = ""
        if self.gpus:
            # Count-only GPUs (no device files): --gpus-per-node=N schedules, nothing binds.
            lines["GresTypes"] = "gpu"
            gres = f"Gres=gpu:{self.gpus} "
            # gres.conf needs a File per GPU; plain files stand in for /dev/nvidiaN.
            devices = self.root / "dev"
            devices.mkdir(exist_ok=True)
            files = []
            for i in range(self.gpus):
                (devices / f"gpu{i}").touch()
                files.append(f"NodeName={self.node} Name=gpu File={devices / f'gpu{i}'}")
            (self.conf.parent / "gres.conf").write_text(
                "AutoDetect=off\n" + "\n".join(files) + "\n"
            )
        conf = "\n".join(f"{k}={v}" for k, v in lines.items())
        return (
            "# Generated by tests/slurm_cluster.py: one node on loopback, no accounting.\n"
            f"{conf}\n"
            f"NodeName={self.node} NodeAddr=127.0.0.1 {node_hw} {gres}"
            f"RealMemory={hw['RealMemory']} State=UNKNOWN\n"
            f"PartitionName={self.partition} Nodes={self.node} Default=YES "
            "MaxTime=INFINITE State=UP\n"
        )

    def _check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise SlurmClusterError(
                    f"{name} exited {proc.returncode} while the cluster started\n" + self._logs()
                )

    def _wait_idle(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        last = ""
        while time.monotonic() < deadline:
            self._check_alive()
            done = subprocess.run(
                ["sinfo", "-h", "-N", "-o", "%N %T"],
                check=False,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=15,
            )
            last = (done.stdout + done.stderr).strip()
            if done.returncode == 0 and re.search(rf"^{self.node} idle\b", last, re.MULTILINE):
                return
            time.sleep(0.2)
        raise SlurmClusterError(
            f"node {self.node} not idle within {self.start_timeout:.0f} s "
            f"(last sinfo: {last!r})\n" + self._logs()
        )

    def _logs(self) -> str:
        logs = sorted((self.root / "log").glob("*"))
        return "\n".join(f"--- {p.name} ---\n{_tail(p)}" for p in logs)

    def logs(self) -> str:
        """The tails of every daemon's log, for a failing test's message."""
        return self._logs()

    def stop(self, timeout: float = 15.0) -> None:
        """Cancels what still runs, then stops slurmd, slurmctld and munged (TERM, then
        KILL after ``timeout``), each with its process group."""
        if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            subprocess.run(
                ["scancel", "--full", "--partition", self.partition],
                check=False,
                env=self.env,
                capture_output=True,
                timeout=15,
            )
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                q = subprocess.run(
                    ["squeue", "-h", "-o", "%i"],
                    check=False,
                    env=self.env,
                    capture_output=True,
                    timeout=15,
                )
                if q.returncode != 0 or not q.stdout.strip():
                    break
                time.sleep(0.2)
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.procs.pop(name, None)
            if proc is None:
                continue
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    try:
                        os.killpg(proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    proc.wait(5)
        shutil.rmtree(self.munge_dir, ignore_errors=True)
        for lock in self.port_locks:
            lock.close()
        self.port_locks.clear()


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[LocalSlurmCluster]:
    """One real local Slurm cluster for the test session (skips when not root or Slurm is
    not installed; BOLT_REQUIRE_SLURM=1 turns that skip into a failure)."""
    reason = unavailable_reason()
    if reason:
        if os.environ.get("BOLT_REQUIRE_SLURM") == "1":
            pytest.fail(f"BOLT_REQUIRE_SLURM=1 but {reason}")
        pytest.skip(reason)
    # A short path under /tmp: munged's socket path must fit in sun_path (108 bytes).
    cluster = LocalSlurmCluster(cpus=max(4, os.cpu_count() or 1))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(cluster.root, ignore_errors=True)
