"""DeepSpeed configs: the templates in infra/deepspeed/ with their ``auto`` values filled
from the training config, so the file a job runs with states every number it uses.

What the pipeline config decides (batch sizes, accumulation, precision, clipping) is
filled here; bucket sizes that depend on the model's hidden size stay ``auto`` for the
HF Trainer to fill once the model is loaded (it sizes them from ``hidden_size``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bolt.config import Precision, TrainCommon, ZeroStage

INFRA = Path(__file__).resolve().parents[2] / "infra"
# The HF Trainer's default max_grad_norm; the trainer is built with the same value.
GRADIENT_CLIPPING = 1.0


def template_path(zero: ZeroStage) -> Path:
    return INFRA / "deepspeed" / f"{zero.value}.json"


def deepspeed_config(train: TrainCommon, world_size: int, accumulation: int) -> dict[str, Any]:
    """The DeepSpeed config of one job: ``infra/deepspeed/<zero>.json`` filled in."""
    path = template_path(train.zero)
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"no DeepSpeed template {path} for zero={train.zero}") from None
    config["bf16"]["enabled"] = train.precision == Precision.bf16
    config["fp16"]["enabled"] = train.precision == Precision.fp16
    config["train_micro_batch_size_per_gpu"] = train.micro_batch_size
    config["gradient_accumulation_steps"] = accumulation
    config["train_batch_size"] = train.micro_batch_size * accumulation * world_size
    config["gradient_clipping"] = GRADIENT_CLIPPING
    return config
