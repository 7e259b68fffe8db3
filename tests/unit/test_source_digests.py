"""Sources are fingerprinted by content (bolt.source_digests): a local file by its sha256
(cached by path, size and mtime), an s3:// object by its checksum or ETag (the HEAD is
injected here: unit tests never reach S3), a hub dataset by its pinned revision."""

from __future__ import annotations

import os

import pytest

from bolt import source_digests
from bolt.config import QuerySource
from bolt.source_digests import SourceDigests, SourceError
from bolt.store import sha256_file


def _source(uri: str) -> QuerySource:
    return QuerySource(name="s", uri=uri)


def _no_head(uri: str):
    raise AssertionError(f"no HEAD expected, got one for {uri}")


def test_a_local_file_is_its_sha256_read_once_while_unchanged(tmp_path, monkeypatch):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"text": "a"}\n')
    reads: list[str] = []
    real = source_digests.sha256_file
    monkeypatch.setattr(source_digests, "sha256_file", lambda p: reads.append(p) or real(p))
    cache = tmp_path / "cache" / "source-digests.json"
    first = SourceDigests(_no_head, cache)(_source(str(path)))
    assert first == sha256_file(path)  # the value it always was: the goldens keep
    # A new process (a fresh SourceDigests) reads the cache, not the file.
    assert SourceDigests(_no_head, cache)(_source(str(path))) == first and len(reads) == 1
    # Changed in place (same size, new bytes, new mtime): read again, a new digest.
    stat = path.stat()
    path.write_text('{"text": "b"}\n')
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    second = SourceDigests(_no_head, cache)(_source(str(path)))
    assert second == sha256_file(path) != first and len(reads) == 2


def test_a_torn_cache_is_ignored(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text("x\n")
    cache = tmp_path / "source-digests.json"
    cache.write_text("{not json")
    assert SourceDigests(_no_head, cache)(_source(str(path))) == sha256_file(path)


def test_an_s3_object_is_its_checksum_or_its_etag():
    heads = {
        "s3://b/with-checksum.jsonl": {"ETag": '"abc"', "ChecksumSHA256": "q1w2e3=="},
        "s3://b/plain.jsonl": {"ETag": '"0cc175b9c0f1b6a831c399e269772661"'},
    }
    digests = SourceDigests(heads.__getitem__)
    assert digests(_source("s3://b/with-checksum.jsonl")) == "s3:sha256:q1w2e3=="
    assert digests(_source("s3://b/plain.jsonl")) == "s3:etag:0cc175b9c0f1b6a831c399e269772661"
    assert digests.upstream([QuerySource(name="p", uri="s3://b/plain.jsonl")]) == {
        "source:p": "s3:etag:0cc175b9c0f1b6a831c399e269772661"
    }


def test_a_hub_dataset_is_its_pinned_revision(tmp_path):
    digests = SourceDigests(_no_head)
    pinned = "hf://org/rows:train?revision=0123abcd"
    assert digests(QuerySource(name="s", uri=pinned, format="hf")) == pinned
    assert source_digests.hf_revision(pinned) == ("org/rows", "train", "0123abcd")
    with pytest.raises(SourceError, match=r"names no revision.*add \?revision=COMMIT"):
        digests(QuerySource(name="s", uri="hf://org/rows", format="hf"))
    folder = tmp_path / "saved"
    folder.mkdir()
    (folder / "data.arrow").write_bytes(b"rows")
    local = QuerySource(name="s", uri=f"hf://{folder}", format="hf")
    before = digests(local)
    (folder / "data.arrow").write_bytes(b"other rows")
    assert digests(local) != before


def test_a_missing_local_file_keeps_its_uri():
    assert SourceDigests(_no_head)(_source("data/none.jsonl")) == "data/none.jsonl"
