"""Launcher specs for the paper's clusters against reviewed golden files, validated
against the Kubernetes 1.37 schemas (kubernetes-validate, offline) and sbatch's options;
the Slurm records parsed from real scontrol/jobcomp output; the local launcher's job in
its own folder. The Slurm launcher runs for real in tests/integration/test_slurm_training.py;
stand-in commands here only for what that cluster cannot show (sacct, no Slurm at all)."""

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
    "chdir",
    "export",
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
    assert container["workingDir"] == "/scratch"  # the pod's own, with a fresh HOME and TMPDIR
    env = {e["name"]: e["value"] for e in container["env"]}
    assert (env["HOME"], env["TMPDIR"], env["PYTHONPATH"]) == ("/home/bolt", "/tmp", "/opt/bolt")
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
    # Its own working folder, HOME and TMPDIR, beside the script on the shared filesystem.
    folder = f"/opt/bolt/.bolt-jobs/{_job(cfg).name}"
    assert f"#SBATCH --chdir={folder}/run" in rendered
    assert f"#SBATCH --export=ALL,HOME={folder}/home,TMPDIR={folder}/tmp" in rendered
    assert "--config_file /opt/bolt/infra/accelerate/deepspeed.yaml" in rendered
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


# Stand-ins for a cluster with an accounting database (slurmdbd), which the real local
# cluster of tests/integration/test_slurm_training.py cannot show: the controller has
# forgotten the job (past MinJobAge), no jobcomp file is kept, and sacct alone answers.
FAKE_SBATCH = """#!/bin/bash
log=$(grep -- '--output=' "$2" | cut -d= -f2)
printf 'loading\\nBOLT_PROGRESS {"step": 1, "max_steps": 2, "loss": 2.0}\\n' > "$log"
echo 4242
"""
FAKE_SQUEUE = "#!/bin/bash\necho 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1\n"
FAKE_SCONTROL = """#!/bin/bash
if [ "$1 $2" = "show config" ]; then echo 'JobCompType             = jobcomp/none'; exit 0; fi
echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1
"""
FAKE_SACCT = "#!/bin/bash\necho '4242|{state}|{code}'\n"


def _fake_slurm(tmp_path: Path, monkeypatch, tools: dict[str, str]) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool, body in tools.items():
        (bin_dir / tool).write_text(body)
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")


@pytest.mark.parametrize(
    ("state", "code"), [("COMPLETED", "0:0"), ("FAILED", "1:0"), ("CANCELLED by 0", "0:15")]
)
def test_slurm_verdict_from_sacct_when_the_controller_forgot_the_job(
    tmp_path, monkeypatch, state, code
):
    _fake_slurm(
        tmp_path,
        monkeypatch,
        {
            "sbatch": FAKE_SBATCH,
            "squeue": FAKE_SQUEUE,
            "scontrol": FAKE_SCONTROL,
            "sacct": FAKE_SACCT.format(state=state, code=code),
        },
    )
    cfg = _config("paper-8b", Launcher.slurm, workdir=str(tmp_path), poll_seconds=0.01)
    lines: list[str] = []
    if state == "COMPLETED":
        run_job(cfg, _job(cfg), tmp_path, lines.append)
        assert any(line.startswith("BOLT_PROGRESS") for line in lines)
        assert (tmp_path / ".bolt-jobs" / _job(cfg).name / "config.yaml").is_file()
    else:
        name = state.split()[0]
        with pytest.raises(
            LaunchError, match=f"slurm job 4242 .* ended {name} with exit code {code}"
        ):
            run_job(cfg, _job(cfg), tmp_path, lines.append)


def test_a_job_held_after_a_failed_launch_is_cancelled_and_fails_the_launch(tmp_path, monkeypatch):
    """A node's slurmd refused the launch (seen on the local cluster under load: munge
    refused the credential), so Slurm requeued the job held: it would wait forever."""
    cancelled = tmp_path / "scancel.args"
    _fake_slurm(
        tmp_path,
        monkeypatch,
        {
            "sbatch": FAKE_SBATCH,
            "squeue": "#!/bin/bash\necho 'PENDING launch_failed_requeued_held'\n",
            "scancel": f'#!/bin/bash\necho "$@" > {cancelled}\n',
        },
    )
    cfg = _config("paper-8b", Launcher.slurm, workdir=str(tmp_path), poll_seconds=0.01)
    lines: list[str] = []
    with pytest.raises(LaunchError, match="slurm job 4242 is held after its launch failed"):
        run_job(cfg, _job(cfg), tmp_path, lines.append)
    assert "launch: slurm job 4242 pending (launch_failed_requeued_held)" in lines
    assert cancelled.read_text().split() == ["4242"]


def test_a_pending_job_reports_each_new_reason_once(tmp_path, monkeypatch):
    """Waiting for resources, then running, then gone: two pending lines, not one a poll."""
    polls = tmp_path / "polls"
    squeue = f"""#!/bin/bash
n=$(cat {polls} 2>/dev/null || echo 0); echo $((n + 1)) > {polls}
case $n in
  0|1) echo 'PENDING Priority' ;;
  2|3) echo 'PENDING Resources' ;;
  4) echo 'RUNNING None' ;;
  *) echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1 ;;
esac
"""
    _fake_slurm(
        tmp_path,
        monkeypatch,
        {
            "sbatch": FAKE_SBATCH,
            "squeue": squeue,
            "scontrol": FAKE_SCONTROL,
            "sacct": FAKE_SACCT.format(state="COMPLETED", code="0:0"),
        },
    )
    cfg = _config("paper-8b", Launcher.slurm, workdir=str(tmp_path), poll_seconds=0.01)
    lines: list[str] = []
    run_job(cfg, _job(cfg), tmp_path, lines.append)
    assert [line for line in lines if " pending " in line] == [
        "launch: slurm job 4242 pending (Priority)",
        "launch: slurm job 4242 pending (Resources)",
    ]


def test_slurm_launcher_without_sbatch_names_the_missing_command(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no Slurm client installed at all
    cfg = _config("paper-8b", Launcher.slurm, workdir=str(tmp_path))
    with pytest.raises(LaunchError, match="compute.launcher is slurm but sbatch is not on PATH"):
        run_job(cfg, _job(cfg), tmp_path, print)


def test_a_dpo_job_is_planned_with_the_online_settings():
    cfg = _config("paper-70b", Launcher.kubernetes)
    cfg = cfg.model_copy(update={"online": cfg.online.model_copy(update={"zero": ZeroStage.zero2})})
    render_spec(cfg, _job(cfg))  # SFT under ZeRO-3 fits 8 nodes
    dpo = TrainJob("online-policy", "0123456789abcdef", "bolt.train.dpo", (), cfg.name, "online")
    # ZeRO-2 keeps the whole 16-bit 70B on every GPU: the DPO job cannot fit.
    with pytest.raises(PlanError, match=r"online of llama-3.1-70b-instruct .* with zero2"):
        render_spec(cfg, dpo)


# Real output of the local cluster (tests/slurm_cluster.py), as scontrol and jobcomp wrote it.
SCONTROL_FAILED = (
    "JobId=2 JobName=exits-3 UserId=root(0) GroupId=root(0) MCS_label=N/A Priority=1 "
    "Nice=0 Account=(null) QOS=(null) JobState=FAILED Reason=NonZeroExitCode "
    "Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=3:0 "
    "RunTime=00:00:00 TimeLimit=UNLIMITED NodeList=localhost BatchHost=localhost "
    "NumNodes=1 NumCPUs=1 ReqB:S:C:T=0:0:*:* Socks/Node=* TRES=cpu=1,mem=24105M,node=1 "
    "Command=/tmp/job dir/exits-3.sbatch --flag x WorkDir=/work/main "
    "StdOut=/tmp/job dir/exits-3.out Power="
)
SCONTROL_CANCELLED = (
    "JobId=3 JobName=sleeps UserId=root(0) JobState=CANCELLED Reason=None ExitCode=0:15 "
    "RunTime=00:00:01"
)
JOBCOMP_LINE = (
    "JobId=1 UserId=root(0) GroupId=root(0) Name=a.sh JobState=FAILED Partition=debug "
    "TimeLimit=UNLIMITED StartTime=2026-12-01T21:33:25 EndTime=2026-12-01T21:33:25 "
    "NodeList=localhost NodeCnt=1 ProcCnt=1 WorkDir=/work/main ReservationName= "
    "Tres=cpu=1,mem=24105M,node=1,billing=1 Account= QOS= WcKey= Cluster=unknown "
    "SubmitTime=2026-12-01T21:33:22 EligibleTime=2026-12-01T21:33:22 "
    "DerivedExitCode=0:0 ExitCode=3:0 "
)


def test_parse_job_record_on_real_scontrol_and_jobcomp_output():
    from bolt.train.slurm import parse_job_record

    failed = parse_job_record(SCONTROL_FAILED)
    assert (failed["JobState"], failed["ExitCode"], failed["JobId"]) == ("FAILED", "3:0", "2")
    # A value runs to the next " Key=": spaces and '=' inside it stay.
    assert failed["Command"] == "/tmp/job dir/exits-3.sbatch --flag x"
    assert failed["TRES"] == "cpu=1,mem=24105M,node=1"
    assert failed["ReqB:S:C:T"] == "0:0:*:*" and failed["Socks/Node"] == "*"
    assert failed["Power"] == ""
    cancelled = parse_job_record(SCONTROL_CANCELLED)
    assert (cancelled["JobState"], cancelled["ExitCode"]) == ("CANCELLED", "0:15")
    line = parse_job_record(JOBCOMP_LINE)
    assert (line["JobId"], line["JobState"], line["ExitCode"]) == ("1", "FAILED", "3:0")
    assert line["ReservationName"] == "" and line["Tres"] == "cpu=1,mem=24105M,node=1,billing=1"
    assert parse_job_record("") == {}


def test_parse_config_reads_the_jobcomp_location():
    from bolt.train.slurm import parse_config

    text = (
        "Configuration data as of 2026-12-01T21:33:35\n"
        "JobCompHost             = localhost\n"
        "JobCompLoc              = /tmp/bolt-slurm-tutxi36s/jobcomp.txt\n"
        "JobCompType             = jobcomp/filetxt\n"
    )
    config = parse_config(text)
    assert config["JobCompLoc"] == "/tmp/bolt-slurm-tutxi36s/jobcomp.txt"
    assert config["JobCompType"] == "jobcomp/filetxt"


def test_the_job_config_anchors_what_the_worker_folder_anchored(tmp_path, monkeypatch):
    from bolt.config import ModelEntry
    from bolt.train.job import job_config

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BOLT_MODEL_CACHE", "~/models")
    cfg = load_config(REPO / "configs/tiny-cpu.yaml")
    catalog = {**cfg.models.catalog, "local": ModelEntry(path="models/local")}
    cfg = cfg.model_copy(update={"models": cfg.models.model_copy(update={"catalog": catalog})})
    shared = job_config(cfg, shared_filesystem=True)
    assert shared.storage.root == f"file://{tmp_path}/artifacts"
    assert shared.models.catalog["local"].path == str(tmp_path / "models/local")
    assert shared.models.cache_dir == str(Path("~/models").expanduser())
    # A pod (kubernetes) keeps the config's own cache folder; an s3 root is left alone.
    assert job_config(cfg).models.cache_dir == cfg.models.cache_dir
    paper = load_config(REPO / "configs/paper-8b.yaml")
    assert job_config(paper).storage.root == paper.storage.root


PROBE = """import os, sys
print("probe", os.getcwd(), os.environ["HOME"], os.environ["TMPDIR"], os.environ["BOLT_TRAIN_DIR"])
print("args", *sys.argv[1:])
open("left-behind", "w").write("x")
sys.exit(int(os.environ.get("PROBE_EXIT", "0")))
"""


def test_the_local_job_runs_in_its_own_folder_with_a_fresh_home_and_tmpdir(tmp_path, monkeypatch):
    from bolt.train.local import run

    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / "bolt_probe.py").write_text(PROBE)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "mods"))
    cfg = load_config(REPO / "configs/tiny-cpu.yaml")
    job = TrainJob("sft", "0123456789abcdef", "bolt_probe", ("--sft-set", "x"), cfg.name)
    job_dir = tmp_path / "job"
    for launch in (1, 2):
        lines: list[str] = []
        run(cfg, job, job_dir, lines.append)
        probe = next(line for line in lines if line.startswith("probe")).split()
        assert probe[1:] == [str(job_dir / d) for d in ("run", "home", "tmp", "work")]
        assert f"--config {job_dir / 'config.yaml'} --sft-set x" in lines[-1]
        # Each launch starts in an emptied folder: the last one's files are gone.
        assert sorted(p.name for p in (job_dir / "run").iterdir()) == ["left-behind"]
    monkeypatch.setenv("PROBE_EXIT", "3")
    with pytest.raises(LaunchError, match="local training exited with 3"):
        run(cfg, job, job_dir, print)
