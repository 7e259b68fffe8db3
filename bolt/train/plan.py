"""Training arithmetic decided before anything launches: gradient accumulation from the
world size, and whether the chosen nodes can hold the model under the chosen ZeRO stage.

The memory estimate follows the ZeRO paper's accounting (Rajbhandari et al., 2020,
§3.1): mixed-precision Adam keeps 2 bytes of 16-bit weights, 2 of 16-bit gradients and
12 of fp32 master weights + two moments per parameter (16 bytes); ZeRO-2 partitions
the gradients and optimizer states across data-parallel ranks, ZeRO-3 the weights too,
ZeRO-3-offload moves weights and optimizer states to host memory. Activations assume
gradient checkpointing (one hidden state per layer kept, one layer recomputed) and a
flash-style attention with no seq x seq matrix; fp32 logits are counted in full.
It is an estimate with a margin, not a promise: its job is to refuse plans that
cannot fit, before a cluster allocation is spent on finding out.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from bolt.config import Precision, ZeroStage

GIB = 1024**3
# CUDA context, allocator fragmentation, NCCL buffers: memory no estimate sees.
OVERHEAD_GIB = 6.0
# Peak activations per token in one recomputed transformer layer, in hidden-size
# multiples (attention projections, MLP up/gate/down, norms; Korthikanti et al., 2022).
LAYER_WORKSET_HIDDEN_MULTIPLES = 34


class PlanError(ValueError):
    """The configured training cannot run as planned (the message says what to change)."""


def gradient_accumulation(global_batch: int, micro_batch: int, world_size: int) -> int:
    """Accumulation steps so that micro_batch x world_size x steps == global_batch."""
    per_step = micro_batch * world_size
    if world_size < 1 or global_batch % per_step:
        raise PlanError(
            f"sft.global_batch_size={global_batch} is not a multiple of micro_batch_size "
            f"({micro_batch}) x world size ({world_size}) = {per_step}"
        )
    return global_batch // per_step


@dataclass(frozen=True)
class ModelShape:
    """What the estimate needs to know about a decoder-only transformer."""

    parameters: int
    hidden_size: int
    layers: int
    vocab_size: int

    @classmethod
    def from_hf_config(cls, config: dict) -> ModelShape:
        """Parameter count of a Llama/Mistral-style model from its config.json."""
        h, layers, vocab = config["hidden_size"], config["num_hidden_layers"], config["vocab_size"]
        heads = config["num_attention_heads"]
        head_dim = config.get("head_dim") or h // heads
        kv = config.get("num_key_value_heads", heads) * head_dim
        attention = h * heads * head_dim * 2 + h * kv * 2
        mlp = 3 * h * config["intermediate_size"]
        embeddings = vocab * h * (1 if config.get("tie_word_embeddings") else 2)
        return cls(layers * (attention + mlp + 2 * h) + embeddings + h, h, layers, vocab)

    @classmethod
    def from_model_dir(cls, path: str | Path) -> ModelShape:
        return cls.from_hf_config(json.loads((Path(path) / "config.json").read_text()))


# The published configs of the paper's models (their config.json), so a plan for a
# cluster can be checked on a machine that never downloads 140 GB of weights.
PUBLISHED_SHAPES = {
    "meta-llama/Llama-3.1-8B-Instruct": ModelShape(8_030_261_248, 4096, 32, 128256),
    "meta-llama/Llama-3.1-8B": ModelShape(8_030_261_248, 4096, 32, 128256),
    "meta-llama/Llama-3.1-70B-Instruct": ModelShape(70_553_706_496, 8192, 80, 128256),
    "mistralai/Mistral-7B-Instruct-v0.3": ModelShape(7_248_023_552, 4096, 32, 32768),
}


def gpu_memory_gib(gpu_type: str | None) -> float:
    """Memory of one GPU from names like 'H100-80GB' or 'A100-40GB'."""
    match = re.search(r"(\d+)\s*GB", gpu_type or "", re.IGNORECASE)
    if not match:
        raise PlanError(
            f"compute.gpu_type={gpu_type!r} does not say its memory; write it like 'H100-80GB'"
        )
    return float(match.group(1))


@dataclass(frozen=True)
class MemoryEstimate:
    per_gpu_gib: float
    per_node_host_gib: float
    states_gib: float
    activations_gib: float


def estimate_memory(
    shape: ModelShape,
    *,
    zero: ZeroStage,
    precision: Precision,
    world_size: int,
    gpus_per_node: int,
    micro_batch: int,
    max_length: int,
) -> MemoryEstimate:
    weight_bytes = 4 if precision == Precision.fp32 else 2
    p = shape.parameters
    # fp32 training keeps no separate master copy: 4 (weights) + 4 (grads) + 8 (moments).
    weights, grads = weight_bytes * p, weight_bytes * p
    optimizer = (8 if precision == Precision.fp32 else 12) * p
    match zero:
        case ZeroStage.zero2:
            states, host = weights + (grads + optimizer) / world_size, 0.0
        case ZeroStage.zero3:
            states, host = (weights + grads + optimizer) / world_size, 0.0
        case ZeroStage.zero3_offload:
            states = grads / world_size
            host = (weights + optimizer) / world_size * gpus_per_node
    tokens = micro_batch * max_length
    kept = tokens * shape.hidden_size * shape.layers * weight_bytes
    workset = tokens * shape.hidden_size * LAYER_WORKSET_HIDDEN_MULTIPLES * weight_bytes
    logits = tokens * shape.vocab_size * 4
    activations = kept + workset + logits
    return MemoryEstimate(
        per_gpu_gib=(states + activations) / GIB + OVERHEAD_GIB,
        per_node_host_gib=host / GIB,
        states_gib=states / GIB,
        activations_gib=activations / GIB,
    )


def check_fits(estimate: MemoryEstimate, gpu_type: str | None, where: str) -> None:
    """Raise PlanError naming the numbers when one GPU cannot hold its share."""
    capacity = gpu_memory_gib(gpu_type)
    if estimate.per_gpu_gib > capacity:
        raise PlanError(
            f"{where}: needs ~{estimate.per_gpu_gib:.0f} GiB per GPU "
            f"({estimate.states_gib:.0f} model/optimizer states + {estimate.activations_gib:.0f} "
            f"activations + {OVERHEAD_GIB:.0f} overhead) but a {gpu_type} has {capacity:.0f} GiB; "
            "use more nodes, a higher ZeRO stage (sft.zero: zero3, zero3_offload), "
            "a smaller sft.micro_batch_size or sft.max_length"
        )
