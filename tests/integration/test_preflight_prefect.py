"""Preflight against real servers on loopback: the Prefect API (work pools, Secret
blocks), moto S3 (data and model objects) and the local Slurm cluster (partitions)."""

from __future__ import annotations

import socket
import time
import uuid
from pathlib import Path

import pytest

from bolt.config import BenchmarkName as Benchmark
from bolt.config import ModelEntry
from bolt.config_loader import load_config
from bolt.preflight import Problem

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PAPER = REPO / "configs" / "paper-8b.yaml"
TINY = REPO / "configs" / "tiny-cpu.yaml"
BOUND_S = 10.0  # the acceptance bound


@pytest.fixture(autouse=True)
def _at_repo(monkeypatch):
    monkeypatch.chdir(REPO)


def timed_prefect_preflight(cfg) -> tuple[dict[str, str], float]:
    from tasks.preflight import run_preflight

    start = time.monotonic()
    problems = run_preflight(cfg)
    elapsed = time.monotonic() - start
    print(f"preflight: {len(problems)} problem(s) in {elapsed:.2f} s")
    return {p.key: p.message for p in problems}, elapsed


@pytest.fixture(scope="module")
def work_pool(prefect_api) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    name = f"bolt-preflight-{uuid.uuid4().hex[:8]}"
    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name=name, type="process"))
    return name


def test_paper_config_with_a_missing_work_pool_fails_naming_it(work_pool):
    problems, elapsed = timed_prefect_preflight(
        load_config(PAPER, ["compute.work_pool=bolt-k8s-gpu-missing"])
    )
    assert "no work pool 'bolt-k8s-gpu-missing'" in problems["compute.work_pool"]
    assert work_pool in problems["compute.work_pool"]  # the known pools are listed
    assert elapsed < BOUND_S


def test_existing_work_pool_passes(work_pool, smollm2_path):
    problems, _ = timed_prefect_preflight(load_config(TINY, [f"compute.work_pool={work_pool}"]))
    assert problems == {}


def test_unset_work_pool_is_not_checked(prefect_api, smollm2_path):
    assert timed_prefect_preflight(load_config(TINY))[0] == {}


def test_unreachable_prefect_server_is_bounded(prefect_api):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/api"
        with temporary_settings(updates={PREFECT_API_URL: url}):
            problems, elapsed = timed_prefect_preflight(
                load_config(TINY, ["compute.work_pool=bolt-process"])
            )
    assert "does not answer" in problems["compute.work_pool"]
    assert elapsed < BOUND_S


def test_judge_secret_block_must_exist(prefect_api, monkeypatch):
    from prefect.blocks.system import Secret

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    name = f"judge-key-{uuid.uuid4().hex[:8]}"
    Secret(value="sk-test").save(name)
    ok, _ = timed_prefect_preflight(load_config(PAPER, [f"eval.judge.api_key_secret_block={name}"]))
    assert "eval.judge.api_key_secret_block" not in ok
    assert "eval.judge.engine.api_key_env" not in ok  # the block supplies the key
    bad, _ = timed_prefect_preflight(load_config(PAPER, ["eval.judge.api_key_secret_block=nope"]))
    assert "no Secret block 'nope'" in bad["eval.judge.api_key_secret_block"]


def test_s3_sources_and_models_on_moto(s3_endpoint, s3_bucket):
    """Objects that exist pass; missing ones are named by their key, within the bound."""
    import boto3

    from bolt.preflight import preflight

    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    s3.put_object(Bucket=s3_bucket, Key="sources/sharegpt.jsonl", Body=b'{"text": "hi"}\n')
    s3.put_object(Bucket=s3_bucket, Key="models/llama-8b/config.json", Body=b"{}")
    cfg = load_config(
        PAPER,
        [
            f"storage.root=s3://{s3_bucket}/paper-8b",
            f"storage.s3.endpoint_url={s3_endpoint}",
            f"data.sources.0.uri=s3://{s3_bucket}/sources/sharegpt.jsonl",
            f"data.sources.1.uri=s3://{s3_bucket}/sources/missing.jsonl",
        ],
    )
    catalog = cfg.models.catalog
    catalog["llama-3.1-8b-instruct"] = ModelEntry(s3_uri=f"s3://{s3_bucket}/models/llama-8b/")
    catalog["armorm-llama3-8b"] = ModelEntry(s3_uri=f"s3://{s3_bucket}/models/armorm/")
    start = time.monotonic()
    problems: list[Problem] = preflight(cfg)
    elapsed = time.monotonic() - start
    print(f"preflight on moto: {len(problems)} problem(s) in {elapsed:.2f} s")
    by_key = {p.key: p.message for p in problems}
    assert "data.sources[0].uri" not in by_key
    assert "storage.root" not in by_key
    assert "models.catalog.llama-3.1-8b-instruct.s3_uri" not in by_key
    assert "does not exist" in by_key["data.sources[1].uri"]
    assert "bolt-data" in by_key["data.sources[2].uri"]  # the paper's own bucket: not here
    assert "not a model" in by_key["models.catalog.armorm-llama3-8b.s3_uri"]
    assert elapsed < BOUND_S


def test_slurm_partition_on_the_real_cluster(slurm_cluster, monkeypatch, smollm2_path):
    from bolt.preflight import preflight

    monkeypatch.setenv("SLURM_CONF", str(slurm_cluster.conf))
    ok = load_config(
        TINY, ["compute.launcher=slurm", f"compute.slurm_partition={slurm_cluster.partition}"]
    )
    assert preflight(ok) == []
    bad = load_config(TINY, ["compute.launcher=slurm", "compute.slurm_partition=gpu-h100"])
    problems = preflight(bad)
    assert [p.key for p in problems] == ["compute.slurm_partition"]
    assert slurm_cluster.partition in problems[0].message


def test_preflight_task_fails_a_flow_before_any_stage(prefect_api):
    """What the pipeline flow runs first: the task raises PreflightError naming the key."""
    from prefect import flow

    from bolt.preflight import PreflightError
    from tasks.preflight import preflight_task

    stages_started = []

    @flow(name="preflight-probe")
    def probe(cfg) -> None:
        preflight_task(cfg)
        stages_started.append("data")

    cfg = load_config(PAPER, ["compute.work_pool=no-such-pool"])
    cfg.eval.data.pop(Benchmark.arena_hard)  # a dataset left unset
    start = time.monotonic()
    with pytest.raises(PreflightError) as caught:
        probe(cfg)
    print(f"flow failed in preflight after {time.monotonic() - start:.2f} s")
    assert "compute.work_pool" in str(caught.value)
    assert "eval.data.arena_hard" in str(caught.value)
    assert stages_started == []
