"""The closed choices of the config, as StrEnums (their values are what YAML spells)."""

from __future__ import annotations

from enum import StrEnum


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
    principles = "principles"


class PairStrategyName(StrEnum):
    max_min = "max_min"
    max_random = "max_random"
    random_pair = "random_pair"


class DpoLoss(StrEnum):
    sigmoid = "sigmoid"
    ipo = "ipo"


class OnlineAlgorithm(StrEnum):
    """How Stage 3 trains the policy from the SFT model."""

    dpo = "dpo"  # BOLT §3.3: iterative DPO on max/min reward pairs
    grpo = "grpo"  # RLMT (Bhaskar et al., 2025): GRPO on thinking, preference reward
    drift = "drift"  # DRIFT (2025): DPO anchored on real dissatisfying turns


class GrpoLossAggregation(StrEnum):
    """How GRPO's per-token losses become one number."""

    sequence_mean = "sequence_mean"  # GRPO: mean over each sample's tokens, then samples
    constant_length = "constant_length"  # Dr. GRPO: token sum / (samples x max_new_tokens)


class ReferencePolicy(StrEnum):
    sft = "sft"
    previous = "previous"


class BenchmarkName(StrEnum):
    mt_bench = "mt_bench"
    wildbench = "wildbench"
    arena_hard = "arena_hard"
    zebralogic = "zebralogic"
    math500 = "math500"


class JudgeKind(StrEnum):
    api = "api"
    local_checklist = "local_checklist"


class ServerSideEncryption(StrEnum):
    none = "none"
    aes256 = "AES256"
    kms = "aws:kms"


class TrackingBackend(StrEnum):
    mlflow = "mlflow"
    wandb = "wandb"
    none = "none"
