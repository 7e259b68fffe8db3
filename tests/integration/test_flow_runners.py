"""A nested stage flow runs its shard tasks on the run's task runner, not on its own
one-at-a-time default: `bolt stage eval` with no committed SFT model evaluates the base
model through the nested `eval` flow, and with `compute.max_workers=2` its answer shards
overlap (`bolt plan` counts that many engines at work). Before `with_task_runner`, the
pipeline's online and eval flows, and the flows they nest, ran every shard in turn."""

from __future__ import annotations

import asyncio

import pytest

from bolt.config_loader import load_config
from tests.conftest import TINY_CONFIG
from tests.reliability.teacher_server import TeacherServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NAME = "flow-runners-test"
SHARDS = 4
DELAY_S = 1.5  # each answer takes this long at the server, so overlap shows in the times


def _answer_spans(tag: str) -> list[tuple[float, float]]:
    """Start and end of this test's answer-shard task runs (the server is shared)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterName, TaskRunFilterTags

    async def read():
        async with get_client() as client:
            return await client.read_task_runs(
                task_run_filter=TaskRunFilter(
                    name=TaskRunFilterName(like_="eval-answers-"),
                    tags=TaskRunFilterTags(all_=[tag]),
                )
            )

    runs = asyncio.run(read())
    return [(r.start_time.timestamp(), r.end_time.timestamp()) for r in runs if r.start_time]


def _most_at_once(spans: list[tuple[float, float]]) -> int:
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


def test_a_nested_eval_flow_runs_its_shards_on_the_runs_runner(prefect_api, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "not-checked")  # the stand-in server ignores it
    from flows.pipeline import STAGE_FLOWS

    with TeacherServer(delay_s=DELAY_S) as server:
        cfg = load_config(
            TINY_CONFIG,
            [
                f"name={NAME}",
                f"storage.root=file://{tmp_path}/art",
                "compute.max_workers=2",
                "eval.benchmarks=[math500]",
                f"eval.max_items={SHARDS}",
                "eval.shard_size=1",
                "eval.baseline_model=null",
                "eval.engine.kind=openai",
                f"eval.engine.base_url={server.base_url}",
            ],
        )
        summary = STAGE_FLOWS["eval"](cfg)
        assert server.requests == SHARDS

    assert list(summary) == ["eval"]
    spans = _answer_spans(f"config:{NAME}")
    assert len(spans) == SHARDS
    assert _most_at_once(spans) == 2
