"""LongCoT SFT for real on CPU: SmolLM2-135M-Instruct under DeepSpeed ZeRO-2 and ZeRO-3
(ARCHITECTURE.md §6: one process with RANK/WORLD_SIZE/MASTER_* set, or torchrun with gloo),
the model stored in moto's S3 server, reloaded and generating; two processes match one
on the same global batch. Kills and resumes are tests/reliability/test_training_crash_resume.py's
job (five seeded kills per stage on a tiny model).

Kept small on purpose (a step costs ~10 s per 100 tokens on this 2-core machine): 8
hand-written examples of ~40 tokens, max_length 64 (one example per packed row), 2
sequences per step, 2-3 steps, one thread per process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bolt.config import PipelineConfig, ZeroStage
from bolt.records import Message, SftExample
from bolt.stages import Stage
from bolt.store import ArtifactStore, Manifest
from bolt.train.fingerprints import sft_fingerprint
from tests.conftest import REPO, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOPICS = ["rain", "bread", "chess", "rivers", "stars", "tea", "bees", "glass"]
SFT_SET_FP = "handwritten00001"


def _examples() -> list[SftExample]:
    """Short conversations (a system turn replaces SmolLM2's long default one)."""
    return [
        SftExample(
            id=f"e{i}",
            query_id=f"q{i}",
            messages=[
                Message(role="system", content="Be brief."),
                Message(role="user", content=f"A fact about {topic}?"),
                Message(
                    role="assistant",
                    content=f"<thoughts>\nRecall {topic}.\n</thoughts>\n\n"
                    f"<response>\n{topic.title()} is worth study.\n</response>",
                ),
            ],
        )
        for i, topic in enumerate(TOPICS)
    ]


def _config(tiny_config, root: str, endpoint: str | None = None, **sft) -> PipelineConfig:
    storage = tiny_config.storage.model_copy(
        update={
            "root": root,
            "s3": tiny_config.storage.s3.model_copy(update={"endpoint_url": endpoint}),
        }
    )
    settings = {
        "max_length": 64,
        "global_batch_size": 2,
        "micro_batch_size": 1,
        "lr": 1e-4,
        "warmup_ratio": 0.0,
        "max_steps": 3,
        "save_steps": 100,
        "gradient_checkpointing": False,
        **sft,
    }
    return tiny_config.model_copy(
        update={"storage": storage, "sft": tiny_config.sft.model_copy(update=settings)}
    )


def _sft_set(cfg: PipelineConfig) -> Manifest:
    """The hand-written set committed as the filter stage would commit it."""
    store = ArtifactStore.from_config(cfg.storage)
    shard = store.write_shard("filter", SFT_SET_FP, 0, _examples())
    return store.commit(
        Manifest(
            stage="filter", fingerprint=SFT_SET_FP, code_version="1", config={}, shards=[shard]
        )
    )


def _launch(cfg: PipelineConfig, tmp: Path, nproc: int = 1) -> subprocess.Popen:
    config = tmp / "config.yaml"
    config.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    entry = ["-m", "bolt.train.sft", "--config", str(config), "--sft-set", SFT_SET_FP]
    entry += ["--work-dir", str(tmp / "work")]
    if nproc == 1:
        env |= {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "MASTER_PORT": str(free_port())}
        command = [sys.executable, *entry]
    else:
        torchrun = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}"]
        command = [*torchrun, f"--master_port={free_port()}", *entry]
    log = open(tmp / "train.log", "w")  # noqa: SIM115 (closed with the process)
    return subprocess.Popen(
        command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def _train(cfg: PipelineConfig, tmp: Path, nproc: int = 1, timeout: float = 600) -> Manifest:
    process = _launch(cfg, tmp, nproc)
    assert process.wait(timeout=timeout) == 0, (tmp / "train.log").read_text()[-4000:]
    store = ArtifactStore.from_config(cfg.storage)
    return store.require(Stage.sft, sft_fingerprint(cfg, SFT_SET_FP))


def _generate(store: ArtifactStore, manifest: Manifest, dest: Path) -> str:
    """Reload the stored model and let it answer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = store.get_dir(manifest, "model", dest)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Tell me one fact about tea."}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    out = model.generate(**prompt, max_new_tokens=6, do_sample=False)
    return tokenizer.decode(out[0, prompt["input_ids"].shape[1] :], skip_special_tokens=True)


def _losses(manifest: Manifest) -> list[float]:
    return [loss for _, loss in manifest.stats["loss_curve"]]


@pytest.fixture(scope="module")
def zero3_run(tiny_config, smollm2_path, s3_endpoint, tmp_path_factory):
    """One ZeRO-3 process training into moto S3 (shared by two tests)."""
    import boto3

    bucket = "bolt-sft-zero3"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=bucket)
    cfg = _config(
        tiny_config,
        f"s3://{bucket}/run",
        s3_endpoint,
        zero=ZeroStage.zero3,
        gradient_checkpointing=True,
    )
    _sft_set(cfg)
    return cfg, _train(cfg, tmp_path_factory.mktemp("zero3"))


def test_zero2_trains_through_the_flow_into_s3_and_the_model_generates(
    tiny_config, smollm2_path, s3_endpoint, s3_bucket, prefect_api, tmp_path
):
    from flows.sft import sft_flow

    cfg = _config(tiny_config, f"s3://{s3_bucket}/run", s3_endpoint, zero=ZeroStage.zero2)
    manifest = sft_flow(cfg, _sft_set(cfg))
    losses = _losses(manifest)
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert manifest.upstream == {"filter": SFT_SET_FP} and manifest.stats["tokens_per_s"] > 0
    files = {f.path for f in manifest.files}
    assert {"model/model.safetensors", "model/README.md", "loss.png", "metrics.json"} <= files
    store = ArtifactStore.from_config(cfg.storage)
    assert store.uri(Stage.sft, manifest.fingerprint).startswith(f"s3://{s3_bucket}/")
    assert _generate(store, manifest, tmp_path / "model").strip()


def test_zero3_trains_into_s3_and_the_model_generates(zero3_run, tmp_path):
    cfg, manifest = zero3_run
    assert manifest.config["sft"]["zero"] == "zero3"
    losses = _losses(manifest)
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert _generate(ArtifactStore.from_config(cfg.storage), manifest, tmp_path / "m").strip()


def test_two_processes_match_one_on_the_same_global_batch(zero3_run, tmp_path):
    single_cfg, single = zero3_run
    cfg = _config(single_cfg, f"file://{tmp_path}/store", zero=ZeroStage.zero3, max_steps=2)
    _sft_set(cfg)
    double = _train(cfg, tmp_path, nproc=2)
    assert double.stats["world_size"] == 2 and single.stats["world_size"] == 1
    # Step 1 sees the same 2 sequences before any update; step 2 after the same update.
    assert _losses(double) == pytest.approx(_losses(single)[:2], rel=2e-3)
