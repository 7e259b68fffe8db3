"""Loading a causal LM for training or for scoring (the DPO reference pass)."""

from __future__ import annotations

from bolt.config import Precision


def load_model(model_dir: str, precision: Precision, device: str):
    """The model in ``precision``, with flash attention on CUDA where it is installed."""
    import torch
    from transformers import AutoModelForCausalLM

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
    return model
