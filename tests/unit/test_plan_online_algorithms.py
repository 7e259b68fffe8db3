"""`bolt plan` of the GRPO and DRIFT paper configs, checked by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from bolt.config_loader import load_config
from bolt.plan import PlanError, plan

REPO = Path(__file__).resolve().parents[2]


def _by_stage(stages):
    return {s.stage: s for s in stages}


def test_rlmt_prices_sampling_scoring_and_grpo_with_its_prepass():
    cfg = load_config(REPO / "configs/paper-rlmt-8b.yaml", [])
    stages = _by_stage(plan(cfg, source_queries=20_000, few_shot_tokens=3_000))
    assert [s for s in stages if s.startswith("online.")][-1] == "online.26.grpo"
    samples = 576 * 8  # prompts per round x group size
    tokens = samples * (200 + 1500)  # mean query + mean output (under 4,096)
    sample = stages["online.1.sample"]
    assert (sample.tokens_read, sample.tokens_generated) == (576 * 200, samples * 1500)
    assert stages["online.1.score"].tokens_read == tokens
    one, two = stages["online.1.grpo"], stages["online.2.grpo"]
    assert one.tokens_read == two.tokens_read == tokens  # one epoch over the samples
    # Round 1: the reference is the initial policy, one pre-pass; later rounds two.
    assert one.flops == pytest.approx(6 * 8.03e9 * tokens + 2 * 8.03e9 * tokens)
    assert two.flops == pytest.approx(6 * 8.03e9 * tokens + 2 * 8.03e9 * 2 * tokens)


def test_drift_prices_revisions_and_dpo_without_scoring():
    cfg = load_config(REPO / "configs/paper-drift-7b.yaml", [])
    stages = _by_stage(plan(cfg, source_queries=733_000, few_shot_tokens=3_000))
    online = [s for s in stages if s.startswith("online.")]
    assert online == ["online.1.revise", "online.1.dpo", "online.2.revise", "online.2.dpo"]
    revise = stages["online.1.revise"]
    assert (revise.tokens_read, revise.tokens_generated) == (20_000 * 600, 20_000 * 512)
    pair_tokens = 20_000 * 2 * (200 + 512)
    assert stages["online.1.dpo"].tokens_read == pair_tokens
    unset = cfg.model_copy(update={"plan": cfg.plan.model_copy(update={"feedback_rows": None})})
    with pytest.raises(PlanError, match="feedback_rows"):
        plan(unset, source_queries=733_000, few_shot_tokens=3_000)
