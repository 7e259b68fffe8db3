"""Stage tasks' cache keys (tasks.runtime.stage_key): a Prefect record is handed back only
while the store holds the output it describes; after a stage's folder is deleted the key
moves past every stale record, and the record of the run that committed again is hit."""

from __future__ import annotations

import shutil
from types import SimpleNamespace

from bolt.config_loader import load_config
from bolt.records import Query
from bolt.store import ArtifactStore, Manifest
from tests.conftest import TINY_CONFIG


class Records:
    """The part of Prefect's result store a key reads: which record keys exist."""

    def __init__(self) -> None:
        self.keys: set[str] = set()

    def exists(self, key: str) -> bool:
        return key in self.keys


def _commit(store: ArtifactStore) -> None:
    shard = store.write_shard("data", "fp", 0, [Query(id="q", text="t", source="s")])
    store.commit(
        Manifest(stage="data", fingerprint="fp", code_version="t", config={}, shards=[shard])
    )


def test_a_key_moves_past_records_of_a_deleted_output(tmp_path):
    from tasks.runtime import stage_key

    cfg = load_config(TINY_CONFIG, [f"storage.root=file://{tmp_path}/store"])
    store = ArtifactStore.from_config(cfg.storage)
    records = Records()
    ctx = SimpleNamespace(result_store=records)
    key = lambda: stage_key(ctx, cfg, "data", "fp")
    shard_key = lambda: stage_key(ctx, cfg, "data", "fp", 0)

    first = key()
    assert first.startswith("data-fp-") and first.endswith("-g0")
    _commit(store)
    records.keys |= {first, shard_key()}  # the first run recorded both results
    assert key() == first  # a rerun: Cached

    shutil.rmtree(tmp_path / "store" / "data")  # deleted to redo it; the records stay
    second, second_shard = key(), shard_key()
    assert second.endswith("-g1") and second_shard.endswith("-00000-g1")
    _commit(store)
    records.keys |= {second, second_shard}
    assert key() == second and shard_key() == second_shard  # the newest record, the live one

    other = load_config(TINY_CONFIG, [f"storage.root=file://{tmp_path}/other"])
    assert stage_key(ctx, other, "data", "fp").endswith("-g0")  # scoped to its store
