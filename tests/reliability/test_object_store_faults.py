"""Object-store faults: a proxy in front of moto's S3 server injects 5xx, throttling,
dropped connections and truncated uploads; corruption is planted in a stored shard."""

from __future__ import annotations

import boto3
import pytest

from bolt.config import S3Options, ServerSideEncryption, StorageConfig
from bolt.records import Query
from bolt.store import ArtifactStore, IntegrityError, Manifest, NotCommitted, StoreError
from tests.reliability.fault_proxy import FaultProxy

pytestmark = [pytest.mark.slow, pytest.mark.integration]

FAULT_MIX = ["500", "503", "slowdown", "drop", "truncate"]


def _queries(n: int, start: int = 0) -> list[Query]:
    return [Query(id=f"q{i}", text=f"question {i}", source="demo") for i in range(start, start + n)]


def _store(endpoint: str, bucket: str, **options) -> ArtifactStore:
    return ArtifactStore.from_config(
        StorageConfig(root=f"s3://{bucket}/runs", s3=S3Options(endpoint_url=endpoint, **options))
    )


def test_writes_and_reads_survive_injected_faults(s3_endpoint, s3_bucket, fault_ledger):
    with FaultProxy(s3_endpoint) as proxy:
        store = _store(proxy.url, s3_bucket, max_attempts=8)
        shards = []
        for index in range(3):
            proxy.faults.extend(FAULT_MIX)
            shards.append(store.write_shard("data", "fp", index, _queries(4, 4 * index)))
        proxy.faults.extend(FAULT_MIX)
        store.commit(
            Manifest(stage="data", fingerprint="fp", code_version="1", config={}, shards=shards)
        )
        proxy.faults.extend(["500", "slowdown", "drop"])
        read = [q.id for q in store.read_records(store.require("data", "fp"), Query)]
    assert read == [f"q{i}" for i in range(12)]
    assert len(proxy.injected) == 4 * len(FAULT_MIX) + 3 and not proxy.faults
    fault_ledger.record("s3_transient_faults", injected=len(proxy.injected), recovered=1)


def test_exhausted_retries_leave_nothing_committed(s3_endpoint, s3_bucket, fault_ledger):
    with FaultProxy(s3_endpoint) as proxy:
        store = _store(proxy.url, s3_bucket, max_attempts=2)
        shard = store.write_shard("data", "fp", 0, _queries(3))
        proxy.fault_when = lambda method, path: method == "PUT" and "part-00001" in path
        # botocore's max_attempts counts retries: 2 retries = 3 attempts, all refused.
        proxy.faults.extend(["503"] * 3)
        with pytest.raises(Exception, match="503|ServiceUnavailable|SlowDown"):
            store.write_shard("data", "fp", 1, _queries(3, 3))
        unfinished = shard.model_copy(update={"index": 1, "name": "part-00001.jsonl.gz"})
        with pytest.raises(StoreError, match="part-00001.jsonl.gz unfinished"):
            store.commit(
                Manifest(
                    stage="data",
                    fingerprint="fp",
                    code_version="1",
                    config={},
                    shards=[shard, unfinished],
                )
            )
        with pytest.raises(NotCommitted, match="has no manifest"):
            store.require("data", "fp")
        assert set(store.finished_shards("data", "fp")) == {0}
        # The rerun (faults gone) finishes the missing shard and commits.
        shards = [shard, store.write_shard("data", "fp", 1, _queries(3, 3))]
        store.commit(
            Manifest(stage="data", fingerprint="fp", code_version="1", config={}, shards=shards)
        )
    assert store.require("data", "fp").records == 6
    fault_ledger.record("s3_retries_exhausted", injected=len(proxy.injected), recovered=1)


def test_corrupted_shard_is_refused_naming_the_object(s3_endpoint, s3_bucket, fault_ledger):
    store = _store(s3_endpoint, s3_bucket)
    shard = store.write_shard("data", "fp", 0, _queries(3))
    manifest = store.commit(
        Manifest(stage="data", fingerprint="fp", code_version="1", config={}, shards=[shard])
    )
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    key = "runs/data/fp/part-00000.jsonl.gz"
    body = bytearray(client.get_object(Bucket=s3_bucket, Key=key)["Body"].read())
    body[len(body) // 2] ^= 0xFF
    client.put_object(Bucket=s3_bucket, Key=key, Body=bytes(body))
    with pytest.raises(IntegrityError, match=rf"s3://{s3_bucket}/runs/data/fp/part-00000"):
        list(store.read_records(manifest, Query))
    fault_ledger.record("s3_corruption_detected", injected=1, recovered=0)


def test_server_side_encryption_header_reaches_the_server(s3_endpoint, s3_bucket):
    with FaultProxy(s3_endpoint) as proxy:
        store = _store(proxy.url, s3_bucket, sse=ServerSideEncryption.aes256)
        store.write_shard("data", "fp", 0, _queries(2))
    assert proxy.put_headers
    assert all(h.get("x-amz-server-side-encryption") == "AES256" for h in proxy.put_headers)
    head = boto3.client("s3", endpoint_url=s3_endpoint).head_object(
        Bucket=s3_bucket, Key="runs/data/fp/part-00000.jsonl.gz"
    )
    assert head["ServerSideEncryption"] == "AES256"
