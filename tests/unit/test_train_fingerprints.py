"""What forks a trained model's fingerprint, and what does not."""

from __future__ import annotations

from bolt.config_loader import load_config
from bolt.train.fingerprints import policy_fingerprint, sft_fingerprint
from tests.conftest import TINY_CONFIG


def _cfg(*overrides: str):
    return load_config(TINY_CONFIG, list(overrides))


def test_iteration_count_and_memory_knobs_leave_a_policy_alone():
    base = policy_fingerprint(_cfg(), "pairs", "ref", "sft/x", 1)
    assert policy_fingerprint(_cfg("online.iterations=5"), "pairs", "ref", "sft/x", 1) == base
    flipped = _cfg("online.gradient_checkpointing=false")
    assert policy_fingerprint(flipped, "pairs", "ref", "sft/x", 1) == base
    assert policy_fingerprint(_cfg("online.beta=0.2"), "pairs", "ref", "sft/x", 1) != base
    assert policy_fingerprint(_cfg("online.lr=0.001"), "pairs", "ref", "sft/x", 1) != base
    assert policy_fingerprint(_cfg(), "pairs", "ref", "sft/y", 1) != base
    assert policy_fingerprint(_cfg(), "pairs", "ref", "sft/x", 2) != base


def test_memory_knobs_leave_the_sft_model_alone():
    base = sft_fingerprint(_cfg(), "set")
    assert sft_fingerprint(_cfg("sft.gradient_checkpointing=false"), "set") == base
    assert sft_fingerprint(_cfg("sft.lr=0.001"), "set") != base
    assert sft_fingerprint(_cfg(), "other-set") != base
