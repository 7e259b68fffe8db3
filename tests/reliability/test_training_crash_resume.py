"""Crash and resume of training: SFT, DPO (plain, and DRIFT's with its NLL term) and GRPO
jobs (DeepSpeed ZeRO-2, one CPU process) are SIGKILLed at seeded random points, five
times each, then run to the end. A kill lands a seeded random delay after a seeded
number of checkpoints reached the store, so some land mid-step and some
mid-checkpoint-upload. Each relaunch runs either on the same node (its local checkpoint
folder survives) or on a fresh one (a seeded coin: an empty work folder, so the
checkpoint comes back from the store).

Checked: no kill commits a manifest; every relaunch starts at the step after the last
checkpoint in the store (a consistent step, nothing trained twice or skipped); the
losses of the resumed steps equal an uninterrupted run's at the same steps (the model,
optimizer and data order all came back); the final weights match that run's.

The model is a 2-layer random Llama with SmolLM2's tokenizer: the point is the resume
machinery, and a 135M model would make each of the twelve launches per stage cost
a minute on this CPU.
"""

from __future__ import annotations

import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from bolt.config import ModelEntry, OnlineAlgorithm, PipelineConfig, Precision, ZeroStage
from bolt.records import GroupSample, Message, PreferencePair, SftExample
from bolt.stages import Stage
from bolt.store import ArtifactStore, Manifest
from bolt.train.checkpoints import completed_steps
from bolt.train.fingerprints import (
    grpo_policy_fingerprint,
    policy_fingerprint,
    rpo_alpha,
    sft_fingerprint,
)
from bolt.train.progress import parse_progress
from bolt.train.reference import run_reference
from tests.conftest import REPO, free_port

pytestmark = [pytest.mark.slow, pytest.mark.integration]

KILLS = 5
STEPS = 12
TOPICS = ["rain", "bread", "chess", "rivers", "stars", "tea", "bees", "glass"]


@pytest.fixture(scope="module")
def tiny_llama(smollm2_path, tmp_path_factory) -> Path:
    """A 2-layer, 64-wide random Llama with SmolLM2's tokenizer and chat template."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("tiny-llama")
    tokenizer = AutoTokenizer.from_pretrained(smollm2_path)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _config(tiny_config, tiny_llama: Path, root: Path) -> PipelineConfig:
    training = {
        "max_length": 64,
        "global_batch_size": 2,
        "micro_batch_size": 1,
        "lr": 1e-3,
        "warmup_ratio": 0.0,
        "max_steps": STEPS,
        "save_steps": 1,
        "zero": ZeroStage.zero2,
        "precision": Precision.fp32,
        "gradient_checkpointing": False,
    }
    catalog = {**tiny_config.models.catalog, "tiny-llama": ModelEntry(path=str(tiny_llama))}
    return tiny_config.model_copy(
        update={
            "storage": tiny_config.storage.model_copy(update={"root": f"file://{root}/store"}),
            "models": tiny_config.models.model_copy(update={"catalog": catalog}),
            "sft": tiny_config.sft.model_copy(update={**training, "base_model": "tiny-llama"}),
            "online": tiny_config.online.model_copy(update=training),
        }
    )


class Job:
    """One training job, launched as the cluster would (RANK/WORLD_SIZE set, own session)."""

    def __init__(self, cfg: PipelineConfig, root: Path, module: str, args: list[str]):
        self.root, self.module, self.args = root, module, args
        self.config = root / "config.yaml"
        root.mkdir(parents=True, exist_ok=True)
        self.config.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
        self.launches = 0

    def launch(self, work_dir: Path) -> tuple[subprocess.Popen, Path]:
        self.launches += 1
        env = {
            **os.environ,
            "OMP_NUM_THREADS": "1",
            "MASTER_ADDR": "127.0.0.1",
            "PYTHONUNBUFFERED": "1",
        }
        env |= {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "MASTER_PORT": str(free_port())}
        command = [sys.executable, "-m", self.module, "--config", str(self.config), *self.args]
        log = self.root / f"launch-{self.launches}.log"
        with open(log, "w") as out:
            process = subprocess.Popen(
                [*command, "--work-dir", str(work_dir)],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return process, log

    def run(self, work_dir: Path) -> list[int]:
        process, log = self.launch(work_dir)
        assert process.wait(timeout=600) == 0, log.read_text()[-4000:]
        return _steps(log)


def _steps(log: Path) -> list[int]:
    return [r["step"] for r in map(parse_progress, log.read_text().splitlines()) if r]


def _losses(manifest: Manifest) -> dict[int, float]:
    return {step: loss for step, loss in manifest.stats["loss_curve"]}


def _kill_repeatedly(job: Job, store: ArtifactStore, stage: str, fp: str, rng: random.Random):
    """KILLS launches, each SIGKILLed a seeded delay after a seeded number (1-2) of new
    checkpoints reached the store; returns the work folder the next launch should use."""
    work = job.root / "node-0"
    for kill in range(1, KILLS + 1):
        before = max(completed_steps(store, stage, fp), default=0)
        target = before + rng.randint(1, 2)
        process, log = job.launch(work)
        deadline = time.monotonic() + 300
        while max(completed_steps(store, stage, fp), default=0) < target:
            assert process.poll() is None, log.read_text()[-4000:]
            assert time.monotonic() < deadline, f"checkpoint {target} not in time"
            time.sleep(0.05)
        time.sleep(rng.uniform(0, 0.3))  # mid-step, or mid-upload of the next checkpoint
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        assert store.manifest(stage, fp) is None, "a killed job committed"
        steps = _steps(log)
        assert steps[0] == before + 1, (before, steps)  # resumed right after the stored step
        if rng.random() < 0.5:  # the node is replaced: nothing local survives
            work = job.root / f"node-{kill}"
    return work


def _assert_same_weights(got: tuple[ArtifactStore, Manifest], want: tuple, dest: Path):
    from safetensors.torch import load_file

    def weights(store: ArtifactStore, manifest: Manifest, name: str) -> dict:
        folder = store.get_dir(manifest, "model", dest / name)
        return load_file(folder / "model.safetensors")

    a, b = weights(*got, "resumed"), weights(*want, "reference")
    assert a.keys() == b.keys()
    for key in a:
        assert (a[key] - b[key]).abs().max().item() <= 1e-5, key


def _check_resumed_run(job, store, stage, fp, work, reference: tuple, tmp: Path) -> Manifest:
    last = max(completed_steps(store, stage, fp))
    assert job.run(work) == list(range(last + 1, STEPS + 1))
    manifest = store.require(stage, fp)
    assert manifest.stats["resumed_from_step"] == last
    resumed, want = _losses(manifest), _losses(reference[1])
    assert resumed == pytest.approx({s: want[s] for s in resumed}, rel=1e-4, abs=1e-5)
    _assert_same_weights((store, manifest), reference, tmp / "weights")
    return manifest


def test_sft_survives_five_seeded_kills(tiny_config, tiny_llama, tmp_path, fault_ledger):
    rng = random.Random(20250301)
    runs = {}
    for name in ("reference", "crashed"):
        cfg = _config(tiny_config, tiny_llama, tmp_path / name)
        store = ArtifactStore.from_config(cfg.storage)
        shard = store.write_shard("filter", "sft-set", 0, _sft_examples())
        store.commit(
            Manifest(
                stage="filter", fingerprint="sft-set", code_version="1", config={}, shards=[shard]
            )
        )
        job = Job(cfg, tmp_path / name, "bolt.train.sft", ["--sft-set", "sft-set"])
        runs[name] = (store, sft_fingerprint(cfg, "sft-set"), job)

    store, fp, job = runs["reference"]
    assert job.run(tmp_path / "reference" / "node") == list(range(1, STEPS + 1))
    reference = (store, store.require(Stage.sft, fp))

    store, fp, job = runs["crashed"]
    work = _kill_repeatedly(job, store, Stage.sft, fp, rng)
    _check_resumed_run(job, store, Stage.sft, fp, work, reference, tmp_path)
    fault_ledger.record("sigkill_sft", injected=KILLS, recovered=KILLS, lost=0)


@pytest.mark.parametrize(
    ("algorithm", "seed", "row"),
    [
        (OnlineAlgorithm.dpo, 20250302, "sigkill_dpo"),
        (OnlineAlgorithm.drift, 20250304, "sigkill_drift"),
    ],
    ids=["dpo", "drift"],
)
def test_dpo_survives_five_seeded_kills(
    tiny_config, tiny_llama, tmp_path, fault_ledger, algorithm, seed, row
):
    """DRIFT trains with the same job, its loss the DPO loss plus rpo_alpha times the
    chosen side's NLL (configs/paper-drift-7b.yaml: 0.001), so the kills cover that path."""
    rng = random.Random(seed)
    runs = {}
    for name in ("reference", "crashed"):
        cfg = _config(tiny_config, tiny_llama, tmp_path / name)
        drift = cfg.online.drift.model_copy(update={"rpo_alpha": 0.001})
        online = cfg.online.model_copy(update={"algorithm": algorithm, "drift": drift})
        cfg = cfg.model_copy(update={"online": online})
        store = ArtifactStore.from_config(cfg.storage)
        shard = store.write_shard(Stage.online_pairs, "pairs", 0, _pairs())
        pairs = store.commit(
            Manifest(
                stage=Stage.online_pairs,
                fingerprint="pairs",
                code_version="1",
                config={},
                shards=[shard],
            )
        )
        reference = run_reference(cfg, store, pairs, "tiny-llama", str(tiny_llama))
        initial = "catalog/tiny-llama"
        fp = policy_fingerprint(cfg, pairs.fingerprint, reference.fingerprint, initial, 1)
        args = ["--iteration", "1", "--policy", initial, "--pairs", "pairs"]
        args += ["--reference", reference.fingerprint, "--fingerprint", fp]
        runs[name] = (store, fp, Job(cfg, tmp_path / name, "bolt.train.dpo", args))

    store, fp, job = runs["reference"]
    assert job.run(tmp_path / "reference" / "node") == list(range(1, STEPS + 1))
    reference = (store, store.require(Stage.online_policy, fp))
    # Step 1 starts at the reference model, where the DPO loss is ln 2; DRIFT's NLL term
    # (a random model's chosen-token NLL is ~ln of the vocabulary) adds well over alpha.
    excess = _losses(reference[1])[1] - math.log(2)
    alpha = rpo_alpha(cfg.online)
    assert alpha == (0.001 if algorithm == OnlineAlgorithm.drift else 0.0)
    assert excess > alpha if alpha else excess == pytest.approx(0, abs=1e-4)

    store, fp, job = runs["crashed"]
    work = _kill_repeatedly(job, store, Stage.online_policy, fp, rng)
    _check_resumed_run(job, store, Stage.online_policy, fp, work, reference, tmp_path)
    fault_ledger.record(row, injected=KILLS, recovered=KILLS, lost=0)


def test_grpo_survives_five_seeded_kills(tiny_config, tiny_llama, tmp_path, fault_ledger):
    rng = random.Random(20250303)
    runs = {}
    for name in ("reference", "crashed"):
        cfg = _config(tiny_config, tiny_llama, tmp_path / name)
        store = ArtifactStore.from_config(cfg.storage)
        shard = store.write_shard(Stage.online_groups, "groups", 0, _groups())
        store.commit(
            Manifest(
                stage=Stage.online_groups,
                fingerprint="groups",
                code_version="1",
                config={},
                shards=[shard],
            )
        )
        initial = "catalog/tiny-llama"
        fp = grpo_policy_fingerprint(cfg, "groups", initial, initial, 1)
        args = ["--iteration", "1", "--policy", initial, "--reference-model", initial]
        args += ["--groups", "groups", "--fingerprint", fp]
        runs[name] = (store, fp, Job(cfg, tmp_path / name, "bolt.train.grpo", args))

    store, fp, job = runs["reference"]
    assert job.run(tmp_path / "reference" / "node") == list(range(1, STEPS + 1))
    reference = (store, store.require(Stage.online_policy, fp))
    assert reference[1].stats["final_kl"] > 0  # the policy moved away from its reference

    store, fp, job = runs["crashed"]
    work = _kill_repeatedly(job, store, Stage.online_policy, fp, rng)
    _check_resumed_run(job, store, Stage.online_policy, fp, work, reference, tmp_path)
    fault_ledger.record("sigkill_grpo", injected=KILLS, recovered=KILLS, lost=0)


def _groups() -> list[GroupSample]:
    """Two samples per prompt: a well-formed answer (advantage +1) and a repetition (-1)."""
    rows = []
    for i, topic in enumerate(TOPICS[:4]):
        prompt = [Message(role="user", content=f"One line on {topic}?")]
        good = f"<thoughts>\nThink of {topic}.\n</thoughts>\n\n<response>\n{topic} matters.\n</response>"
        for index, (text, advantage) in enumerate(((good, 1.0), (f"{topic} {topic}", -1.0))):
            rows.append(
                GroupSample(
                    prompt_id=f"p{i}",
                    prompt=prompt,
                    completion=text,
                    sample_index=index,
                    reward=advantage,
                    advantage=advantage,
                    iteration=1,
                )
            )
    return rows


def _sft_examples() -> list[SftExample]:
    return [
        SftExample(
            id=f"e{i}",
            query_id=f"q{i}",
            messages=[
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


def _pairs() -> list[PreferencePair]:
    return [
        PreferencePair(
            prompt_id=f"p{i}",
            prompt=[Message(role="user", content=f"One line on {topic}?")],
            chosen=f"<thoughts>\nThink of {topic}.\n</thoughts>\n\n<response>\n{topic} matters.\n</response>",
            rejected=f"{topic} {topic} {topic}",
            chosen_reward=1.0,
            rejected_reward=0.0,
            iteration=1,
        )
        for i, topic in enumerate(TOPICS[:4])
    ]
