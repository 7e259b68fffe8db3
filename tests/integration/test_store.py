"""The artifact store on local disk and on moto's S3 server over HTTP."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import boto3
import pytest

from bolt.config import S3Options, StorageConfig
from bolt.records import Query
from bolt.store import ArtifactStore, IntegrityError, Manifest, NotCommitted, StoreError
from bolt.store_backends import UnsafeKey, sanitize_key

pytestmark = pytest.mark.integration


@pytest.fixture(params=["file", "s3"])
def storage(request, tmp_path) -> StorageConfig:
    if request.param == "file":
        return StorageConfig(root=f"file://{tmp_path}/artifacts")
    endpoint = request.getfixturevalue("s3_endpoint")
    bucket = request.getfixturevalue("s3_bucket")
    return StorageConfig(
        root=f"s3://{bucket}/runs",
        s3=S3Options(endpoint_url=endpoint, multipart_threshold_mb=5, multipart_chunk_mb=5),
    )


def _queries(n: int, start: int = 0) -> list[Query]:
    return [Query(id=f"q{i}", text=f"question {i}", source="demo") for i in range(start, start + n)]


def _commit_two_shards(store: ArtifactStore) -> Manifest:
    shards = [store.write_shard("data", "fp1", i, _queries(3, 3 * i)) for i in range(2)]
    return store.commit(
        Manifest(stage="data", fingerprint="fp1", code_version="1", config={"k": 1}, shards=shards)
    )


def test_round_trip(storage):
    store = ArtifactStore.from_config(storage)
    manifest = _commit_two_shards(store)
    again = store.require("data", "fp1")
    assert again == manifest and again.records == 6
    assert [q.id for q in store.read_records(again, Query)] == [f"q{i}" for i in range(6)]
    assert [m.fingerprint for m in store.list_manifests()] == ["fp1"]


def test_shards_without_manifest_are_not_committed(storage):
    store = ArtifactStore.from_config(storage)
    store.write_shard("data", "fp2", 0, _queries(2))
    assert store.manifest("data", "fp2") is None
    assert store.list_manifests() == []
    with pytest.raises(NotCommitted, match="no manifest"):
        store.require("data", "fp2")
    assert set(store.finished_shards("data", "fp2")) == {0}


def test_writer_killed_before_manifest_leaves_nothing_committed(storage, tmp_path):
    """A real process writes its shards and is SIGKILLed before it can commit."""
    script = textwrap.dedent(
        f"""
        import os, signal
        from bolt.config import StorageConfig
        from bolt.records import Query
        from bolt.store import ArtifactStore
        store = ArtifactStore.from_config(StorageConfig.model_validate_json({storage.model_dump_json()!r}))
        for i in range(3):
            store.write_shard("data", "fp3", i, [Query(id=f"q{{i}}", text="t", source="s")])
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run(
        check=False,
        args=[sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == -9, proc.stderr
    store = ArtifactStore.from_config(storage)
    assert store.manifest("data", "fp3") is None and store.list_manifests() == []
    assert set(store.finished_shards("data", "fp3")) == {0, 1, 2}  # a rerun may reuse them


def test_commit_refuses_a_shard_without_receipt(storage):
    store = ArtifactStore.from_config(storage)
    info = store.write_shard("data", "fp4", 0, _queries(1))
    forged = info.model_copy(update={"index": 1, "name": store.shard_name(1)})
    with pytest.raises(StoreError, match="unfinished"):
        store.commit(
            Manifest(
                stage="data", fingerprint="fp4", code_version="1", config={}, shards=[info, forged]
            )
        )


def test_corrupted_shard_is_refused(storage):
    store = ArtifactStore.from_config(storage)
    manifest = _commit_two_shards(store)
    key = f"data/fp1/{manifest.shards[1].name}"
    data = bytearray(store.backend.get_bytes(key))
    data[-5] ^= 0xFF
    store.backend.put_bytes(key, bytes(data))
    rows = store.read_records(manifest, Query)
    assert [next(rows).id for _ in range(3)] == ["q0", "q1", "q2"]
    with pytest.raises(IntegrityError, match=r"part-00001\.jsonl\.gz is corrupted: sha256"):
        next(rows)


def test_files_round_trip_and_are_verified(storage, tmp_path):
    store = ArtifactStore.from_config(storage)
    ckpt = tmp_path / "ckpt"
    (ckpt / "sub").mkdir(parents=True)
    (ckpt / "model.safetensors").write_bytes(b"\x01" * 1000)
    (ckpt / "sub" / "config.json").write_text("{}")
    files = store.put_dir("sft", "fp5", "final", ckpt)
    manifest = store.commit(
        Manifest(stage="sft", fingerprint="fp5", code_version="1", config={}, files=files)
    )
    out = store.get_dir(manifest, "final", tmp_path / "back")
    assert (out / "model.safetensors").read_bytes() == b"\x01" * 1000
    assert (out / "sub" / "config.json").read_text() == "{}"
    store.backend.put_bytes("sft/fp5/final/sub/config.json", b"{tampered}")
    with pytest.raises(IntegrityError):
        store.get_file(manifest, "final/sub/config.json", tmp_path / "x.json")


def test_large_files_use_multipart_and_sse(s3_endpoint, s3_bucket, tmp_path):
    storage = StorageConfig(
        root=f"s3://{s3_bucket}/p",
        s3=S3Options(
            endpoint_url=s3_endpoint, multipart_threshold_mb=5, multipart_chunk_mb=5, sse="AES256"
        ),
    )
    store = ArtifactStore.from_config(storage)
    big = tmp_path / "big.bin"
    big.write_bytes(b"\x07" * (12 * 1024 * 1024))
    store.put_file("sft", "fp6", "model.bin", big)
    head = boto3.client("s3", endpoint_url=s3_endpoint).head_object(
        Bucket=s3_bucket, Key="p/sft/fp6/model.bin"
    )
    assert head["ETag"].strip('"').endswith("-3")  # three 5 MiB parts
    assert head["ServerSideEncryption"] == "AES256"


@pytest.mark.parametrize("key", ["../x", "/abs", "a//b", "a/./b", "a\\b", ""])
def test_unsafe_keys_are_refused(key):
    with pytest.raises(UnsafeKey):
        sanitize_key(key)


def test_stage_names_cannot_escape_the_root(tmp_path):
    store = ArtifactStore.from_config(StorageConfig(root=f"file://{tmp_path}/a"))
    with pytest.raises(UnsafeKey):
        store.write_shard("..", "fp", 0, _queries(1))
