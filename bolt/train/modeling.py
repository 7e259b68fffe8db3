"""Loading a causal LM for training or for scoring (the DPO reference pass), on the
configured device, and the pad token every collation uses."""

from __future__ import annotations

import logging
import os

from bolt.config import Precision

log = logging.getLogger(__name__)


def job_device(device: str) -> str:
    """The torch device of this process: ``cuda`` means the job's local-rank GPU."""
    if device == "cuda":
        return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    return device


def load_model(model_dir: str, precision: Precision, device: str):
    """The model in ``precision`` on ``device`` (``cuda``: the local rank's GPU), with
    flash attention on CUDA where it is installed. Under ZeRO-3 the weights are already
    partitioned by DeepSpeed at load time, so they are left where it put them."""
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.integrations import is_deepspeed_zero3_enabled

    dtype = {Precision.bf16: torch.bfloat16, Precision.fp16: torch.float16}.get(
        precision, torch.float32
    )
    attention = "sdpa"
    if device == "cuda":
        from transformers.utils import is_flash_attn_2_available

        attention = "flash_attention_2" if is_flash_attn_2_available() else "sdpa"
    model = AutoModelForCausalLM.from_pretrained(
        model_dir, dtype=dtype, attn_implementation=attention
    )
    # A cache during training would also switch off the packed-sequence mask.
    model.config.use_cache = False
    if not is_deepspeed_zero3_enabled():
        model = model.to(job_device(device))
    return model


def pad_token_id(tokenizer) -> int:
    """The id that pads a batch: the tokenizer's pad token, else its EOS, else its UNK,
    else 0. Llama-3.1 and Mistral-v0.3 ship without a pad token; padded positions carry
    no loss and no attention, so any id serves, and the choice is logged once per call."""
    for name in ("pad", "eos", "unk"):
        value = getattr(tokenizer, f"{name}_token_id", None)
        if value is not None:
            if name != "pad":
                log.warning("the tokenizer has no pad token: padding with its %s token", name)
            return int(value)
    log.warning("the tokenizer has no pad, eos or unk token: padding with id 0")
    return 0
