"""What identifies a query source's content, for the fingerprints of the stages reading it
(curation, online prompts, DRIFT feedback): new data at the same URI re-runs them, an
unchanged source keeps their outputs.

- a local file: its sha256, streamed, and cached by (path, size, mtime_ns) in
  ``source-digests.json`` under the model cache root, so a large unchanged file is not
  re-read on every run (the value is the plain hex digest it always was);
- ``s3://bucket/key``: the object's checksum from a HEAD through the store's S3 options
  (``s3:sha256:<b64>`` when the object carries a SHA-256 checksum, else ``s3:etag:<etag>``,
  which changes whenever the object is rewritten with other bytes);
- ``hf://id?revision=REV``: the URI itself, which names the pinned revision; a hub id
  without one has no stable content and is refused; ``hf://<local folder>`` (a
  ``save_to_disk`` folder): the sha256 of its files' names and digests.

The S3 HEAD is the only network call, and it happens where a fingerprint is computed
with the default ``head``: at run time. Code that must not reach the network (the
fingerprint goldens) passes its own ``head``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from bolt.config import PipelineConfig, QuerySource, S3Options
from bolt.models import cache_root
from bolt.store import sha256_file
from bolt.store_backends import S3Backend

CACHE_NAME = "source-digests.json"

# s3://bucket/key -> the HEAD response (ETag, ChecksumSHA256, ...).
Head = Callable[[str], Mapping[str, Any]]


class SourceError(ValueError):
    """A source whose content cannot be identified."""


def s3_head(options: S3Options) -> Head:
    """HEAD of an object through the store's S3 client settings (endpoint, retries)."""

    def head(uri: str) -> Mapping[str, Any]:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        client = S3Backend(bucket, "", options).client
        try:
            return client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        except client.exceptions.ClientError as e:
            raise FileNotFoundError(f"query source {uri} cannot be read: {e}") from None

    return head


def hf_revision(uri: str) -> tuple[str, str | None, str | None]:
    """``hf://id[:split][?revision=REV]`` -> (id, split, revision)."""
    body, _, query = uri.removeprefix("hf://").partition("?")
    name, _, split = body.partition(":")
    revision = parse_qs(query).get("revision", [None])[0]
    return name, split or None, revision


@dataclass
class SourceDigests:
    """Digests of sources by content; ``cache`` is the local-file cache (None: none)."""

    head: Head
    cache: Path | None = None
    _memo: dict[str, dict[str, Any]] | None = field(default=None, repr=False)

    @classmethod
    def of_config(cls, cfg: PipelineConfig, head: Head | None = None) -> SourceDigests:
        return cls(head or s3_head(cfg.storage.s3), cache_root(cfg.models) / CACHE_NAME)

    def upstream(self, sources: Iterable[QuerySource]) -> dict[str, str]:
        """``{"source:<name>": digest}``: how a stage's fingerprint names its sources."""
        return {f"source:{s.name}": self(s) for s in sources}

    def __call__(self, source: QuerySource) -> str:
        uri = source.uri
        if uri.startswith("s3://"):
            return self._s3(uri)
        if uri.startswith("hf://"):
            return self._hf(source)
        path = Path(uri)
        # A missing file keeps its URI: the stage names it when it reads the source.
        return self.file(path) if path.is_file() else uri

    def _s3(self, uri: str) -> str:
        response = self.head(uri)
        if response.get("ChecksumSHA256"):
            return f"s3:sha256:{response['ChecksumSHA256']}"
        return f"s3:etag:{str(response['ETag']).strip(chr(34))}"

    def _hf(self, source: QuerySource) -> str:
        name, _, revision = hf_revision(source.uri)
        folder = Path(name)
        if folder.is_dir():
            listing = sorted(p for p in folder.rglob("*") if p.is_file())
            lines = [f"{p.relative_to(folder).as_posix()} {self.file(p)}" for p in listing]
            return hashlib.sha256("\n".join(lines).encode()).hexdigest()
        if revision is None:
            raise SourceError(
                f"query source {source.name!r} ({source.uri}) names no revision: a hub "
                "dataset is identified by its pinned revision (add ?revision=COMMIT)"
            )
        return source.uri

    def file(self, path: Path) -> str:
        """The file's sha256, from the cache while its size and mtime are unchanged."""
        stat = path.stat()
        key = str(path.resolve())
        entry = self._entries().get(key)
        if entry and entry["size"] == stat.st_size and entry["mtime_ns"] == stat.st_mtime_ns:
            return str(entry["sha256"])
        digest = sha256_file(path)
        self._entries()[key] = {
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "sha256": digest,
        }
        self._save()
        return digest

    def _entries(self) -> dict[str, dict[str, Any]]:
        if self._memo is None:
            self._memo = {}
            if self.cache is not None:
                try:
                    loaded = json.loads(self.cache.read_text())
                    self._memo = loaded if isinstance(loaded, dict) else {}
                except (OSError, ValueError):
                    pass  # no cache yet, or a torn one: digests are recomputed
        return self._memo

    def _save(self) -> None:
        """Written whole to a temporary file and renamed: readers never see half of it."""
        if self.cache is None:
            return
        try:
            self.cache.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.cache.parent, prefix=".source-digests-")
            with os.fdopen(fd, "w") as f:
                json.dump(self._entries(), f, sort_keys=True)
            os.replace(tmp, self.cache)
        except OSError:
            pass  # a read-only cache only costs the next run a re-read
