"""Where the store's bytes live: a local folder or an S3 bucket, behind one protocol.

A backend knows keys (``<stage>/<fingerprint>/<name>``) and bytes, nothing of stages or
manifests: ``bolt.store`` decides what a key means. Every key is checked here, the last
door before the disk or the bucket, so none can escape the root or alias another.
Local writes are atomic (temporary file + rename); an S3 PUT is atomic per object, and
large files go up in parts.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Protocol

from bolt.config import S3Options, ServerSideEncryption

HASH_CHUNK = 1 << 20


class StoreError(RuntimeError):
    pass


class UnsafeKey(StoreError, ValueError):
    pass


def sanitize_key(key: str) -> str:
    """Refuse keys that could escape the store root or alias another key."""
    if not key or key.startswith("/") or "\\" in key or "\x00" in key:
        raise UnsafeKey(f"unsafe artifact key {key!r}: must be relative, with / separators")
    parts = key.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise UnsafeKey(f"unsafe artifact key {key!r}: empty, '.' or '..' segment")
    return key


class Backend(Protocol):
    def put_bytes(self, key: str, data: bytes) -> None: ...
    def get_bytes(self, key: str) -> bytes: ...
    def put_file(self, key: str, path: Path) -> None: ...
    def get_file(self, key: str, path: Path) -> None: ...
    def exists(self, key: str) -> bool: ...
    def list(self, prefix: str) -> list[str]: ...
    def delete(self, key: str) -> None: ...
    def uri(self, key: str) -> str: ...


class LocalBackend:
    def __init__(self, root: Path):
        self.root = root.expanduser().resolve()

    def _path(self, key: str) -> Path:
        return self.root / sanitize_key(key)

    def _atomic_write(self, key: str, write: Any) -> None:
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_bytes(self, key: str, data: bytes) -> None:
        self._atomic_write(key, lambda f: f.write(data))

    def put_file(self, key: str, path: Path) -> None:
        with open(path, "rb") as src:
            self._atomic_write(key, lambda f: shutil.copyfileobj(src, f, HASH_CHUNK))

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise FileNotFoundError(f"no artifact at {self.uri(key)}") from None

    def get_file(self, key: str, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self._path(key), path)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str) -> list[str]:
        base = self._path(prefix) if prefix else self.root
        if not base.is_dir():
            return []
        return sorted(
            p.relative_to(self.root).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not p.name.endswith(".tmp")
        )

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def uri(self, key: str) -> str:
        return (self.root / key).as_uri()


class S3Backend:
    """S3 or any S3-compatible store (MinIO, moto) through boto3.

    Credentials come only from boto3's default chain (environment, profile, instance
    role); nothing here reads or logs them. Throttling and 5xx answers are retried by
    botocore's standard retry mode with backoff.
    """

    def __init__(self, bucket: str, prefix: str, options: S3Options):
        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        self.bucket, self.prefix = bucket, prefix.strip("/")
        session = boto3.session.Session(profile_name=options.profile, region_name=options.region)
        endpoint = options.endpoint_url or os.environ.get("BOLT_S3_ENDPOINT_URL")
        self.client = session.client(
            "s3",
            endpoint_url=endpoint,
            config=Config(retries={"max_attempts": options.max_attempts, "mode": "standard"}),
        )
        mb = 1024 * 1024
        self.transfer = TransferConfig(
            multipart_threshold=options.multipart_threshold_mb * mb,
            multipart_chunksize=options.multipart_chunk_mb * mb,
            max_concurrency=options.max_concurrency,
        )
        self.extra: dict[str, str] = {}
        if options.sse != ServerSideEncryption.none:
            self.extra["ServerSideEncryption"] = options.sse.value
            if options.sse == ServerSideEncryption.kms and options.kms_key_id:
                self.extra["SSEKMSKeyId"] = options.kms_key_id

    def _key(self, key: str) -> str:
        key = sanitize_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def put_bytes(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, **self.extra)

    def put_file(self, key: str, path: Path) -> None:
        self.client.upload_file(
            str(path),
            self.bucket,
            self._key(key),
            ExtraArgs=self.extra or None,
            Config=self.transfer,
        )

    def get_bytes(self, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except self.client.exceptions.NoSuchKey:
            raise FileNotFoundError(f"no artifact at {self.uri(key)}") from None

    def get_file(self, key: str, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.client.download_file(self.bucket, self._key(key), str(path), Config=self.transfer)

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def list(self, prefix: str) -> list[str]:
        full = self._key(prefix) + "/" if prefix else (f"{self.prefix}/" if self.prefix else "")
        strip = len(self.prefix) + 1 if self.prefix else 0
        keys: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=full
        ):
            keys += [obj["Key"][strip:] for obj in page.get("Contents", [])]
        return sorted(keys)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"


def backend_for(root: str, s3: S3Options | None = None) -> Backend:
    if root.startswith("file://"):
        return LocalBackend(Path(root.removeprefix("file://")))
    if root.startswith("s3://"):
        bucket, _, prefix = root.removeprefix("s3://").partition("/")
        if not bucket:
            raise ValueError(f"storage root {root!r} names no bucket")
        return S3Backend(bucket, prefix, s3 or S3Options())
    raise ValueError(f"storage root {root!r}: expected file://PATH or s3://bucket/prefix")
