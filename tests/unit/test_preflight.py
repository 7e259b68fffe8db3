"""Preflight on hand-built configs: each problem names its config key, within seconds."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bolt.config import ModelEntry
from bolt.config_loader import load_config
from bolt.preflight import Check, PreflightError, Problem, preflight, require
from bolt.preflight import infra as preflight_infra
from bolt_cli.main import app

REPO = Path(__file__).resolve().parents[2]
PAPER = REPO / "configs" / "paper-8b.yaml"
TINY = REPO / "configs" / "tiny-cpu.yaml"
BOUND_S = 10.0  # the acceptance bound
LLAMA_8B = "models.catalog.llama-3.1-8b-instruct"


@pytest.fixture(autouse=True)
def _at_repo(monkeypatch):
    """Relative config paths start at the working directory, as in a run."""
    monkeypatch.chdir(REPO)


def timed(cfg, **kwargs) -> tuple[list[Problem], float]:
    start = time.monotonic()
    problems = preflight(cfg, **kwargs)
    elapsed = time.monotonic() - start
    print(f"preflight: {len(problems)} problem(s) in {elapsed:.2f} s")
    return problems, elapsed


def keys(problems: list[Problem]) -> set[str]:
    return {p.key for p in problems}


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers (a hung endpoint)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield server.getsockname()[1]


def test_paper_missing_model_path_names_the_key(tmp_path):
    missing = tmp_path / "no-such-model"
    cfg = load_config(PAPER)
    # A catalog name with dots cannot be a dotted override; set the entry itself.
    cfg.models.catalog["llama-3.1-8b-instruct"] = ModelEntry(path=str(missing), params_b=8.03)
    problems, elapsed = timed(cfg)
    by_key = {p.key: p.message for p in problems}
    assert f"{LLAMA_8B}.path" in by_key
    assert str(missing) in by_key[f"{LLAMA_8B}.path"]
    assert "sft.base_model" in by_key[f"{LLAMA_8B}.path"]
    assert elapsed < BOUND_S


def test_model_folder_without_config_json(tmp_path):
    cfg = load_config(TINY)
    cfg.models.catalog["smollm2-135m-instruct"] = ModelEntry(path=str(tmp_path))
    problems, _ = timed(cfg)
    assert [p.key for p in problems] == ["models.catalog.smollm2-135m-instruct.path"]
    assert "config.json" in problems[0].message


def _paper_without_eval_data():
    cfg = load_config(PAPER)  # sets every benchmark's eval.data; here none is set
    cfg.eval.data.clear()
    return cfg


def test_paper_unset_dataset_names_the_key():
    problems, elapsed = timed(_paper_without_eval_data())
    # MT-Bench reads its packaged questions; the other four need eval.data.
    assert {
        "eval.data.arena_hard",
        "eval.data.wildbench",
        "eval.data.zebralogic",
        "eval.data.math500",
    } <= keys(problems)
    assert "eval.data.mt_bench" not in keys(problems)
    assert elapsed < BOUND_S


def test_official_files_beside_the_items_are_checked():
    """Arena-Hard's leaderboard pool and WildBench's references are read after the first
    DPO iteration; a missing one fails before the first stage, naming its key."""
    cfg = load_config(
        TINY,
        [
            "eval.benchmarks=[arena_hard, wildbench]",
            "eval.arena_hard.leaderboard_judgments=[data/evals/no-such-judgments]",
            "eval.wildbench.references.gpt-4-turbo-2024-04-09=data/evals/no-such.jsonl",
        ],
    )
    problems, _ = timed(cfg)
    assert keys(problems) == {
        "eval.arena_hard.leaderboard_judgments[0]",
        "eval.wildbench.references.gpt-4-turbo-2024-04-09",
    }
    assert "eval.arena_hard.baseline_answers" not in keys(problems)  # shipped


def test_tiny_unset_benchmark_and_missing_source():
    cfg = load_config(
        TINY,
        [
            "data.sources.0.uri=data/queries/no-such.jsonl",
            "eval.benchmarks=[mt_bench, math500, wildbench]",
            "eval.data.wildbench=data/evals/no-such.jsonl",
        ],
    )
    del cfg.eval.data["math500"]
    problems, _ = timed(cfg)
    assert keys(problems) == {"data.sources[0].uri", "eval.data.math500", "eval.data.wildbench"}
    assert "no-such.jsonl" in {p.key: p.message for p in problems}["data.sources[0].uri"]


def test_online_prompt_sources_checked_only_when_online_runs():
    bad = ["online.prompt_sources.0.uri=data/queries/missing.jsonl"]
    assert keys(timed(load_config(TINY, bad))[0]) == {"online.prompt_sources[0].uri"}
    assert timed(load_config(TINY, [*bad, "online.iterations=0"]))[0] == []


def test_hub_model_offline_and_not_cached(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    problems, _ = timed(load_config(PAPER))
    messages = {p.key: p.message for p in problems}
    assert "HF_HUB_OFFLINE" in messages[f"{LLAMA_8B}.hf_id"]
    assert "models.catalog.armorm-llama3-8b.hf_id" in messages


def test_served_teacher_needs_no_local_weights(silent_port, monkeypatch):
    """A teacher asked through an OpenAI-compatible server is not looked for locally;
    its engine's key and URL are checked instead."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("TEACHER_KEY", raising=False)
    url = f"http://127.0.0.1:{silent_port}/v1"
    cfg = load_config(
        PAPER,
        [
            f"bootstrap.engine={{kind: openai, base_url: '{url}', api_key_env: TEACHER_KEY}}",
            "data.engine={kind: openai}",
        ],
    )
    problems = keys(timed(cfg)[0])
    assert "models.catalog.llama-3.1-70b-instruct.hf_id" not in problems
    assert "bootstrap.engine.api_key_env" in problems
    assert "bootstrap.engine.base_url" not in problems  # the port answers TCP
    assert "data.engine.base_url" in problems  # unset
    monkeypatch.setenv("TEACHER_KEY", "sk-test")
    assert "bootstrap.engine.api_key_env" not in keys(timed(cfg)[0])


def test_api_judge_key_from_secret_block_is_left_to_prefect(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert "eval.judge.engine.api_key_env" in keys(timed(load_config(PAPER))[0])
    cfg = load_config(PAPER, ["eval.judge.api_key_secret_block=openai-key"])
    assert "eval.judge.engine.api_key_env" not in keys(timed(cfg)[0])


def test_hung_s3_endpoint_fails_within_bound(silent_port):
    """Every s3:// URI of the paper config on an endpoint that never answers."""
    cfg = load_config(PAPER, [f"storage.s3.endpoint_url=http://127.0.0.1:{silent_port}"])
    problems, elapsed = timed(cfg)
    by_key = {p.key: p.message for p in problems}
    for key in ("storage.root", "data.sources[0].uri", "online.prompt_sources[0].uri"):
        assert "did not answer" in by_key[key], by_key
    assert elapsed < BOUND_S


def test_no_aws_credentials(monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    problems, _ = timed(load_config(PAPER))
    assert "no AWS credentials" in {p.key: p.message for p in problems}["storage.root"]


def test_kubernetes_launcher_needs_its_client():
    problems = keys(timed(load_config(PAPER))[0])
    if __import__("importlib").util.find_spec("kubernetes") is None:
        assert "compute.launcher" in problems


def _fake_tools(folder: Path, sinfo: str) -> str:
    folder.mkdir()
    for tool, body in {"sbatch": "exit 0", "squeue": "exit 0", "sinfo": sinfo}.items():
        path = folder / tool
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)
    return f"{folder}{os.pathsep}/usr/bin{os.pathsep}/bin"


def test_slurm_tools_missing(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    problems = timed(load_config(TINY, ["compute.launcher=slurm"]))[0]
    assert keys(problems) == {"compute.launcher"}
    assert "sbatch" in problems[0].message


def test_slurm_partition_must_exist(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", _fake_tools(tmp_path / "bin", "echo 'debug*'"))
    ok = load_config(TINY, ["compute.launcher=slurm", "compute.slurm_partition=debug"])
    assert timed(ok)[0] == []
    bad = load_config(TINY, ["compute.launcher=slurm", "compute.slurm_partition=gpu"])
    problems = timed(bad)[0]
    assert keys(problems) == {"compute.slurm_partition"}
    assert "debug" in problems[0].message


def test_hung_sinfo_is_bounded(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", _fake_tools(tmp_path / "bin", "exec sleep 60"))
    monkeypatch.setattr(preflight_infra, "PROBE_TIMEOUT_S", 1.0)
    problems, elapsed = timed(load_config(TINY, ["compute.launcher=slurm"]))
    assert keys(problems) == {"compute.launcher"}
    assert "did not answer" in problems[0].message
    assert elapsed < BOUND_S


def test_memory_plan_that_cannot_fit_names_the_memory_key():
    cfg = load_config(PAPER, ["sft.micro_batch_size=16"])  # 16 x 16k tokens per GPU
    problems = [p for p in timed(cfg)[0] if p.key == "compute.gpu_type"]
    assert problems and "GiB per GPU" in problems[0].message
    unknown = load_config(PAPER, ["compute.gpu_type=H100"])
    assert "compute.gpu_type" in keys(timed(unknown)[0])
    assert "compute.gpu_type" not in keys(timed(load_config(PAPER))[0])


def test_batch_that_does_not_divide_the_world_names_its_section():
    cfg = load_config(PAPER, ["online.global_batch_size=100"])
    assert "online.global_batch_size" in keys(timed(cfg)[0])


def test_unwritable_local_storage(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    cfg = load_config(TINY, [f"storage.root=file://{locked}/artifacts"])
    if os.access(locked, os.W_OK):  # root writes anywhere
        pytest.skip("running as root: every folder is writable")
    assert keys(timed(cfg)[0]) == {"storage.root"}


def test_a_hung_check_is_a_problem_at_the_deadline(tiny_config):
    hang = Check("hang", "compute.work_pool", lambda ctx: time.sleep(60) or [])
    problems, elapsed = timed(tiny_config, checks=[hang], deadline_s=1.0)
    assert [p.key for p in problems] == ["compute.work_pool"]
    assert elapsed < 3


def test_a_crashing_check_is_a_problem(tiny_config):
    def broken(ctx):
        raise RuntimeError("boom")

    problems, _ = timed(tiny_config, checks=[Check("broken", "models.catalog", broken)])
    assert problems == [Problem("models.catalog", "broken check failed: RuntimeError: boom")]


def test_require_lists_every_problem():
    with pytest.raises(PreflightError) as caught:
        require(_paper_without_eval_data())
    assert "eval.data.arena_hard" in str(caught.value)
    assert len(caught.value.problems) >= 4


def test_tiny_cpu_passes_once_the_model_is_prepared(smollm2_path):
    problems, elapsed = timed(load_config(TINY))
    assert problems == []
    assert elapsed < BOUND_S


def test_cli_preflight(smollm2_path):
    runner = CliRunner()
    ok = runner.invoke(app, ["preflight", str(TINY)])
    assert ok.exit_code == 0, ok.output
    assert "preflight passed" in ok.output
    missing = runner.invoke(app, ["preflight", str(TINY), "data.sources.0.uri=nowhere.jsonl"])
    assert missing.exit_code == 1
    assert "data.sources[0].uri" in missing.output
