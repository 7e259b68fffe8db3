"""A rerun after new data lands at the same place re-curates; an unchanged source is a
cache hit (no engine call, the committed manifest). For a local file changed in place
and for an object rewritten in moto's S3 server (HEAD through storage.s3)."""

from __future__ import annotations

import shutil

import boto3
import pytest

from bolt.config_loader import load_config
from bolt.curation.stage import run_curation
from tests.conftest import REPO, TINY_CONFIG
from tests.stand_ins import HashEngine

pytestmark = pytest.mark.integration

DEMO = REPO / "data/queries/demo.jsonl"


def _cfg(root, uri, *overrides):
    source = f"{{name: demo, uri: '{uri}', format: jsonl, text_field: text, id_field: id, topic_field: topic}}"
    return load_config(
        TINY_CONFIG,
        [
            f"storage.root=file://{root}",
            f"data.sources=[{source}]",
            "data.decontamination.enabled=false",
            "data.shard_size=16",
            *overrides,
        ],
    )


def _curate(cfg):
    from bolt.store import ArtifactStore

    engine = HashEngine()
    manifest = run_curation(cfg, ArtifactStore.from_config(cfg.storage), lambda: engine, 8192)
    return manifest, engine.calls


def _changed(text: str) -> str:
    """The same file with one query reworded (same length: a size check alone misses it)."""
    return text.replace("what's 2+2?", "what's 3+3?", 1)


def test_a_local_file_changed_in_place_re_curates(tmp_path):
    source = tmp_path / "queries.jsonl"
    shutil.copy(DEMO, source)
    first, calls = _curate(_cfg(tmp_path / "art", source))
    assert calls > 0
    again, calls = _curate(_cfg(tmp_path / "art", source))
    assert (again, calls) == (first, 0)  # unchanged: the committed output, no labelling
    source.write_text(_changed(source.read_text()))
    changed, calls = _curate(_cfg(tmp_path / "art", source))
    assert changed.fingerprint != first.fingerprint and calls > 0
    assert changed.upstream["source:demo"] != first.upstream["source:demo"]


def test_an_object_rewritten_in_s3_re_curates(tmp_path, s3_endpoint, s3_bucket):
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    s3.put_object(Bucket=s3_bucket, Key="sources/demo.jsonl", Body=DEMO.read_bytes())
    uri = f"s3://{s3_bucket}/sources/demo.jsonl"
    endpoint = f"storage.s3.endpoint_url={s3_endpoint}"
    first, calls = _curate(_cfg(tmp_path, uri, endpoint))
    assert calls > 0 and first.upstream["source:demo"].startswith(("s3:etag:", "s3:sha256:"))
    again, calls = _curate(_cfg(tmp_path, uri, endpoint))
    assert (again, calls) == (first, 0)
    s3.put_object(
        Bucket=s3_bucket, Key="sources/demo.jsonl", Body=_changed(DEMO.read_text()).encode()
    )
    changed, calls = _curate(_cfg(tmp_path, uri, endpoint))
    assert changed.fingerprint != first.fingerprint and calls > 0
    assert changed.counts["read"] == first.counts["read"]  # the new rows were read
