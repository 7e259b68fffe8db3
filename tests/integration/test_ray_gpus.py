"""Shard tasks under Ray ask for their engine's GPUs (tasks.sharding + tasks.runtime):
on a local Ray cluster declaring two (fake) GPUs, shard tasks of a tensor-parallel-1
engine never run more than two at once, and do run two at once."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from prefect import flow, task

from bolt.config_loader import load_config
from bolt.sharding import ShardPlan, plan_shards
from bolt.stages import Stage
from bolt.store import ShardInfo
from tests.conftest import REPO, TINY_CONFIG

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SHARDS = 6
PARTNER_WAIT_S = 20.0


@task(name="gpu-shard")
def gpu_shard(cfg, fp: str, plan: ShardPlan[int], log_dir: str) -> ShardInfo:
    """A stand-in shard: records when it ran (in its Ray worker) and which GPU it got.

    It holds its GPU until another shard is running too (or PARTNER_WAIT_S pass), so
    two at once shows even when Ray starts its workers seconds apart on a loaded
    machine; it then holds one second more, in which a third would start if the GPUs
    did not stop it."""
    import os

    started = time.time()
    running = Path(log_dir, f"running-{plan.index}")
    running.touch()
    while len(list(Path(log_dir).glob("running-*"))) < 2 and time.time() - started < PARTNER_WAIT_S:
        time.sleep(0.1)
    time.sleep(1.0)
    record = {"start": started, "end": time.time(), "gpus": os.environ.get("CUDA_VISIBLE_DEVICES")}
    running.unlink()
    Path(log_dir, f"{plan.index}.json").write_text(json.dumps(record))
    return ShardInfo(
        index=plan.index, name=f"part-{plan.index:05d}", records=1, sha256="-", bytes=0
    )


def _most_at_once(spans: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


def test_gpu_shard_tasks_never_outnumber_the_gpus(prefect_api, tmp_path):
    from prefect_ray import RayTaskRunner

    from tasks.sharding import shard_tasks

    cfg = load_config(
        TINY_CONFIG,
        [
            f"storage.root=file://{tmp_path}/art",
            "compute.device=cuda",
            "compute.task_runner=ray",
            "compute.gpus_per_node=2",
            "engine.tensor_parallel_size=1",
        ],
    )
    runner = RayTaskRunner(
        init_kwargs={
            "num_cpus": 4,  # CPUs would allow four at once: the GPUs must be what limits
            "num_gpus": 2,
            "runtime_env": {"env_vars": {"PYTHONPATH": str(REPO)}},
        }
    )

    @flow(task_runner=runner)
    def shards() -> list[ShardInfo]:
        run = shard_tasks(gpu_shard, cfg, Stage.bootstrap, str(tmp_path))
        return run("fp", plan_shards(list(range(SHARDS)), 1), lambda plan: None)

    receipts = shards()
    assert [r.index for r in receipts] == list(range(SHARDS))
    records = [json.loads((tmp_path / f"{i}.json").read_text()) for i in range(SHARDS)]
    spans = [(r["start"], r["end"]) for r in records]
    print("spans:", [(round(s - spans[0][0], 2), round(e - spans[0][0], 2)) for s, e in spans])
    assert _most_at_once(spans) == 2
    assert {r["gpus"] for r in records} <= {"0", "1"}  # each held one of the two GPUs
