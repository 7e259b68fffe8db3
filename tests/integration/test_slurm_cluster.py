"""The real local Slurm cluster (tests/slurm_cluster.py): sbatch submits, squeue follows,
scontrol and the jobcomp/filetxt file give the final state and exit code, scancel cancels.
No sacct: there is no slurmdbd."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from slurm_cluster import LocalSlurmCluster, parse_exit_code, parse_key_values

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(180)]


def submit(cluster: LocalSlurmCluster, folder: Path, name: str, body: str, *extra: str) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / f"{name}.sbatch"
    script.write_text(f"#!/bin/bash\n#SBATCH --job-name={name}\n{body}\n")
    out = cluster.run(
        "sbatch", "--parsable", f"--output={folder / name}.out", *extra, str(script)
    ).strip()
    return out.split(";")[0]  # "<id>[;<cluster>]"


def queue_state(cluster: LocalSlurmCluster, job_id: str) -> str | None:
    """squeue's state while the job is queued or running; None once it has left."""
    out = cluster.run("squeue", "-h", "-j", job_id, "-o", "%T").strip()
    return out.splitlines()[0] if out else None


def wait_for(cluster: LocalSlurmCluster, job_id: str, until, timeout: float = 60) -> str | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = queue_state(cluster, job_id)
        if until(state):
            return state
        time.sleep(0.2)
    raise AssertionError(
        f"job {job_id} still {state} after {timeout:.0f} s\n"
        + cluster.run("scontrol", "show", "job", job_id, check=False)
        + cluster.logs()
    )


def scontrol_job(cluster: LocalSlurmCluster, job_id: str) -> dict[str, str]:
    return parse_key_values(cluster.run("scontrol", "show", "job", "-o", job_id))


def jobcomp_entry(cluster: LocalSlurmCluster, job_id: str, timeout: float = 10) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cluster.jobcomp.is_file():
            for line in cluster.jobcomp.read_text().splitlines():
                entry = parse_key_values(line)
                if entry.get("JobId") == job_id:
                    return entry
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} not in {cluster.jobcomp}")


def test_exit_codes_from_scontrol_and_jobcomp(slurm_cluster, tmp_path):
    ok = submit(slurm_cluster, tmp_path, "exits-0", "echo fine")
    bad = submit(slurm_cluster, tmp_path, "exits-3", "echo failing >&2; exit 3")
    for job_id in (ok, bad):
        wait_for(slurm_cluster, job_id, lambda s: s is None)

    done, failed = scontrol_job(slurm_cluster, ok), scontrol_job(slurm_cluster, bad)
    assert (done["JobState"], parse_exit_code(done["ExitCode"])) == ("COMPLETED", (0, 0))
    assert (failed["JobState"], failed["Reason"]) == ("FAILED", "NonZeroExitCode")
    assert parse_exit_code(failed["ExitCode"]) == (3, 0)
    assert failed["JobName"] == "exits-3"
    assert (tmp_path / "exits-3.out").read_text() == "failing\n"  # stderr joins --output

    assert jobcomp_entry(slurm_cluster, ok)["JobState"] == "COMPLETED"
    entry = jobcomp_entry(slurm_cluster, bad)
    assert (entry["JobState"], entry["ExitCode"]) == ("FAILED", "3:0")

    # No accounting database: sacct cannot judge a job here.
    sacct = subprocess.run(
        ["sacct", "-j", bad, "-n", "-X", "-P", "-o", "State,ExitCode"],
        check=False,
        env=slurm_cluster.env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert sacct.returncode != 0 and "accounting storage is disabled" in sacct.stderr


def test_scancel_of_a_running_job_is_cancelled(slurm_cluster, tmp_path):
    job_id = submit(slurm_cluster, tmp_path, "sleeps", "echo started; sleep 300")
    wait_for(slurm_cluster, job_id, lambda s: s == "RUNNING")
    t0 = time.monotonic()
    slurm_cluster.run("scancel", job_id)
    wait_for(slurm_cluster, job_id, lambda s: s is None, timeout=30)
    assert time.monotonic() - t0 < 20

    job = scontrol_job(slurm_cluster, job_id)
    assert job["JobState"] == "CANCELLED"
    assert parse_exit_code(job["ExitCode"]) == (0, 15)  # ended by SIGTERM
    assert jobcomp_entry(slurm_cluster, job_id)["JobState"] == "CANCELLED"


def test_job_runs_in_its_own_folder_with_fresh_home_and_tmpdir(slurm_cluster, tmp_path):
    work, home, tmp = tmp_path / "work", tmp_path / "home", tmp_path / "tmp"
    for d in (work, home, tmp):
        d.mkdir()
    job_id = submit(
        slurm_cluster,
        tmp_path,
        "isolated",
        'echo "$PWD|$HOME|$TMPDIR|$SLURM_JOB_ID"; srun bash -c \'echo "step $PWD|$HOME"\'',
        f"--chdir={work}",
        f"--export=ALL,HOME={home},TMPDIR={tmp}",
    )
    wait_for(slurm_cluster, job_id, lambda s: s is None)
    assert scontrol_job(slurm_cluster, job_id)["JobState"] == "COMPLETED"
    lines = (tmp_path / "isolated.out").read_text().splitlines()
    assert lines == [f"{work}|{home}|{tmp}|{job_id}", f"step {work}|{home}"]


def test_batch_script_like_the_training_template(tmp_path):
    """The directives infra/slurm/train.sbatch.j2 uses (--gpus-per-node, --exclusive, --time,
    srun --kill-on-bad-exit) on a cluster with two count-only GPUs: a failed step fails the
    job with its exit code."""
    with LocalSlurmCluster(root=tmp_path / "cluster", gpus=2) as cluster:
        body = (
            "#SBATCH --nodes=1\n#SBATCH --ntasks-per-node=1\n#SBATCH --gpus-per-node=1\n"
            "#SBATCH --exclusive\n#SBATCH --time=0-00:05:00\nset -euo pipefail\n"
            'export MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)\n'
            "echo master $MASTER_ADDR\n"
            "srun --kill-on-bad-exit=1 bash -c 'echo node $SLURM_NODEID; exit 4'"
        )
        job_id = submit(cluster, tmp_path / "job", "train", body)
        wait_for(cluster, job_id, lambda s: s is None)
        job = scontrol_job(cluster, job_id)
        assert (job["JobState"], parse_exit_code(job["ExitCode"])) == ("FAILED", (4, 0))
        assert job["TresPerNode"] == "gres:gpu:1"
        log = (tmp_path / "job" / "train.out").read_text()
        assert "master localhost" in log and "node 0" in log
