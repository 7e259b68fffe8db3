"""bench/gpu_shapes.py: its arithmetic (shapes, memory fit, device table, roofline) and a
CPU run with tiny shapes, which must import neither vLLM nor DeepSpeed (the measuring
machine has neither)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

from gpu_roofline import (
    SHAPES,
    device_spec,
    fits,
    flops_per_token,
    param_count,
    roofline,
)

H200_BYTES = 143771 * 2**20  # what torch reports for a 141 GB H200


@pytest.mark.parametrize(
    ("shape", "billions"),
    [
        ("llama-3.1-8b", 8.03),
        ("llama-3.2-3b", 3.21),
        ("llama-3.2-1b", 1.24),
        ("llama-3.1-70b", 70.55),
    ],
)
def test_param_counts_match_the_published_models(shape, billions):
    assert param_count(SHAPES[shape]) / 1e9 == pytest.approx(billions, abs=0.01)


def test_the_largest_llama_that_fits_an_h200_for_full_fine_tuning_is_3b():
    tokens = 2 * 8192  # a DPO micro-batch: chosen and rejected rows of 8192
    assert not fits(SHAPES["llama-3.1-8b"], tokens, H200_BYTES)  # 16 B/param alone: 120 GiB
    assert fits(SHAPES["llama-3.2-3b"], tokens, H200_BYTES)


@pytest.mark.parametrize(
    ("name", "entry"),
    [
        ("NVIDIA H200", "H200"),
        ("NVIDIA H100 80GB HBM3", "H100"),
        ("NVIDIA H100 PCIe", "H100 PCIe"),
        ("NVIDIA H100 NVL", "H100 NVL"),
        ("NVIDIA A100-SXM4-80GB", "A100"),
        ("NVIDIA L40S", "L40S"),
        ("CPU (x86_64)", None),
    ],
)
def test_device_table(name, entry):
    assert device_spec(name)["table_entry"] == entry


def test_model_flops_and_the_decode_roofline():
    shape = SHAPES["llama-3.1-8b"]
    # ~6N for short contexts, plus the attention term.
    assert flops_per_token(shape, 0) / 6 == pytest.approx(
        param_count(shape) - 128256 * 4096, rel=1e-6
    )
    assert flops_per_token(shape, 4096) > flops_per_token(shape, 1024)
    roof = roofline(shape, device_spec("NVIDIA H200"))
    assert roof["computed"] is True
    # 16 GB of bf16 weights over 4.8 TB/s: ~3.3 ms a step, ~300 tokens/s at batch 1.
    assert roof["tokens_per_s"]["1"] == pytest.approx(299, rel=0.01)


@pytest.mark.slow  # imports transformers and trains: ~15 s idle, a minute on a loaded host
def test_tiny_cpu_run_writes_its_figures_without_vllm_or_deepspeed(tmp_path):
    out = tmp_path / "gpu_shapes.json"
    argv = [
        "bench/gpu_shapes.py",
        "--device",
        "cpu",
        "--tiny",
        "--shape",
        "tiny-small",
        "--max-length",
        "96",
        "--median-length",
        "32",
        "--steps",
        "1",
        "--warmup",
        "0",
        "--accumulation",
        "1",
        "--out",
        str(out),
    ]
    script = (
        "import runpy, sys\n"
        f"sys.argv = {argv!r}\n"
        "runpy.run_path('bench/gpu_shapes.py', run_name='__main__')\n"
        "loaded = sorted(m for m in ('vllm', 'deepspeed') if m in sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", script], cwd=REPO, check=True, timeout=600)
    result = json.loads(out.read_text())
    assert result["tested_on"].startswith("CPU with tiny shapes: GPU figures pending")
    assert result["shape"] == "tiny-small"
    for task in ("sft", "dpo"):
        assert result[task]["tokens_per_s"] > 0
        assert result[task]["mfu"] is None  # no peak figure for a CPU
    assert result["generation_roofline_computed"]["computed"] is True
