"""Prefect orchestration for real: a Prefect API server (SQLite) and moto S3.

The runs here use no engine at all (curation with the
difficulty filter off and topics given by the source), so they test the orchestration,
not generation; the vLLM path is the e2e test's.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid

import boto3
import pytest
import yaml

from bolt.config_loader import load_config
from tests.conftest import REPO, TINY_CONFIG

pytestmark = [pytest.mark.integration, pytest.mark.slow]

POOL_TYPES = {"bolt-process": "process", "bolt-k8s-gpu": "kubernetes", "bolt-docker": "docker"}
NO_ENGINE = ["data.difficulty_filter=false", "data.max_queries=6", "data.topic_cap=2"]


def _task_states(name_like: str, tag: str) -> list[str]:
    """States of this test's task runs (the Prefect server is shared by the session)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterName, TaskRunFilterTags

    async def read():
        async with get_client() as client:
            runs = await client.read_task_runs(
                task_run_filter=TaskRunFilter(
                    name=TaskRunFilterName(like_=name_like), tags=TaskRunFilterTags(all_=[tag])
                )
            )
            return [r.state.name for r in runs]

    return asyncio.run(read())


def test_stage_results_live_in_s3_and_are_cached_by_fingerprint(
    prefect_api, s3_endpoint, s3_bucket
):
    from flows.pipeline import STAGE_FLOWS

    cfg = load_config(
        TINY_CONFIG,
        [
            f"storage.root=s3://{s3_bucket}/run",
            f"storage.s3.endpoint_url={s3_endpoint}",
            *NO_ENGINE,
        ],
    )
    from prefect import tags

    run_tag = f"test-{uuid.uuid4().hex[:8]}"
    with tags(run_tag):
        first = STAGE_FLOWS["data"](cfg)["data"]
    keys = {
        o["Key"]
        for o in boto3.client("s3", endpoint_url=s3_endpoint)
        .list_objects_v2(Bucket=s3_bucket)
        .get("Contents", [])
    }
    assert f"run/data/{first['fingerprint']}/manifest.json" in keys
    # Prefect's result, beside the artifacts, keyed by fingerprint (and storage root)
    (result_key,) = [
        k for k in keys if k.startswith(f"run/prefect-results/data-{first['fingerprint']}-")
    ]
    body = boto3.client("s3", endpoint_url=s3_endpoint).get_object(Bucket=s3_bucket, Key=result_key)
    record = json.loads(body["Body"].read())  # JSON, never a pickle
    assert first["fingerprint"] in json.dumps(record)

    with tags(run_tag):
        second = STAGE_FLOWS["data"](cfg)["data"]
    assert second == first
    assert sorted(_task_states("curate-queries%", run_tag)) == ["Cached", "Completed"]

    # The stage's folder is deleted to redo it, and Prefect's records outlive it: the rerun
    # makes the stage again (a record of a deleted manifest is stale), and the next is Cached.
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    stage_dir = f"run/data/{first['fingerprint']}/"
    for key in sorted(k for k in keys if k.startswith(stage_dir)):
        s3.delete_object(Bucket=s3_bucket, Key=key)
    with tags(run_tag):
        third = STAGE_FLOWS["data"](cfg)["data"]
    assert third["fingerprint"] == first["fingerprint"] and third["records"] == first["records"]
    s3.head_object(Bucket=s3_bucket, Key=f"{stage_dir}manifest.json")
    with tags(run_tag):
        assert STAGE_FLOWS["data"](cfg)["data"] == third
    states = _task_states("curate-queries%", run_tag)
    assert sorted(states) == ["Cached", "Cached", "Completed", "Completed"]


def test_prefect_deploy_all_creates_every_deployment_with_its_schedule(prefect_api):
    declared = yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "BOLT_REPO_DIR": str(REPO)}
    prefect = [sys.executable, "-m", "prefect"]
    for pool, kind in POOL_TYPES.items():
        subprocess.run(
            [*prefect, "work-pool", "create", pool, "--type", kind, "--overwrite"],
            env=env,
            cwd=REPO,
            check=True,
            capture_output=True,
        )
    done = subprocess.run(
        [*prefect, "--no-prompt", "deploy", "--all"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    from prefect.client.orchestration import get_client

    async def read():
        async with get_client() as client:
            return await client.read_deployments()

    deployments = {d.name: d for d in asyncio.run(read())}
    assert set(deployments) >= {d["name"] for d in declared}
    for spec in declared:
        created = deployments[spec["name"]]
        schedules = spec.get("schedules", [])
        assert [s.schedule.cron for s in created.schedules] == [s["cron"] for s in schedules]
        assert [s.active for s in created.schedules] == [s["active"] for s in schedules]
        assert created.work_pool_name == spec["work_pool"]["name"]
        config = created.parameters["config"]
        assert (REPO / "configs" / f"{config}.yaml").is_file() or config.startswith("configs/")
    assert deployments["nightly-eval"].parameters["stage"] == "eval"
    image = deployments["paper-8b"].job_variables["image"]
    assert image.startswith("ghcr.io/bolt-pipeline/bolt-gpu:")  # the build step's output
