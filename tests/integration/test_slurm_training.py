"""The Slurm launcher for real, on the one-node local cluster (tests/slurm_cluster.py):
it submits (sbatch), follows (squeue, the job's output file), cancels (scancel when the
launcher is interrupted) and judges by scontrol, then the jobcomp/filetxt file.

Then the training stages through it: SFT as a Slurm job; an ``scancel`` of the SFT job
mid-run, after which the Prefect task's retry resumes from the last stored checkpoint
(steps counted per launch); and one DPO iteration whose reference pass and DPO both run
as Slurm jobs that get their models by store id only, with every worker-local folder
(job folders, the model cache, the catalog's copy of the base model) wiped before each.

Every job runs in its own folder with a fresh HOME and TMPDIR and says so in its log.
The model is a 2-layer random Llama whose tokenizer has no pad token (as Llama-3.1 and
Mistral-v0.3 ship), so the pad fallback runs through SFT, the reference pass and DPO.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
from slurm_cluster import LocalSlurmCluster, parse_key_values, unavailable_reason

from bolt.config import Launcher, ModelEntry, PipelineConfig, Precision, ZeroStage
from bolt.records import Message, PreferencePair, SftExample
from bolt.stages import Stage
from bolt.store import ArtifactStore, Manifest
from bolt.train.checkpoints import completed_steps
from bolt.train.job import LaunchError, TrainJob
from bolt.train.model_ref import FETCHED, model_id
from bolt.train.progress import parse_progress
from bolt.train.slurm import final_record, job_dir_on_cluster
from bolt.train.slurm import run as slurm_run
from bolt.train.stage import dpo_job, reference_job, sft_job, train_stage
from tests.conftest import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(1200)]

STEPS = 6
TOPICS = ["rain", "bread", "chess", "rivers", "stars", "tea", "bees", "glass"]
SFT_SET = "slurmsftset00001"
PAIRS = "slurmpairs000001"
PROBE = """import os, sys, time
print("probe started", os.getcwd(), os.environ["HOME"], os.environ["TMPDIR"],
      os.environ["BOLT_TRAIN_DIR"], flush=True)
if sys.argv[-1] == "sleep":
    time.sleep(300)
print("probe ends", sys.argv[-1], flush=True)
sys.exit(int(sys.argv[-1]))
"""


@pytest.fixture(scope="module")
def on_cluster(slurm_cluster):
    """The worker's environment for the cluster's clients, and one thread per job."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SLURM_CONF", str(slurm_cluster.conf))
        patch.setenv("OMP_NUM_THREADS", "1")
        patch.setenv("MASTER_PORT", str(free_port()))  # the batch script's rendezvous port
        yield slurm_cluster


@pytest.fixture(scope="module")
def padless_llama(smollm2_path, tmp_path_factory) -> Path:
    """A 2-layer, 64-wide random Llama with SmolLM2's tokenizer minus its pad token."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("padless-llama")
    tokenizer = AutoTokenizer.from_pretrained(smollm2_path)
    tokenizer.pad_token = None
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _config(tiny_config, base_model: Path, root: Path) -> PipelineConfig:
    """The tiny config on the Slurm launcher; the cluster's shared folder is ``root/fs``."""
    training = {
        "max_length": 64,
        "global_batch_size": 2,
        "micro_batch_size": 1,
        "lr": 1e-3,
        "warmup_ratio": 0.0,
        "max_steps": STEPS,
        "save_steps": 1,
        "zero": ZeroStage.zero2,
        "precision": Precision.fp32,
        "gradient_checkpointing": False,
    }
    catalog = {**tiny_config.models.catalog, "padless-llama": ModelEntry(path=str(base_model))}
    (root / "fs").mkdir(parents=True, exist_ok=True)
    compute = {"launcher": Launcher.slurm, "workdir": str(root / "fs"), "poll_seconds": 0.5}
    return tiny_config.model_copy(
        update={
            "storage": tiny_config.storage.model_copy(update={"root": f"file://{root}/store"}),
            "compute": tiny_config.compute.model_copy(update=compute),
            "models": tiny_config.models.model_copy(
                update={"catalog": catalog, "cache_dir": str(root / "worker-models")}
            ),
            "sft": tiny_config.sft.model_copy(update={**training, "base_model": "padless-llama"}),
            "online": tiny_config.online.model_copy(update={**training, "max_steps": 2}),
        }
    )


def _commit(store: ArtifactStore, stage: str, fp: str, records: list) -> Manifest:
    shard = store.write_shard(stage, fp, 0, records)
    return store.commit(
        Manifest(stage=stage, fingerprint=fp, code_version="1", config={}, shards=[shard])
    )


def _sft_examples() -> list[SftExample]:
    return [
        SftExample(
            id=f"e{i}",
            query_id=f"q{i}",
            messages=[
                Message(role="user", content=f"A fact about {topic}?"),
                Message(
                    role="assistant",
                    content=f"<thoughts>\nRecall {topic}.\n</thoughts>\n\n"
                    f"<response>\n{topic.title()} is worth study.\n</response>",
                ),
            ],
        )
        for i, topic in enumerate(TOPICS)
    ]


def _pairs() -> list[PreferencePair]:
    return [
        PreferencePair(
            prompt_id=f"p{i}",
            prompt=[Message(role="user", content=f"One line on {topic}?")],
            chosen=f"<thoughts>\nThink of {topic}.\n</thoughts>\n\n<response>\n{topic} matters.\n</response>",
            rejected=f"{topic} {topic} {topic}",
            chosen_reward=1.0,
            rejected_reward=0.0,
            iteration=1,
        )
        for i, topic in enumerate(TOPICS[:4])
    ]


def _wipe_worker_caches(cfg: PipelineConfig, *more: Path) -> None:
    """Everything of the worker's a job could lean on, but the store: the launcher's local
    job folders, the model cache, and whatever the test names (a catalog model's copy)."""
    for folder in (Path(tempfile.gettempdir()) / "bolt-jobs", Path(cfg.models.cache_dir), *more):
        shutil.rmtree(folder, ignore_errors=True)


def _jobcomp(cluster: LocalSlurmCluster) -> dict[str, dict[str, str]]:
    lines = cluster.jobcomp.read_text().splitlines() if cluster.jobcomp.is_file() else []
    return {(e := parse_key_values(line))["JobId"]: e for line in lines}


def _steps(lines: list[str]) -> list[int]:
    return [r["step"] for r in map(parse_progress, lines) if r]


def _job_ids(lines: list[str]) -> list[str]:
    return [m.group(1) for line in lines if (m := re.match(r"launch: slurm job (\d+) \(", line))]


def _assert_isolated(lines: list[str], label: str, cfg: PipelineConfig, job: TrainJob) -> None:
    folder = job_dir_on_cluster(cfg, job)
    want = f"{label}: job in {folder}/run (HOME {folder}/home, TMPDIR {folder}/tmp)"
    assert want in lines, [line for line in lines if "job in" in line]


# -- the launcher itself, on a probe module (seconds, no training) ------------------------


def _probe_job(tiny_config, tmp_path: Path, mode: str) -> tuple[PipelineConfig, TrainJob]:
    """A job running ``python -m bolt_probe <mode>``, importable from compute.workdir (the
    batch script puts the checkout first on PYTHONPATH)."""
    cfg = _config(tiny_config, tmp_path / "unused", tmp_path)
    (tmp_path / "fs" / "bolt_probe.py").write_text(PROBE)
    name = f"probe-{mode}-{tmp_path.name[-6:]}"
    return cfg, TrainJob("sft", "0123456789abcdef", "bolt_probe", (mode,), name)


def test_a_failing_job_raises_with_its_state_and_exit_code(on_cluster, tiny_config, tmp_path):
    cfg, job = _probe_job(tiny_config, tmp_path, "3")
    lines: list[str] = []
    with pytest.raises(LaunchError) as raised:
        slurm_run(cfg, job, tmp_path, lines.append)
    (job_id,) = _job_ids(lines)
    assert f"slurm job {job_id} ({job.name}) ended FAILED with exit code 3:0" in str(raised.value)
    assert "probe ends 3" in str(raised.value)  # the log's tail travels with the error
    folder = job_dir_on_cluster(cfg, job)
    started = next(line for line in lines if line.startswith("probe started")).split()[2:]
    assert started == [str(folder / d) for d in ("run", "home", "tmp")] + [
        str(folder / "work" / "node-0")
    ]


def test_an_interrupted_launcher_cancels_its_job(on_cluster, tiny_config, tmp_path):
    cfg, job = _probe_job(tiny_config, tmp_path, "sleep")
    lines: list[str] = []

    def interrupt_once_running(line: str) -> None:
        lines.append(line)
        if line.startswith("probe started"):
            raise KeyboardInterrupt  # what a cancelled Prefect task or Ctrl-C raises

    with pytest.raises(KeyboardInterrupt):
        slurm_run(cfg, job, tmp_path, interrupt_once_running)
    (job_id,) = _job_ids(lines)
    record = final_record(job_id, poll_seconds=0.2)
    assert (record["JobState"], record["ExitCode"]) == ("CANCELLED", "0:15")


def test_an_scancel_from_outside_raises_cancelled(on_cluster, tiny_config, tmp_path):
    cfg, job = _probe_job(tiny_config, tmp_path, "sleep")
    lines: list[str] = []

    def scancel_once_running(line: str) -> None:
        lines.append(line)
        if line.startswith("probe started"):
            on_cluster.run("scancel", _job_ids(lines)[0])

    with pytest.raises(LaunchError, match=r"ended CANCELLED with exit code 0:15"):
        slurm_run(cfg, job, tmp_path, scancel_once_running)


def test_the_verdict_comes_from_jobcomp_once_the_controller_forgot(
    tiny_config, tmp_path, monkeypatch
):
    """A cluster of its own whose controller forgets finished jobs after 2 s (MinJobAge)."""
    if reason := unavailable_reason():
        pytest.skip(reason)
    with LocalSlurmCluster(root=tmp_path / "cluster", cpus=2, min_job_age=2) as cluster:
        monkeypatch.setenv("SLURM_CONF", str(cluster.conf))
        script = tmp_path / "exits.sh"
        script.write_text("#!/bin/bash\nexit 3\n")
        job_id = cluster.run(
            "sbatch", "--parsable", f"--output={tmp_path}/exits.out", str(script)
        ).strip()
        deadline = time.monotonic() + 120
        while cluster.run("scontrol", "show", "job", job_id, check=False).strip():
            assert time.monotonic() < deadline, "the controller still remembers the job"
            time.sleep(1)
        done = subprocess.run(
            ["scontrol", "show", "job", job_id],
            env=cluster.env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert "Invalid job id specified" in done.stderr
        record = final_record(job_id, poll_seconds=0.2)
        assert (record["JobId"], record["JobState"], record["ExitCode"]) == (
            job_id,
            "FAILED",
            "3:0",
        )


# -- training through the launcher ------------------------------------------------------------


@pytest.fixture(scope="module")
def sft_run(on_cluster, tiny_config, padless_llama, tmp_path_factory):
    """SFT as a Slurm job from a catalog copy of the base model, worker caches wiped first."""
    root = tmp_path_factory.mktemp("slurm-sft")
    base = root / "catalog-copy"
    shutil.copytree(padless_llama, base)
    cfg = _config(tiny_config, base, root)
    store = ArtifactStore.from_config(cfg.storage)
    _commit(store, Stage.filter, SFT_SET, _sft_examples())
    job = sft_job(cfg, SFT_SET)
    _wipe_worker_caches(cfg)
    lines: list[str] = []
    started = time.monotonic()
    manifest = train_stage(cfg, job, lines.append)
    return cfg, job, manifest, lines, time.monotonic() - started, base


def test_sft_runs_as_a_slurm_job_in_its_own_folder(sft_run, on_cluster):
    cfg, job, manifest, lines, seconds, _ = sft_run
    assert manifest.counts["steps"] == STEPS, manifest.counts
    assert _steps(lines) == list(range(1, STEPS + 1))
    _assert_isolated(lines, "sft", cfg, job)
    (job_id,) = _job_ids(lines)
    assert f"launch: slurm job {job_id} ended COMPLETED with exit code 0:0" in lines
    assert _jobcomp(on_cluster)[job_id]["JobState"] == "COMPLETED"
    print(f"sft as a slurm job: {seconds:.1f} s")


@pytest.fixture
def recorded_progress(monkeypatch):
    """Every line the SFT task's progress sink sees, across the task's attempts."""
    import tasks.sft

    lines: list[str] = []

    class Recording(tasks.sft.TrainingProgress):
        def __call__(self, line: str) -> None:
            lines.append(line)
            super().__call__(line)

    monkeypatch.setattr(tasks.sft, "TrainingProgress", Recording)
    return lines


def _scancel_after(cluster, store, job: TrainJob, checkpoints: int, cancelled: list) -> None:
    """Once ``checkpoints`` checkpoints are in the store, scancel the job (by name)."""
    deadline = time.monotonic() + 600
    while max(completed_steps(store, job.stage, job.fingerprint), default=0) < checkpoints:
        if time.monotonic() > deadline:
            return
        time.sleep(0.2)
    job_id = cluster.run("squeue", "-h", "--name", job.name, "-o", "%i").strip()
    cluster.run("scancel", job_id)
    cancelled.append(job_id)


def test_scancel_mid_run_the_task_retry_resumes_from_the_stored_checkpoint(
    on_cluster, tiny_config, padless_llama, prefect_api, recorded_progress, tmp_path
):
    from prefect import flow

    from tasks.sft import train_sft

    cfg = _config(tiny_config, padless_llama, tmp_path)
    store = ArtifactStore.from_config(cfg.storage)
    sft_set = _commit(store, Stage.filter, SFT_SET, _sft_examples())
    job = sft_job(cfg, SFT_SET)
    cancelled: list[str] = []
    watcher = threading.Thread(
        target=_scancel_after, args=(on_cluster, store, job, 2, cancelled), daemon=True
    )

    @flow(name="slurm-sft-cancelled")
    def sft_with_quick_retries() -> Manifest:
        return train_sft.with_options(retry_delay_seconds=0)(cfg, sft_set)

    watcher.start()
    started = time.monotonic()
    manifest = sft_with_quick_retries()
    seconds = time.monotonic() - started
    watcher.join(timeout=5)

    launches = _job_ids(recorded_progress)
    assert cancelled and launches[0] == cancelled[0] and len(launches) == 2, launches
    states = _jobcomp(on_cluster)
    assert states[launches[0]]["JobState"] == "CANCELLED"
    assert states[launches[1]]["JobState"] == "COMPLETED"
    # Steps per launch: the cancelled one from 1, the retry right after the stored step.
    second = next(i for i, x in enumerate(recorded_progress) if _job_ids([x]) == launches[1:])
    first_steps, second_steps = (
        _steps(recorded_progress[:second]),
        _steps(recorded_progress[second:]),
    )
    resumed = manifest.stats["resumed_from_step"]
    assert resumed >= 2 and first_steps[0] == 1 and first_steps[-1] >= resumed
    assert second_steps == list(range(resumed + 1, STEPS + 1))
    assert [s for s, _ in manifest.stats["loss_curve"]] == second_steps
    assert manifest.counts["steps"] == STEPS
    print(f"sft cancelled at step {first_steps[-1]}, resumed from {resumed}: {seconds:.1f} s")


def test_a_dpo_iteration_runs_reference_and_dpo_as_slurm_jobs_from_the_store_alone(
    sft_run, on_cluster
):
    cfg, _, sft, _, _, catalog_copy = sft_run
    store = ArtifactStore.from_config(cfg.storage)
    pairs = _commit(store, Stage.online_pairs, PAIRS, _pairs())
    sft_id = model_id(sft.stage, sft.fingerprint)
    timings = {}

    # The base model's catalog copy goes too: from here on, models come from the store.
    _wipe_worker_caches(cfg, catalog_copy)
    ref_job = reference_job(cfg, pairs.fingerprint, sft_id)
    ref_lines: list[str] = []
    started = time.monotonic()
    reference = train_stage(cfg, ref_job, ref_lines.append)
    timings["reference"] = time.monotonic() - started
    assert reference.counts == {"pairs": 4}
    assert reference.upstream == {"pairs": PAIRS, "reference_model": sft_id}
    _assert_isolated(ref_lines, "reference", cfg, ref_job)

    _wipe_worker_caches(cfg)
    job = dpo_job(cfg, 1, pairs.fingerprint, reference.fingerprint, sft_id)
    lines: list[str] = []
    started = time.monotonic()
    policy = train_stage(cfg, job, lines.append)
    timings["dpo"] = time.monotonic() - started
    assert policy.counts == {"pairs": 4, "steps": 2}
    assert policy.upstream == {"pairs": PAIRS, "reference": reference.fingerprint}
    assert policy.stats["final_reward_margin"] is not None
    _assert_isolated(lines, "dpo", cfg, job)
    # The job fetched the initial policy from the store into its own node scratch.
    fetched = job_dir_on_cluster(cfg, job) / "work/node-0/models" / sft_id / FETCHED
    assert fetched.read_text().strip() == sft_id
    states = _jobcomp(on_cluster)
    for job_id in _job_ids(ref_lines) + _job_ids(lines):
        assert states[job_id]["JobState"] == "COMPLETED"
    print(f"reference and dpo as slurm jobs: {timings}")
