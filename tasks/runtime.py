"""How a run executes under Prefect: task runner, result storage, cache keys.

Stage outputs are idempotent by construction (the store skips committed stages and
finished shards), and Prefect's cache rides on the same identity: a stage task's cache
key is its fingerprint (scoped to the storage root, with a generation that skips records
of outputs deleted from the store: ``stage_key``), and its result (the small JSON
manifest, never a pickle) lives next to the artifacts, under
``<storage.root>/prefect-results``. A UI rerun of a failed run therefore shows the
finished stages as Cached and resumes the one that failed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, TypeVar

from prefect import Flow
from prefect.context import TaskRunContext
from prefect.filesystems import LocalFileSystem, WritableFileSystem
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from bolt.config import PipelineConfig, TaskRunnerKind
from bolt.placement import task_gpus
from bolt.stages import Stage
from bolt.store import ArtifactStore

RESULTS_DIR = "prefect-results"

F = TypeVar("F", bound=Flow)


def task_runner(cfg: PipelineConfig) -> TaskRunner:
    """Threads by default; Ray spreads shard tasks over a cluster (each worker process
    holds its own engine: N workers = N data-parallel engine replicas)."""
    if cfg.compute.task_runner == TaskRunnerKind.ray:
        from prefect_ray import RayTaskRunner

        if cfg.compute.ray_address:
            return RayTaskRunner(address=cfg.compute.ray_address)
        # A local Ray gets as many CPUs as shard tasks may run at once.
        return RayTaskRunner(init_kwargs={"num_cpus": cfg.compute.max_workers})
    return ThreadPoolTaskRunner(max_workers=cfg.compute.max_workers)


def with_task_runner(stage_flow: F, cfg: PipelineConfig) -> F:
    """``stage_flow`` on the run's task runner. Every flow that submits shard tasks,
    nested ones included (the online loop's quick evals, ``bolt stage eval``'s), is
    called through this: a flow's own default runs its shards one at a time, while
    ``bolt plan`` (``bolt.placement``) counts ``compute.max_workers`` engines at work."""
    return stage_flow.with_options(task_runner=task_runner(cfg))


def shard_resources(cfg: PipelineConfig, stage: Stage) -> AbstractContextManager[Any]:
    """Around the submission of ``stage``'s shard tasks: under Ray, each asks for the
    GPUs its engine needs (``bolt.placement.task_gpus``; none for CPU-only or API
    work), so Ray never puts more engines on a node than its GPUs hold."""
    if cfg.compute.task_runner != TaskRunnerKind.ray:
        return nullcontext()
    from prefect_ray.context import remote_options

    return remote_options(num_gpus=task_gpus(cfg, stage))


def result_storage(cfg: PipelineConfig) -> WritableFileSystem:
    """Where Prefect keeps task results: beside the artifacts, local or S3.

    Prefect wants result storage saved server-side; the block's name is derived from
    the storage root, so every run on the same root shares one block (and its cache).
    It holds no secret: credentials stay with the AWS default chain.
    """
    block = _storage_block(cfg)
    block.save(f"bolt-results-{_root_digest(cfg)}", overwrite=True)
    return block


def _storage_block(cfg: PipelineConfig) -> WritableFileSystem:
    root = cfg.storage.root
    if root.startswith("s3://"):
        from prefect_aws import AwsCredentials, S3Bucket
        from prefect_aws.client_parameters import AwsClientParameters

        bucket, _, prefix = root.removeprefix("s3://").partition("/")
        s3 = cfg.storage.s3
        # Credentials come from the AWS default chain (or the named profile), never config.
        credentials = AwsCredentials(
            profile_name=s3.profile,
            region_name=s3.region,
            aws_client_parameters=AwsClientParameters(endpoint_url=s3.endpoint_url),
        )
        folder = f"{prefix.strip('/')}/{RESULTS_DIR}".lstrip("/")
        return S3Bucket(bucket_name=bucket, bucket_folder=folder, credentials=credentials)
    base = Path(root.removeprefix("file://")).expanduser().resolve()
    return LocalFileSystem(basepath=str(base / RESULTS_DIR))


def _root_digest(cfg: PipelineConfig) -> str:
    return hashlib.sha256(cfg.storage.root.encode()).hexdigest()[:12]


def stage_key(
    ctx: TaskRunContext, cfg: PipelineConfig, stage: str, fingerprint: str, part: int | None = None
) -> str:
    """A stage task's cache key: its fingerprint, scoped to the store that holds its
    artifacts (fingerprints leave the root out), plus a generation.

    A cached result (a manifest, a shard receipt) is only of use while the store still
    holds what it describes. Where it does not (someone deleted a stage's folder to redo
    it, and Prefect's records outlived it), every earlier record is stale: the key moves on
    to the first generation without a record, so the task runs again and records its
    result there. Where the output is in the store, the newest record is the one that
    committed it; a rerun hits it (Cached)."""
    base = f"{stage}-{fingerprint}-{_root_digest(cfg)}" + (
        f"-{part:05d}" if part is not None else ""
    )
    records = 0
    while ctx.result_store.exists(f"{base}-g{records}"):
        records += 1
    if records and _in_store(cfg, stage, fingerprint, part):
        return f"{base}-g{records - 1}"
    return f"{base}-g{records}"


def shard_key(stage: Stage) -> Callable[[TaskRunContext, dict[str, Any]], str]:
    """The cache key function of ``stage``'s shard tasks, whose arguments are
    ``(cfg, fp, plan, ...)`` (tasks.sharding): one key per shard of the output."""

    def key(ctx: TaskRunContext, p: dict[str, Any]) -> str:
        return stage_key(ctx, p["cfg"], stage, p["fp"], p["plan"].index)

    return key


def _in_store(cfg: PipelineConfig, stage: str, fingerprint: str, part: int | None) -> bool:
    """Whether the store holds the output a key names: the stage's committed manifest,
    or, for one shard, its receipt."""
    store = ArtifactStore.from_config(cfg.storage)
    if part is None:
        return store.manifest(stage, fingerprint) is not None
    return store.receipt(stage, fingerprint, part) is not None


# Options every stage task shares: the result is the manifest (or shard receipt) as JSON.
CACHED_RESULT: dict[str, Any] = {"persist_result": True, "result_serializer": "json"}
