"""Launcher specs for the paper's clusters against reviewed golden files, validated
against the Kubernetes 1.37 schemas (kubernetes-validate, offline) and sbatch's options;
the Slurm launcher driven end to end through stand-in sbatch/squeue/sacct commands."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from bolt.config import Launcher, ZeroStage
from bolt.config_loader import load_config
from bolt.train.job import LaunchError, TrainJob
from bolt.train.launch import render_spec, run_job
from bolt.train.plan import PlanError

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests/golden"
JOB = TrainJob("sft", "0123456789abcdef", "bolt.train.sft", ("--sft-set", "fedcba9876543210"), "")
SBATCH_OPTIONS = {
    "job-name",
    "nodes",
    "ntasks-per-node",
    "gpus-per-node",
    "exclusive",
    "time",
    "output",
    "partition",
    "account",
}


def _config(name: str, launcher: Launcher, **compute):
    cfg = load_config(REPO / f"configs/{name}.yaml")
    return cfg.model_copy(
        update={"compute": cfg.compute.model_copy(update={"launcher": launcher, **compute})}
    )


def _job(cfg) -> TrainJob:
    return TrainJob(JOB.stage, JOB.fingerprint, JOB.module, JOB.args, cfg.name)


def _check_golden(rendered: str, filename: str) -> None:
    path = GOLDEN / filename
    if os.environ.get("BOLT_UPDATE_GOLDEN"):
        path.write_text(rendered)
    assert rendered == path.read_text(), f"{filename} changed; review, then BOLT_UPDATE_GOLDEN=1"


@pytest.mark.parametrize("name", ["paper-8b", "paper-70b"])
def test_kubernetes_spec_matches_golden_and_schema(name):
    import kubernetes_validate

    cfg = _config(name, Launcher.kubernetes)
    rendered = render_spec(cfg, _job(cfg))
    _check_golden(rendered, f"sft-{name}.k8s.yaml")
    documents = list(yaml.safe_load_all(rendered))
    assert [d["kind"] for d in documents] == ["ConfigMap", "Service", "Job"]
    for doc in documents:
        kubernetes_validate.validate(doc, "1.37.0", strict=True)
    job = documents[2]["spec"]
    assert job["completions"] == job["parallelism"] == cfg.compute.nodes
    container = job["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 8
    command = container["args"][0]
    assert f"--num_processes {8 * cfg.compute.nodes}" in command
    assert "--machine_rank $JOB_COMPLETION_INDEX" in command
    # The job reads the very config it was rendered from.
    shipped = yaml.safe_load(documents[0]["data"]["config.yaml"])
    assert shipped["sft"]["global_batch_size"] == 128 and shipped["name"] == name


@pytest.mark.parametrize("name", ["paper-8b", "paper-70b"])
def test_slurm_script_matches_golden_and_sbatch_options(name, tmp_path):
    cfg = _config(name, Launcher.slurm, slurm_partition="gpu")
    rendered = render_spec(cfg, _job(cfg))
    _check_golden(rendered, f"sft-{name}.sbatch")
    options = re.findall(r"^#SBATCH --([a-z-]+)", rendered, re.MULTILINE)
    assert set(options) <= SBATCH_OPTIONS and len(options) == len(set(options))
    assert f"#SBATCH --nodes={cfg.compute.nodes}" in rendered
    script = tmp_path / "job.sbatch"
    script.write_text(rendered)
    subprocess.run(["bash", "-n", str(script)], check=True)


def test_a_plan_the_nodes_cannot_hold_is_refused_before_launch():
    cfg = _config("paper-70b", Launcher.kubernetes, nodes=1)
    with pytest.raises(PlanError, match=r"llama-3.1-70b-instruct on 1 node\(s\) x 8 H100-80GB"):
        render_spec(cfg, _job(cfg))


def test_kubernetes_job_outcome():
    from bolt.train.kubernetes import job_outcome

    assert job_outcome(SimpleNamespace(succeeded=8, conditions=None), 8) == "succeeded"
    assert job_outcome(SimpleNamespace(succeeded=3, conditions=[]), 8) is None
    failed = SimpleNamespace(
        type="Failed", status="True", reason="BackoffLimitExceeded", message="pod 3"
    )
    assert job_outcome(SimpleNamespace(succeeded=0, conditions=[failed]), 8).startswith("failed")


FAKE_SBATCH = """#!/bin/bash
log=$(grep -- '--output=' "$2" | cut -d= -f2)
printf 'loading\\nBOLT_PROGRESS {"step": 1, "max_steps": 2, "loss": 2.0}\\n' > "$log"
echo 4242
"""
FAKE_SQUEUE = "#!/bin/bash\n"  # the job has already left the queue
FAKE_SACCT = "#!/bin/bash\necho '{state}|{code}'\n"


@pytest.mark.parametrize(("state", "code"), [("COMPLETED", "0:0"), ("FAILED", "1:0")])
def test_slurm_launcher_submits_follows_and_judges(tmp_path, monkeypatch, state, code):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool, body in (
        ("sbatch", FAKE_SBATCH),
        ("squeue", FAKE_SQUEUE),
        ("sacct", FAKE_SACCT.format(state=state, code=code)),
    ):
        (bin_dir / tool).write_text(body)
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    cfg = _config("paper-8b", Launcher.slurm, workdir=str(tmp_path), poll_seconds=0.01)
    lines: list[str] = []
    if state == "COMPLETED":
        run_job(cfg, _job(cfg), tmp_path, lines.append)
        assert any(line.startswith("BOLT_PROGRESS") for line in lines)
        assert (tmp_path / ".bolt-jobs" / _job(cfg).name / "config.yaml").is_file()
    else:
        with pytest.raises(LaunchError, match="slurm job 4242 ended FAILED 1:0"):
            run_job(cfg, _job(cfg), tmp_path, lines.append)


def test_a_dpo_job_is_planned_with_the_online_settings():
    cfg = _config("paper-70b", Launcher.kubernetes)
    cfg = cfg.model_copy(update={"online": cfg.online.model_copy(update={"zero": ZeroStage.zero2})})
    render_spec(cfg, _job(cfg))  # SFT under ZeRO-3 fits 8 nodes
    dpo = TrainJob("online-policy", "0123456789abcdef", "bolt.train.dpo", (), cfg.name, "online")
    # ZeRO-2 keeps the whole 16-bit 70B on every GPU: the DPO job cannot fit.
    with pytest.raises(PlanError, match=r"online of llama-3.1-70b-instruct .* with zero2"):
        render_spec(cfg, dpo)
