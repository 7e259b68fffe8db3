"""A small, randomly initialised Llama reward model, saved like a real one.

Tests and ``bench/reward_batching.py`` need a sequence-classification reward model
that runs on a CPU and is loaded through exactly the code that loads
ArmoRM-Llama3-8B or Skywork-Reward-Llama-3.1-8B (``AutoModelForSequenceClassification``
from a folder with ``config.json``, weights, tokenizer and chat template), without
downloading any weights. Its scores mean nothing; that they are the same however the
items are batched is what the tests check.
"""

from __future__ import annotations

from pathlib import Path


def save_random_reward_model(
    tokenizer_dir: str | Path,
    out_dir: str | Path,
    *,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    seed: int = 0,
) -> Path:
    """Save a ``LlamaForSequenceClassification`` (one label) with random weights and the
    tokenizer (and chat template) of ``tokenizer_dir`` to ``out_dir``; return ``out_dir``."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 3,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=8192,
        num_labels=1,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForSequenceClassification(config).eval()
    out_dir = Path(out_dir)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir
