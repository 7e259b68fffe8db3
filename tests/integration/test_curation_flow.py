"""The curation stage's Prefect path with synthetic sources (`bolt stage data` on
tiny-curation-methods.yaml, SmolLM2 on one vLLM engine that the flow starts, the
session's Prefect server): the SkillMix skills list is one `curation-skills` task, each
generation shard one `curation-generation-shard` task with a receipt in the store, then
the labels shards and the commit; a rerun is one cached `curate-queries` and generates
nothing.

test_curation_methods.py runs the same stage through `run_curation` in one process; this
is what `tasks.curation.curate` adds: the shards as task runs, their names and states."""

from __future__ import annotations

import asyncio

import pytest

from bolt.config_loader import load_config
from bolt.curation.stage import curation_fingerprint
from bolt.records import Query
from bolt.stages import Stage
from bolt.store import ArtifactStore
from tests.conftest import REPO

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NAME = "curation-flow-test"


def _task_runs(tag: str) -> list:
    """This test's task runs once every one of them has a final state (the server records
    them from events, a moment after the flow returns)."""
    import time

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterTags

    async def read():
        async with get_client() as client:
            return await client.read_task_runs(
                task_run_filter=TaskRunFilter(tags=TaskRunFilterTags(all_=[tag]))
            )

    deadline = time.monotonic() + 30
    while True:
        runs = asyncio.run(read())
        if all(r.state and r.state.is_final() for r in runs) or time.monotonic() > deadline:
            return runs
        time.sleep(0.5)


def test_generation_shards_run_as_prefect_tasks_and_a_rerun_is_cached(
    prefect_api, smollm2_path, tmp_path
):
    from flows.pipeline import STAGE_FLOWS

    cfg = load_config(
        REPO / "configs/tiny-curation-methods.yaml",
        [
            f"name={NAME}",
            f"storage.root=file://{tmp_path}/artifacts",
            "data.sources.0.limit=8",
            "data.difficulty_threshold=0",  # plumbing, not a 135M labeller's judgement
            "data.synthetic_sources.0.queries=4",
            "data.synthetic_sources.0.shard_size=2",
            "data.synthetic_sources.0.sampling.max_new_tokens=48",
            "data.synthetic_sources.1.examples=2",
            "data.synthetic_sources.1.skills_wanted=2",
            "data.synthetic_sources.1.sampling.max_new_tokens=160",
            "data.max_queries=6",
            "data.decontamination.enabled=false",  # decontamination has its own tests
            "tracking.backend=none",
        ],
    )
    store = ArtifactStore.from_config(cfg.storage)

    assert list(STAGE_FLOWS["data"](cfg)) == [Stage.curation]
    manifest = store.manifest(Stage.curation, curation_fingerprint(cfg))
    assert manifest is not None and list(store.read_records(manifest, Query))

    # Magpie's 4 queries in two shards of 2, SkillMix's 2 examples in one: a receipt each.
    generated = store.finished_shards(Stage.curation_generated, manifest.fingerprint)
    assert [generated[i].meta["source"] for i in sorted(generated)] == ["magpie"] * 2 + ["skillmix"]

    runs = _task_runs(f"config:{NAME}")
    by_name = {r.name: r.state.type.value for r in runs}
    shard_runs = sorted(n for n in by_name if n.startswith("curation-generation-shard-"))
    assert shard_runs == [f"curation-generation-shard-{i:05d}" for i in range(3)], by_name
    assert any(n.startswith("curation-skills") for n in by_name), by_name
    assert any(n.startswith("curation-labels-shard-") for n in by_name), by_name
    assert set(by_name.values()) == {"COMPLETED"}, by_name

    # The rerun finds the committed stage: one cached commit task, no generation.
    assert list(STAGE_FLOWS["data"](cfg)) == [Stage.curation]
    after = _task_runs(f"config:{NAME}")
    new = [r for r in after if r.id not in {r.id for r in runs}]
    assert [(r.name.rsplit("-", 1)[0], r.state.name) for r in new] == [
        ("curate-queries", "Cached")
    ], [(r.name, r.state.name) for r in new]
