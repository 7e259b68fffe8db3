"""online.algorithm: the config's rules, what enters the policy fingerprints, and the
reward-hacking guard's choice of the policy to keep (GRPO's keep_best_by)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from bolt.config import (
    BenchmarkName,
    DriftConfig,
    GrpoConfig,
    OnlineAlgorithm,
    OnlineConfig,
    QuerySource,
)
from bolt.config_loader import load_config
from bolt.evals.trajectory import best_point
from bolt.store import Manifest
from bolt.train.fingerprints import grpo_policy_fingerprint, policy_fingerprint, rpo_alpha

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny():
    return load_config(REPO / "configs/tiny-cpu.yaml")


def _with(cfg, **online):
    return cfg.model_copy(update={"online": cfg.online.model_copy(update=online)})


def test_the_default_is_dpo_and_grpo_has_rlmts_defaults(tiny):
    assert OnlineConfig.model_fields["algorithm"].default == OnlineAlgorithm.dpo
    g = GrpoConfig()
    assert (g.group_size, g.kl_coef, g.strict_format, g.scale_by_std) == (8, 0.001, True, True)
    assert DriftConfig().rpo_alpha == 0.001


def test_drift_needs_sources_and_keep_best_by_needs_evaluations(tiny):
    data = tiny.online.model_dump()
    with pytest.raises(ValidationError, match="online.drift.sources"):
        OnlineConfig.model_validate({**data, "algorithm": "drift", "drift": None})
    with pytest.raises(ValidationError, match="eval_after_iteration"):
        OnlineConfig.model_validate(
            {
                **data,
                "algorithm": "grpo",
                "grpo": {"keep_best_by": "mt_bench"},
                "eval_after_iteration": False,
            }
        )
    source = QuerySource(name="x", uri="rows.jsonl")
    ok = OnlineConfig.model_validate({**data, "algorithm": "drift", "drift": {"sources": [source]}})
    assert ok.algorithm == OnlineAlgorithm.drift


def test_dpo_policy_fingerprint_ignores_the_other_algorithms_settings(tiny):
    base = policy_fingerprint(tiny, "p" * 16, "r" * 16, "i" * 16, 1)
    other = _with(tiny, grpo=GrpoConfig(kl_coef=0.5), drift=DriftConfig(rpo_alpha=0.5))
    assert policy_fingerprint(other, "p" * 16, "r" * 16, "i" * 16, 1) == base
    assert rpo_alpha(other.online) == 0.0


def test_drift_policy_fingerprint_carries_the_nll_weight(tiny):
    drift = _with(tiny, algorithm=OnlineAlgorithm.drift)
    fp = policy_fingerprint(drift, "p" * 16, "r" * 16, "i" * 16, 1)
    assert fp != policy_fingerprint(tiny, "p" * 16, "r" * 16, "i" * 16, 1)
    heavier = _with(drift, drift=drift.online.drift.model_copy(update={"rpo_alpha": 0.01}))
    assert policy_fingerprint(heavier, "p" * 16, "r" * 16, "i" * 16, 1) != fp
    assert rpo_alpha(heavier.online) == 0.01


def test_grpo_policy_fingerprint(tiny):
    grpo = _with(tiny, algorithm=OnlineAlgorithm.grpo)
    fp = grpo_policy_fingerprint(grpo, "g" * 16, "i" * 16, "r" * 16, 1)
    assert fp != grpo_policy_fingerprint(grpo, "g" * 16, "i" * 16, "r" * 16, 2)
    assert fp != grpo_policy_fingerprint(grpo, "g" * 16, "i" * 16, "s" * 16, 1)
    stronger = _with(grpo, grpo=grpo.online.grpo.model_copy(update={"kl_coef": 0.01}))
    assert grpo_policy_fingerprint(stronger, "g" * 16, "i" * 16, "r" * 16, 1) != fp
    # Which checkpoint is kept changes no policy.
    keep = _with(grpo, grpo=grpo.online.grpo.model_copy(update={"keep_best_by": None}))
    assert grpo_policy_fingerprint(keep, "g" * 16, "i" * 16, "r" * 16, 1) == fp
    # Without the KL term the reference model is no input.
    free = _with(grpo, grpo=grpo.online.grpo.model_copy(update={"kl_coef": 0.0}))
    assert grpo_policy_fingerprint(free, "g" * 16, "i" * 16, "r" * 16, 1) == (
        grpo_policy_fingerprint(free, "g" * 16, "i" * 16, "s" * 16, 1)
    )


def test_best_point_takes_the_highest_headline_first_on_ties():
    points = [("A", {"wildbench": 40.0}), ("B", {"wildbench": 45.0}), ("C", {"wildbench": 45.0})]
    assert best_point(points, "wildbench") == 1
    assert best_point([("A", {"wildbench": None}), ("B", {})], "wildbench") is None
    assert best_point([("A", {"wildbench": None}), ("B", {"wildbench": 1.0})], "wildbench") == 1


def test_the_kept_policy_is_the_best_iteration_by_the_chosen_benchmark(tiny, monkeypatch):
    from flows import online_methods

    policies = [
        Manifest(stage="online-policy", fingerprint=f"p{i}", code_version="1", config={})
        for i in (1, 2, 3)
    ]
    evaluations = [(label, None) for label in ("SFT", "GRPO-1", "GRPO-2", "GRPO-3")]
    points = [
        ("SFT", {"mt_bench": 9.0}),  # the SFT model is never a candidate
        ("GRPO-1", {"mt_bench": 5.0}),
        ("GRPO-2", {"mt_bench": 7.0}),  # the best iteration: the reward was over-fit after it
        ("GRPO-3", {"mt_bench": 6.0}),
    ]
    monkeypatch.setattr(online_methods, "trajectory_points", lambda _: points)
    grpo = _with(tiny, algorithm=OnlineAlgorithm.grpo)
    assert grpo.online.grpo.keep_best_by == BenchmarkName.mt_bench
    assert online_methods.kept_policy(grpo, evaluations, policies) == policies[1]
    last = _with(grpo, grpo=grpo.online.grpo.model_copy(update={"keep_best_by": None}))
    assert online_methods.kept_policy(last, evaluations, policies) == policies[2]
    drift = _with(tiny, algorithm=OnlineAlgorithm.drift)
    assert online_methods.kept_policy(drift, evaluations, policies) == policies[2]
    assert online_methods.kept_policy(grpo, [], policies) == policies[2]
