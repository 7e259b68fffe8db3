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


def test_each_model_is_evaluated_right_after_the_next_iteration_samples_from_it(
    tiny, tmp_path, monkeypatch
):
    """The loop's order: a model's quick evaluation runs once the next iteration has
    sampled from it (its engine still live), the last policy's after the loop; a step
    that never signals still gets every evaluation, in the same order."""
    from flows import online_methods

    cfg = _with(tiny, iterations=2).model_copy(
        update={"storage": tiny.storage.model_copy(update={"root": f"file://{tmp_path}/store"})}
    )
    cache = tmp_path / "models"

    def manifest(stage: str, fp: str) -> Manifest:
        (cache / stage / fp).mkdir(parents=True)
        (cache / stage / fp / "config.json").write_text("{}")  # already fetched
        return Manifest(stage=stage, fingerprint=fp, code_version="1", config={})

    monkeypatch.setattr(online_methods, "report_stage", lambda *a: None)
    trajectory = Manifest(stage="eval_trajectory", fingerprint="t", code_version="1", config={})
    monkeypatch.setattr(online_methods, "run_trajectory", lambda store, evaluations: trajectory)
    events: list[tuple] = []

    def evaluate(model_dir: str, label: str) -> Manifest:
        events.append(("eval", label, Path(model_dir).name))
        return Manifest(stage="eval", fingerprint=f"e-{label}", code_version="1", config={})

    def loop(signals: bool) -> list[tuple]:
        events.clear()

        def step(iteration, policy_id, policy_dir, sft_id, sampled):
            events.append(("sample", iteration, Path(policy_dir).name))
            if signals:
                sampled()
            events.append(("train", iteration))
            return manifest("online-policy", f"p{iteration}-{signals}")

        sft = manifest("sft", f"s-{signals}")
        kept = online_methods.run_iterations(cfg, sft, step, evaluate, cache)
        assert kept.fingerprint == f"p2-{signals}"
        return events.copy()

    assert loop(signals=True) == [
        ("sample", 1, "s-True"),
        ("eval", "SFT", "s-True"),
        ("train", 1),
        ("sample", 2, "p1-True"),
        ("eval", "DPO-1", "p1-True"),
        ("train", 2),
        ("eval", "DPO-2", "p2-True"),
    ]
    assert [e for e in loop(signals=False) if e[0] == "eval"] == [
        ("eval", "SFT", "s-False"),
        ("eval", "DPO-1", "p1-False"),
        ("eval", "DPO-2", "p2-False"),
    ]
