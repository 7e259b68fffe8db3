"""The pipeline as Prefect runs it in production: served as a deployment, started with
``run_deployment``, made to fail in a middle stage, then rerun the way the UI's Retry
does it (the same flow run set back to Scheduled). Finished stages come back Cached
from the S3 result storage, and the teacher sees no request on the rerun.

The teacher is the deterministic OpenAI-compatible server of tests/reliability (the
vLLM path is the e2e test's); the reward is a small random sequence classifier whose
weights are missing on the first run, as when an operator forgot to sync them.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
import pytest
from prefect.exceptions import ObjectNotFound

from tests.conftest import REPO, TINY_CONFIG
from tests.random_reward_model import save_random_reward_model
from tests.reliability.teacher_server import TeacherServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DEPLOYMENT = "bolt-pipeline-from-config/deployment-test"
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def _overrides(name: str, root: str, endpoint: str, teacher_url: str, rm_dir) -> list[str]:
    return [
        f"name={name}",
        f"storage.root={root}",
        f"storage.s3.endpoint_url={endpoint}",
        "data.difficulty_filter=false",  # topics come from the source: no labeller needed
        "data.max_queries=4",
        "data.topic_cap=2",
        "engine.kind=openai",
        f"engine.base_url={teacher_url}",
        "bootstrap.sampling.n=2",
        "bootstrap.shard_size=2",
        f"models.catalog.rm.path={rm_dir}",
        "filter.rewards=[{kind: sequence_classifier, name: rm, model: rm}]",
    ]


def _client_call(fn):
    from prefect.client.orchestration import get_client

    async def call():
        async with get_client() as client:
            return await fn(client)

    return asyncio.run(call())


def _wait_for_deployment(server: subprocess.Popen, log, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, log.read_text()[-3000:]
        try:
            _client_call(lambda c: c.read_deployment_by_name(DEPLOYMENT))
            return
        except ObjectNotFound:  # not registered yet
            time.sleep(1)
    raise AssertionError(f"{DEPLOYMENT} was not served within {timeout} s")


def _wait_final(flow_run_id, log, timeout: float = 600):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = _client_call(lambda c: c.read_flow_run(flow_run_id))
        if run.state and run.state.type.value in FINAL:
            return run
        time.sleep(2)
    raise AssertionError(
        f"flow run {flow_run_id} did not finish within {timeout} s: {log.read_text()[-3000:]}"
    )


def _wait_for_line(log, text: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in log.read_text():
            return
        time.sleep(0.5)
    pytest.fail(f"the runner never logged {text!r} within {timeout} s:\n{log.read_text()[-3000:]}")


def _task_states(name_like: str, tag: str) -> list[str]:
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterName, TaskRunFilterTags

    runs = _client_call(
        lambda c: c.read_task_runs(
            task_run_filter=TaskRunFilter(
                name=TaskRunFilterName(like_=name_like), tags=TaskRunFilterTags(all_=[tag])
            )
        )
    )
    return sorted(r.state.name for r in runs)


def test_served_pipeline_fails_mid_stage_and_a_retry_resumes_from_cache(
    prefect_api, s3_endpoint, s3_bucket, smollm2_path, tmp_path
):
    from prefect.deployments import run_deployment
    from prefect.states import Scheduled

    name = f"deploy-{uuid.uuid4().hex[:8]}"
    # The reward model's folder has its config but not yet its weights (a sync that did
    # not finish): preflight sees a model folder, the filter stage fails loading it.
    rm_dir = tmp_path / "rm"
    rm_dir.mkdir()
    (rm_dir / "config.json").write_text(json.dumps({"model_type": "llama", "num_labels": 1}))
    for tokenizer_file in Path(smollm2_path).glob("*token*"):
        shutil.copy(tokenizer_file, rm_dir / tokenizer_file.name)
    # The stand-in teacher, like a self-hosted vLLM server started without --api-key,
    # accepts any key; preflight rightly wants the variable the config names to be set.
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "OPENAI_API_KEY": "not-checked"}
    serve = "from flows.pipeline import pipeline_from_config as f; f.serve(name='deployment-test')"
    # The runner's log goes to a file: an unread pipe fills up and stalls the runner.
    runner_log = tmp_path / "runner.log"
    server = subprocess.Popen(
        [sys.executable, "-c", serve],
        cwd=REPO,
        env=env,
        stdout=runner_log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        with TeacherServer() as teacher:
            _wait_for_deployment(server, runner_log)
            overrides = _overrides(
                name, f"s3://{s3_bucket}/run", s3_endpoint, teacher.base_url, rm_dir
            )
            # Up to the SFT set: training and eval have their own flow tests.
            parameters = {"config": str(TINY_CONFIG), "overrides": overrides, "until": "filter"}
            run = run_deployment(DEPLOYMENT, parameters=parameters, timeout=600)
            assert run.state.type.value == "FAILED", (run.state, runner_log.read_text()[-3000:])
            assert str(rm_dir) in (run.state.message or ""), run.state.message
            first_requests = teacher.requests
            assert first_requests >= 4  # every query reached the teacher
            assert _task_states("bootstrap-shard%", f"config:{name}") == ["Completed"] * 2

            # The operator syncs the weights and presses Retry on the same flow run, once
            # the runner is done with the failed process: when that process exits (status
            # 1), the runner proposes Crashed, which a run already set back to Scheduled
            # accepts, so a Retry pressed earlier is lost to Prefect's race, not ours.
            _wait_for_line(runner_log, "Process exited with status code")
            save_random_reward_model(smollm2_path, rm_dir)
            _client_call(lambda c: c.set_flow_run_state(run.id, Scheduled(), force=True))
            rerun = _wait_final(run.id, runner_log)
            if rerun.state.type.value != "COMPLETED":
                # pytest.fail keeps the whole log tail (an assertion's repr is cut short).
                pytest.fail(f"rerun ended {rerun.state!r}:\n{runner_log.read_text()[-4000:]}")
            assert teacher.requests == first_requests  # no engine call on the rerun
    finally:
        os.killpg(server.pid, 9)
        server.wait()

    tag = f"config:{name}"
    assert _task_states("curate-queries%", tag) == ["Cached", "Completed"]
    # The committed bootstrap stage is read from the store: its shards never rerun.
    assert _task_states("bootstrap-shard%", tag) == ["Completed"] * 2
    assert _task_states("select-sft-set%", tag) == ["Completed"]

    # Results and artifacts live in S3; the stage summaries are visible through the API.
    keys = {
        o["Key"]
        for o in boto3.client("s3", endpoint_url=s3_endpoint)
        .list_objects_v2(Bucket=s3_bucket)
        .get("Contents", [])
    }
    for stage in ("data", "bootstrap", "score", "filter"):
        assert any(k.startswith(f"run/{stage}/") and k.endswith("/manifest.json") for k in keys)
        assert any(k.startswith(f"run/prefect-results/{stage}-") for k in keys), stage
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    artifacts = _client_call(
        lambda c: c.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(like_=name))
        )
    )
    assert {f"{name}-{s}-summary" for s in ("data", "bootstrap", "filter")} <= {
        a.key for a in artifacts
    }
