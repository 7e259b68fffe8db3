"""Training arithmetic and the memory estimate, checked by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bolt.config import Precision, ZeroStage
from bolt.config_loader import load_config
from bolt.train.deepspeed import deepspeed_config
from bolt.train.plan import (
    PUBLISHED_SHAPES,
    ModelShape,
    PlanError,
    check_fits,
    estimate_memory,
    gpu_memory_gib,
    gradient_accumulation,
)

REPO = Path(__file__).resolve().parents[2]

LLAMA_8B_CONFIG = {
    "hidden_size": 4096,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "intermediate_size": 14336,
    "vocab_size": 128256,
    "tie_word_embeddings": False,
}


def test_accumulation_follows_the_world_size():
    assert gradient_accumulation(128, 1, 8) == 16  # paper-8b: one 8-GPU node
    assert gradient_accumulation(128, 1, 64) == 2  # paper-70b: eight nodes
    assert gradient_accumulation(8, 2, 1) == 4
    with pytest.raises(PlanError, match="global_batch_size=128 is not a multiple"):
        gradient_accumulation(128, 3, 8)


def test_parameter_count_matches_the_published_llama_8b():
    shape = ModelShape.from_hf_config(LLAMA_8B_CONFIG)
    assert shape.parameters == PUBLISHED_SHAPES["meta-llama/Llama-3.1-8B-Instruct"].parameters


def test_parameter_count_of_the_tiny_model(smollm2_path):
    import torch
    from transformers import AutoModelForCausalLM

    shape = ModelShape.from_model_dir(smollm2_path)
    model = AutoModelForCausalLM.from_pretrained(smollm2_path, dtype=torch.float32)
    assert shape.parameters == sum(p.numel() for p in model.parameters())


def _estimate(model: str, zero: ZeroStage, nodes: int):
    return estimate_memory(
        PUBLISHED_SHAPES[model],
        zero=zero,
        precision=Precision.bf16,
        world_size=nodes * 8,
        gpus_per_node=8,
        micro_batch=1,
        max_length=16384,
    )


def test_paper_plans_fit_and_bad_plans_are_refused():
    # 8B, ZeRO-3 on 8 GPUs: 16 bytes x 8.03e9 / 8 = 15 GiB of states per GPU.
    e8 = _estimate("meta-llama/Llama-3.1-8B-Instruct", ZeroStage.zero3, 1)
    assert e8.states_gib == pytest.approx(16 * 8.03e9 / 8 / 2**30, rel=1e-3)
    check_fits(e8, "H100-80GB", "paper-8b")
    check_fits(
        _estimate("meta-llama/Llama-3.1-70B-Instruct", ZeroStage.zero3, 8), "H100-80GB", "70b"
    )
    # 70B on one node cannot hold 16 bytes x 70.6e9 / 8 = 131 GiB per GPU.
    one_node = _estimate("meta-llama/Llama-3.1-70B-Instruct", ZeroStage.zero3, 1)
    with pytest.raises(PlanError, match=r"needs ~\d+ GiB per GPU .* H100-80GB has 80 GiB"):
        check_fits(one_node, "H100-80GB", "paper-70b on 1 node")
    # ZeRO-2 keeps the full 16-bit weights on every GPU: 141 GB of 70B weights.
    with pytest.raises(PlanError):
        check_fits(
            _estimate("meta-llama/Llama-3.1-70B-Instruct", ZeroStage.zero2, 8), "H100-80GB", "z2"
        )
    offload = _estimate("meta-llama/Llama-3.1-70B-Instruct", ZeroStage.zero3_offload, 1)
    # 2 bytes of weights + 12 of optimizer states per parameter live on the hosts.
    assert offload.per_node_host_gib == pytest.approx(14 * 70_553_706_496 / 2**30)


def test_gpu_memory_is_read_from_the_type_name():
    assert gpu_memory_gib("H100-80GB") == 80 and gpu_memory_gib("a100-40gb") == 40
    with pytest.raises(PlanError, match="compute.gpu_type"):
        gpu_memory_gib("H100")


def test_deepspeed_templates_are_filled_from_the_config():
    cfg = load_config(REPO / "configs/paper-8b.yaml")
    ds = deepspeed_config(cfg.sft, world_size=8, accumulation=16)
    assert ds["zero_optimization"]["stage"] == 3
    assert ds["bf16"]["enabled"] is True and ds["fp16"]["enabled"] is False
    assert ds["train_batch_size"] == 128 and ds["gradient_accumulation_steps"] == 16
    # Only model-size-dependent bucket sizes stay for the HF Trainer to fill.
    autos = {k for k, v in ds["zero_optimization"].items() if v == "auto"}
    assert autos <= {
        "reduce_bucket_size",
        "stage3_prefetch_bucket_size",
        "stage3_param_persistence_threshold",
    }
    assert "auto" not in json.dumps({k: v for k, v in ds.items() if k != "zero_optimization"})
    for zero in ZeroStage:
        offload = deepspeed_config(cfg.sft.model_copy(update={"zero": zero}), 8, 16)[
            "zero_optimization"
        ]
        assert ("offload_param" in offload) == (zero == ZeroStage.zero3_offload)


def test_paper_configs_carry_the_paper_hyperparameters():
    for name in ("paper-8b", "paper-70b"):
        sft = load_config(REPO / f"configs/{name}.yaml").sft
        assert (sft.epochs, sft.lr, sft.scheduler, sft.warmup_ratio) == (4, 2e-5, "cosine", 0.1)
        assert (sft.optimizer, sft.global_batch_size, sft.max_length) == ("adamw_torch", 128, 16384)
        assert sft.precision == Precision.bf16
