"""The arithmetic behind bench/gpu_shapes.py: the Llama shapes, the devices' peak figures,
parameter counts, the memory a full fine-tune needs, model FLOPs per token, the decode
roofline, and a fallback copy of the DPO loss for machines without pydantic.

Pure Python (torch only inside the loss fallback), so it is testable without a device.
"""

from __future__ import annotations

# Llama shapes (the published configs' numbers). BOLT trains Llama-3.1-8B and -70B.
SHAPES: dict[str, dict] = {
    "llama-3.1-70b": {
        "vocab": 128256,
        "hidden": 8192,
        "ffn": 28672,
        "layers": 80,
        "heads": 64,
        "kv_heads": 8,
        "tied": False,
    },
    "llama-3.1-8b": {
        "vocab": 128256,
        "hidden": 4096,
        "ffn": 14336,
        "layers": 32,
        "heads": 32,
        "kv_heads": 8,
        "tied": False,
    },
    "llama-3.2-3b": {
        "vocab": 128256,
        "hidden": 3072,
        "ffn": 8192,
        "layers": 28,
        "heads": 24,
        "kv_heads": 8,
        "tied": True,
    },
    "llama-3.2-1b": {
        "vocab": 128256,
        "hidden": 2048,
        "ffn": 8192,
        "layers": 16,
        "heads": 32,
        "kv_heads": 8,
        "tied": True,
    },
    # CPU checks only.
    "tiny": {
        "vocab": 4096,
        "hidden": 128,
        "ffn": 384,
        "layers": 2,
        "heads": 4,
        "kv_heads": 2,
        "tied": True,
    },
    "tiny-small": {
        "vocab": 2048,
        "hidden": 64,
        "ffn": 192,
        "layers": 1,
        "heads": 2,
        "kv_heads": 1,
        "tied": True,
    },
}
PAPER_SHAPES = ("llama-3.1-70b", "llama-3.1-8b")
LARGEST_FIRST = ("llama-3.1-70b", "llama-3.1-8b", "llama-3.2-3b", "llama-3.2-1b")
TINY_FIRST = ("tiny", "tiny-small")

# Dense bf16 tensor-core peaks and HBM bandwidth from the vendors' data sheets.
DEVICES: dict[str, dict] = {
    "H200": {"bf16_flops": 989e12, "bandwidth": 4.8e12},
    "H100 NVL": {"bf16_flops": 835e12, "bandwidth": 3.9e12},
    "H100 PCIe": {"bf16_flops": 756e12, "bandwidth": 2.0e12},
    "H100": {"bf16_flops": 989e12, "bandwidth": 3.35e12},  # SXM
    "A100": {"bf16_flops": 312e12, "bandwidth": 2.039e12},  # 80 GB SXM
    "L40S": {"bf16_flops": 362e12, "bandwidth": 0.864e12},
}

PUBLISHED = {
    "source": "torchtitan (Liang et al., 2024, arXiv 2410.06511; docs/performance.md)",
    "setup": "Llama-3.1-8B, FSDP on 8x H100, bf16, no Float8, activation checkpointing",
    "tokens_per_s_per_gpu": 5762,
    "mfu": [0.33, 0.39],
}

BYTES_PER_PARAM = 16  # fp32 weights + fp32 grads + fp32 AdamW m and v
AUTOCAST_COPY = 2  # the bf16 weight copies autocast caches during a forward
HEADROOM = 0.90  # of the device's memory: allocator fragmentation, CUDA context


def device_spec(name: str) -> dict:
    """The table's entry for a device name as torch reports it ({} figures on a CPU)."""
    for key, spec in DEVICES.items():
        parts = key.split()
        if all(p.lower() in name.lower() for p in parts):
            if key == "H100" and any(v in name for v in ("PCIe", "NVL")):
                continue
            return {"name": name, "table_entry": key, **spec}
    return {"name": name, "table_entry": None, "bf16_flops": None, "bandwidth": None}


def layer_params(shape: dict) -> int:
    d, head_dim = shape["hidden"], shape["hidden"] // shape["heads"]
    attn = 2 * d * d + 2 * d * shape["kv_heads"] * head_dim
    return attn + 3 * d * shape["ffn"] + 2 * d


def param_count(shape: dict) -> int:
    embed = shape["vocab"] * shape["hidden"]
    head = 0 if shape["tied"] else embed
    return embed + head + shape["layers"] * layer_params(shape) + shape["hidden"]


def flops_per_token(shape: dict, context: float) -> float:
    """Model FLOPs per trained token, torchtitan's convention: 6 x the matmul parameters
    (the layers and the LM head, tied or not) + 12 x layers x hidden x the attended
    context (for packed rows, sum of squared example lengths / tokens)."""
    matmul = shape["layers"] * layer_params(shape) + shape["vocab"] * shape["hidden"]
    return 6 * matmul + 12 * shape["layers"] * shape["hidden"] * context


def memory_estimate(shape: dict, tokens: int) -> dict[str, float]:
    """Bytes a full fine-tune of ``shape`` needs with ``tokens`` per micro-batch, under
    activation checkpointing: states, autocast copies, the saved layer inputs (fp32
    residual stream), one layer's recomputed working set, and the logits (bf16, their
    fp32 upcast for the loss, and its gradient)."""
    n, d = param_count(shape), shape["hidden"]
    parts = {
        "states": BYTES_PER_PARAM * n,
        "autocast_copies": AUTOCAST_COPY * n,
        "checkpoints": shape["layers"] * tokens * d * 4,
        "layer_working_set": tokens * (10 * d + 3 * shape["ffn"]) * 4 * 2,
        "logits": tokens * shape["vocab"] * 10,
        "context": 1.5 * 2**30,
    }
    parts["total"] = sum(parts.values())
    return parts


def fits(shape: dict, tokens: int, device_bytes: int) -> bool:
    return memory_estimate(shape, tokens)["total"] <= HEADROOM * device_bytes


def roofline(shape: dict, spec: dict, batches=(1, 64)) -> dict:
    """COMPUTED, not measured: decode tokens/s bounded by reading the bf16 weights once per
    step (KV-cache reads ignored), and by compute (2 FLOPs per parameter per token)."""
    if not spec.get("bandwidth"):
        return {"computed": True, "note": "no bandwidth figure for this device"}
    weights = 2 * param_count(shape)
    step = weights / spec["bandwidth"]
    compute_bound = spec["bf16_flops"] / (2 * param_count(shape))
    return {
        "computed": True,
        "weight_bytes_bf16": weights,
        "decode_step_seconds_min": round(step, 6),
        "tokens_per_s": {str(b): round(min(b / step, compute_bound), 1) for b in batches},
        "batch_where_compute_bound": round(compute_bound * step, 1),
    }


def sequence_logps(logits, labels, loss_mask):
    """A copy of ``bolt.train.dpo_loss.sequence_logps`` for machines without its imports."""
    import torch

    logits, mask = logits[:, :-1, :], loss_mask[:, 1:].bool()
    targets = torch.where(mask, labels[:, 1:], torch.zeros_like(labels[:, 1:]))
    rows = []
    for row, t in zip(logits, targets, strict=True):
        row = row.float()
        rows.append(row.gather(-1, t.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(row, dim=-1))
    return (torch.stack(rows) * mask).sum(dim=-1)


def dpo_loss(chosen, rejected, ref_chosen, ref_rejected, beta: float = 0.1):
    """A copy of the sigmoid branch of ``bolt.train.dpo_loss.dpo_loss``."""
    from types import SimpleNamespace

    import torch.nn.functional as F

    h = (chosen - ref_chosen) - (rejected - ref_rejected)
    return SimpleNamespace(losses=-F.logsigmoid(beta * h))
