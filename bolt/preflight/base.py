"""What the checks share: the Problem they report, one bounded S3 prober, timeouts."""

from __future__ import annotations

import contextvars
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bolt.config import (
    PipelineConfig,
    S3Options,
)

DEADLINE_S = 8.0  # all checks together; the acceptance bound is 10 s
PROBE_TIMEOUT_S = 4.0  # one subprocess, hub or cluster API call
S3_CONNECT_TIMEOUT_S = 2.0
S3_READ_TIMEOUT_S = 3.0
TRUTHY = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Problem:
    key: str  # the config key to change, e.g. "eval.data.arena_hard"
    message: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}"


class PreflightError(RuntimeError):
    """The config names something that is not there; every problem is listed."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = list(problems)
        lines = "\n  ".join(str(p) for p in self.problems)
        super().__init__(f"preflight failed ({len(self.problems)} problem(s)):\n  {lines}")


@dataclass
class Context:
    """What the checks of one preflight share: the config and one bounded S3 prober."""

    cfg: PipelineConfig
    s3: S3Probe = field(init=False)

    def __post_init__(self) -> None:
        self.s3 = S3Probe(self.cfg.storage.s3)


CheckFn = Callable[[Context], list[Problem]]


@dataclass(frozen=True)
class Check:
    name: str
    key: str  # named when the check does not finish within the deadline
    run: CheckFn


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in TRUTHY


def in_thread(target: Callable[[], None], name: str) -> threading.Thread:
    """A started daemon thread running ``target`` in a copy of the caller's context
    (so a Prefect settings context, the API URL of a test harness, carries over)."""
    thread = threading.Thread(
        target=contextvars.copy_context().run, args=(target,), daemon=True, name=name
    )
    thread.start()
    return thread


def bounded(fn: Callable[[], Any], timeout_s: float) -> Any:
    """``fn()`` in a daemon thread; TimeoutError when it has not returned in time
    (the thread is left to finish on its own: it holds nothing the run needs)."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 -- handed to the caller as is
            box["error"] = e

    thread = in_thread(target, "preflight-probe")
    thread.join(timeout_s)
    if thread.is_alive():
        raise TimeoutError(f"no answer within {timeout_s:.0f} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


# --- S3 ---------------------------------------------------------------------------


def split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


class S3Probe:
    """HEADs on one client with short timeouts and no retries; a bucket or endpoint
    that failed once is not asked again (one timeout per endpoint, not per object)."""

    def __init__(self, options: S3Options):
        self.options = options
        self.endpoint = options.endpoint_url or os.environ.get("BOLT_S3_ENDPOINT_URL")
        self._lock = threading.Lock()
        self._client: Any = None
        self._buckets: dict[str, str | None] = {}
        self._dead: str | None = None

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        with self._lock:
            if self._client is None:
                session = boto3.session.Session(
                    profile_name=self.options.profile, region_name=self.options.region
                )
                self._client = session.client(
                    "s3",
                    endpoint_url=self.endpoint,
                    config=Config(
                        connect_timeout=S3_CONNECT_TIMEOUT_S,
                        read_timeout=S3_READ_TIMEOUT_S,
                        retries={"total_max_attempts": 1, "mode": "standard"},
                    ),
                )
            return self._client

    def credentials(self) -> str | None:
        """Why boto3 cannot sign requests, or None when it can."""
        import boto3
        from botocore.exceptions import BotoCoreError

        try:
            session = boto3.session.Session(
                profile_name=self.options.profile, region_name=self.options.region
            )
            found = bounded(session.get_credentials, PROBE_TIMEOUT_S)
        except (BotoCoreError, TimeoutError) as e:
            return f"AWS credentials cannot be read: {e}"
        if found is None:
            return (
                "no AWS credentials found (environment, profile, instance or pod role); "
                "boto3 cannot sign S3 requests"
            )
        return None

    def _call(self, fn: Callable[[], Any]) -> str | None:
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            NoCredentialsError,
            PartialCredentialsError,
            ProfileNotFound,
        )

        if self._dead:
            return self._dead
        try:
            fn()
        except ClientError as e:
            error = e.response.get("Error", {})
            code = str(error.get("Code", ""))
            if code in ("404", "NoSuchKey", "NoSuchBucket", "NotFound"):
                return "does not exist"
            if code in ("403", "AccessDenied", "Forbidden"):
                return "access denied (the credentials found lack permission)"
            return f"S3 answered {code}: {error.get('Message', '')}".strip()
        except (NoCredentialsError, PartialCredentialsError, ProfileNotFound) as e:
            self._dead = f"no usable AWS credentials ({e})"
            return self._dead
        except BotoCoreError as e:
            where = self.endpoint or "AWS S3"
            self._dead = f"S3 endpoint {where} did not answer ({type(e).__name__}: {e})"
            return self._dead
        return None

    def bucket(self, bucket: str) -> str | None:
        if bucket not in self._buckets:
            why = self._call(lambda: self.client().head_bucket(Bucket=bucket))
            self._buckets[bucket] = f"bucket {bucket!r}: {why}" if why else None
        return self._buckets[bucket]

    def object(self, uri: str) -> str | None:
        """Why ``uri`` (an object, or a prefix ending in /) cannot be read, or None."""
        bucket, key = split_s3(uri)
        if why := self.bucket(bucket):
            return why
        if key.endswith("/") or not key:
            listed: dict[str, Any] = {}

            def list_one() -> None:
                listed.update(self.client().list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1))

            why = self._call(list_one)
            return why or (None if listed.get("KeyCount") else f"no objects under {uri}")
        why = self._call(lambda: self.client().head_object(Bucket=bucket, Key=key))
        return f"{uri}: {why}" if why else None
