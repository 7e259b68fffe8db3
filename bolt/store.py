"""The artifact store: the one module that decides where artifacts live.

Layout (ARCHITECTURE.md §4): ``<root>/<stage>/<fingerprint>/`` holds shards
(``part-00000.jsonl.gz``), each followed by its receipt (``part-00000.receipt.json``:
count and sha256, written after the shard), other files (plots, checkpoints), and
``manifest.json``, written LAST. A stage without a manifest does not exist for readers;
a shard without a receipt is garbage that a rerun overwrites; a shard whose bytes no
longer match its sha256 is refused. The bytes go through a backend
(``bolt.store_backends``: local disk or S3), which makes each write atomic.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from bolt import __version__
from bolt.config import StorageConfig
from bolt.records import decode_jsonl_gz, encode_jsonl_gz
from bolt.store_backends import HASH_CHUNK, Backend, StoreError, backend_for, sanitize_key

MANIFEST = "manifest.json"
SHARD_SUFFIX = ".jsonl.gz"
RECEIPT_SUFFIX = ".receipt.json"

R = TypeVar("R", bound=BaseModel)


class NotCommitted(StoreError):
    """The stage output has no manifest: it was never finished."""


class IntegrityError(StoreError):
    """Stored bytes do not match the sha256 recorded when they were written."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------- manifest


class ShardInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    index: int
    name: str
    records: int
    sha256: str
    bytes: int
    meta: dict[str, Any] = Field(
        default_factory=dict, description="Per-shard figures (tokens, timings)."
    )


class FileInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str
    sha256: str
    bytes: int


class Manifest(BaseModel):
    """What a finished stage output is: enough to verify it and to know how it was made."""

    model_config = ConfigDict(extra="forbid")
    stage: str
    fingerprint: str
    created_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    bolt_version: str = __version__
    code_version: str
    config: dict[str, Any] = Field(description="The resolved stage config that made this output.")
    upstream: dict[str, str] = Field(
        default_factory=dict, description="Input stage -> fingerprint."
    )
    shards: list[ShardInfo] = Field(default_factory=list)
    files: list[FileInfo] = Field(default_factory=list)
    counts: dict[str, int] = Field(default_factory=dict)
    timings: dict[str, float] = Field(default_factory=dict)
    tokens: dict[str, int] = Field(default_factory=dict)
    stats: dict[str, Any] = Field(default_factory=dict)

    @property
    def records(self) -> int:
        return sum(s.records for s in self.shards)


# ---------------------------------------------------------------- the store


class ArtifactStore:
    def __init__(self, backend: Backend):
        self.backend = backend

    @classmethod
    def from_config(cls, storage: StorageConfig) -> ArtifactStore:
        return cls(backend_for(storage.root, storage.s3))

    # -- addresses (the only place paths are built)

    @staticmethod
    def stage_dir(stage: str, fingerprint: str) -> str:
        return sanitize_key(f"{stage}/{fingerprint}")

    @staticmethod
    def shard_name(index: int) -> str:
        return f"part-{index:05d}{SHARD_SUFFIX}"

    def uri(self, stage: str, fingerprint: str, name: str = "") -> str:
        key = self.stage_dir(stage, fingerprint)
        return self.backend.uri(f"{key}/{sanitize_key(name)}" if name else key)

    def _key(self, stage: str, fingerprint: str, name: str) -> str:
        return f"{self.stage_dir(stage, fingerprint)}/{sanitize_key(name)}"

    # -- shards

    def write_shard(
        self,
        stage: str,
        fingerprint: str,
        index: int,
        records: Iterable[BaseModel],
        meta: dict[str, Any] | None = None,
    ) -> ShardInfo:
        """Write one shard, then its receipt; only then does the shard count as finished."""
        data, count = encode_jsonl_gz(records)
        name = self.shard_name(index)
        info = ShardInfo(
            index=index,
            name=name,
            records=count,
            sha256=sha256_bytes(data),
            bytes=len(data),
            meta=meta or {},
        )
        self.backend.put_bytes(self._key(stage, fingerprint, name), data)
        receipt = name.removesuffix(SHARD_SUFFIX) + RECEIPT_SUFFIX
        self.backend.put_bytes(
            self._key(stage, fingerprint, receipt), info.model_dump_json().encode()
        )
        return info

    def finished_shards(self, stage: str, fingerprint: str) -> dict[int, ShardInfo]:
        """Shards with a receipt (finished before any crash), by index."""
        done: dict[int, ShardInfo] = {}
        for key in self.backend.list(self.stage_dir(stage, fingerprint)):
            if key.endswith(RECEIPT_SUFFIX):
                info = ShardInfo.model_validate_json(self.backend.get_bytes(key))
                done[info.index] = info
        return done

    def receipt(self, stage: str, fingerprint: str, index: int) -> ShardInfo | None:
        """Shard ``index``'s receipt, if it finished (one read, not a listing)."""
        name = self.shard_name(index).removesuffix(SHARD_SUFFIX) + RECEIPT_SUFFIX
        try:
            data = self.backend.get_bytes(self._key(stage, fingerprint, name))
        except FileNotFoundError:
            return None
        return ShardInfo.model_validate_json(data)

    def read_shard(
        self, stage: str, fingerprint: str, info: ShardInfo, model: type[R]
    ) -> Iterator[R]:
        data = self.backend.get_bytes(self._key(stage, fingerprint, info.name))
        actual = sha256_bytes(data)
        if actual != info.sha256:
            raise IntegrityError(
                f"{self.uri(stage, fingerprint, info.name)} is corrupted: sha256 {actual[:12]}... "
                f"differs from {info.sha256[:12]}... recorded when it was written; rerun the stage"
            )
        yield from decode_jsonl_gz(data, model, self.uri(stage, fingerprint, info.name))

    # -- files (plots, checkpoints, models)

    def put_file(self, stage: str, fingerprint: str, relpath: str, local: Path) -> FileInfo:
        info = FileInfo(
            path=sanitize_key(relpath), sha256=sha256_file(local), bytes=local.stat().st_size
        )
        self.backend.put_file(self._key(stage, fingerprint, relpath), local)
        return info

    def put_plot(
        self, stage: str, fingerprint: str, name: str, draw: Callable[[Path], Path]
    ) -> FileInfo:
        """Draw a figure into a scratch file (``draw`` gets the path to write) and store it."""
        with tempfile.TemporaryDirectory() as tmp:
            return self.put_file(stage, fingerprint, name, draw(Path(tmp) / name))

    def put_dir(
        self, stage: str, fingerprint: str, relpath: str, local_dir: Path
    ) -> list[FileInfo]:
        return [
            self.put_file(stage, fingerprint, f"{relpath}/{p.relative_to(local_dir).as_posix()}", p)
            for p in sorted(local_dir.rglob("*"))
            if p.is_file()
        ]

    def get_file(self, manifest: Manifest, relpath: str, dest: Path) -> Path:
        """Fetch a committed file and check it against the manifest's sha256."""
        info = next((f for f in manifest.files if f.path == relpath), None)
        if info is None:
            raise FileNotFoundError(
                f"{relpath} is not in {self.uri(manifest.stage, manifest.fingerprint)}"
            )
        self.backend.get_file(self._key(manifest.stage, manifest.fingerprint, relpath), dest)
        if sha256_file(dest) != info.sha256:
            dest.unlink(missing_ok=True)
            raise IntegrityError(
                f"{self.uri(manifest.stage, manifest.fingerprint, relpath)} is corrupted"
            )
        return dest

    def get_dir(self, manifest: Manifest, relpath: str, dest: Path) -> Path:
        prefix = relpath.rstrip("/") + "/"
        for info in manifest.files:
            if info.path.startswith(prefix):
                self.get_file(manifest, info.path, dest / info.path[len(prefix) :])
        return dest

    def put_json(self, stage: str, fingerprint: str, relpath: str, obj: Any) -> FileInfo:
        data = json.dumps(obj, indent=2, sort_keys=True, default=str).encode()
        self.backend.put_bytes(self._key(stage, fingerprint, relpath), data)
        return FileInfo(path=relpath, sha256=sha256_bytes(data), bytes=len(data))

    def list_files(self, stage: str, fingerprint: str, prefix: str) -> list[str]:
        """Paths (relative to the stage folder) under ``prefix``, committed or not: how a
        relaunched training job finds the checkpoints its killed predecessor uploaded."""
        base = self.stage_dir(stage, fingerprint)
        return [k[len(base) + 1 :] for k in self.backend.list(f"{base}/{sanitize_key(prefix)}")]

    def fetch_file(self, stage: str, fingerprint: str, relpath: str, dest: Path) -> Path:
        """A file of a stage that is not committed yet (no manifest sha256 to check)."""
        self.backend.get_file(self._key(stage, fingerprint, relpath), dest)
        return dest

    def put_records(
        self, stage: str, fingerprint: str, relpath: str, records: Iterable[BaseModel]
    ) -> FileInfo:
        """A side file of records (rejects, stats rows) outside the shard sequence."""
        data, _ = encode_jsonl_gz(records)
        self.backend.put_bytes(self._key(stage, fingerprint, relpath), data)
        return FileInfo(path=sanitize_key(relpath), sha256=sha256_bytes(data), bytes=len(data))

    def read_side_records(
        self, stage: str, fingerprint: str, info: FileInfo, model: type[R]
    ) -> list[R]:
        """A side file of records of a stage not committed yet, checked against the
        FileInfo its writer kept (in a shard receipt)."""
        data = self.backend.get_bytes(self._key(stage, fingerprint, info.path))
        if sha256_bytes(data) != info.sha256:
            raise IntegrityError(f"{self.uri(stage, fingerprint, info.path)} is corrupted")
        return list(decode_jsonl_gz(data, model, self.uri(stage, fingerprint, info.path)))

    def read_file_records(self, manifest: Manifest, relpath: str, model: type[R]) -> Iterator[R]:
        info = next((f for f in manifest.files if f.path == relpath), None)
        if info is None:
            raise FileNotFoundError(
                f"{relpath} is not in {self.uri(manifest.stage, manifest.fingerprint)}"
            )
        data = self.backend.get_bytes(self._key(manifest.stage, manifest.fingerprint, relpath))
        if sha256_bytes(data) != info.sha256:
            raise IntegrityError(
                f"{self.uri(manifest.stage, manifest.fingerprint, relpath)} is corrupted"
            )
        yield from decode_jsonl_gz(
            data, model, self.uri(manifest.stage, manifest.fingerprint, relpath)
        )

    # -- commit and read

    def commit(self, manifest: Manifest) -> Manifest:
        """Write manifest.json last, after checking every shard it lists has its receipt."""
        done = self.finished_shards(manifest.stage, manifest.fingerprint)
        for shard in manifest.shards:
            if done.get(shard.index) != shard:
                raise StoreError(
                    f"cannot commit {manifest.stage}/{manifest.fingerprint}: shard {shard.name} unfinished"
                )
        self.backend.put_bytes(
            self._key(manifest.stage, manifest.fingerprint, MANIFEST),
            manifest.model_dump_json(indent=2).encode(),
        )
        return manifest

    def manifest(self, stage: str, fingerprint: str) -> Manifest | None:
        try:
            data = self.backend.get_bytes(self._key(stage, fingerprint, MANIFEST))
        except FileNotFoundError:
            return None
        return Manifest.model_validate_json(data)

    def require(self, stage: str, fingerprint: str) -> Manifest:
        manifest = self.manifest(stage, fingerprint)
        if manifest is None:
            raise NotCommitted(
                f"{self.uri(stage, fingerprint)} has no manifest: the stage never finished"
            )
        return manifest

    def read_records(self, manifest: Manifest, model: type[R]) -> Iterator[R]:
        """Stream every record of a committed stage, verifying each shard first."""
        for info in manifest.shards:
            yield from self.read_shard(manifest.stage, manifest.fingerprint, info, model)

    def list_manifests(self, stage: str | None = None) -> list[Manifest]:
        keys = self.backend.list(sanitize_key(stage) if stage else "")
        found = [k for k in keys if k.endswith("/" + MANIFEST) and k.count("/") == 2]
        manifests = [Manifest.model_validate_json(self.backend.get_bytes(k)) for k in found]
        return sorted(manifests, key=lambda m: (m.stage, m.created_at))


def local_model_dir(store: ArtifactStore, manifest: Manifest, model_dir: str, cache: Path) -> str:
    """A stored model (SFT or a policy) as a local folder under ``cache``, fetched once."""
    dest = cache / manifest.stage / manifest.fingerprint
    if not (dest / "config.json").is_file():
        store.get_dir(manifest, model_dir, dest)
    return str(dest)
