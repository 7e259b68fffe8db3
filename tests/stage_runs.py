"""Stages run in the test's own process, on an engine the test holds, and their inputs.

The same ``bolt`` functions the flows run, with one difference: shards run one after
another here instead of as Prefect tasks, so a test can count, fault or kill its
engine's requests without a Prefect server.
"""

from __future__ import annotations

from collections.abc import Callable

from bolt.bootstrap.stage import run_bootstrap
from bolt.config import PipelineConfig
from bolt.engines.base import Engine
from bolt.records import Query
from bolt.stages import Stage
from bolt.store import ArtifactStore, Manifest


def committed_queries(store: ArtifactStore, fingerprint: str, queries: list[Query]) -> Manifest:
    """``queries`` committed as a curation output (one shard), for a stage that reads one."""
    shard = store.write_shard(Stage.curation, fingerprint, 0, queries)
    return store.commit(
        Manifest(
            stage=Stage.curation,
            fingerprint=fingerprint,
            code_version="test",
            config={},
            shards=[shard],
        )
    )


def bootstrap_in_process(
    cfg: PipelineConfig,
    store: ArtifactStore,
    data: Manifest,
    engine: Callable[[], Engine],
    context_length: int | None = None,
) -> Manifest:
    """``bootstrap_flow`` without Prefect: ``engine`` is called only for unfinished shards."""
    return run_bootstrap(cfg, store, data, engine, context_length)
