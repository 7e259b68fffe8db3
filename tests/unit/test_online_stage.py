"""Online data sub-stage fingerprints and prompt choice: what forks a stage, what does not."""

from __future__ import annotations

from bolt.config_loader import load_config
from bolt.online import stage
from bolt.records import Query
from tests.conftest import TINY_CONFIG


def _cfg(*overrides: str):
    return load_config(TINY_CONFIG, list(overrides))


def test_samples_fork_on_the_policy_and_prompts_on_the_iteration():
    cfg = _cfg()
    assert stage.samples_fingerprint(cfg, "p", "sft/a") != stage.samples_fingerprint(
        cfg, "p", "online-policy/b"
    )
    assert stage.prompts_fingerprint(cfg, 1) != stage.prompts_fingerprint(cfg, 2)
    assert stage.prompts_fingerprint(cfg, 1) == stage.prompts_fingerprint(
        _cfg("online.eval_after_iteration=false"), 1
    )


def test_prompts_fork_on_what_decides_a_duplicate():
    base = stage.prompts_fingerprint(_cfg(), 1)
    assert stage.prompts_fingerprint(_cfg("data.minhash_perm=64"), 1) != base
    assert stage.prompts_fingerprint(_cfg("data.near_dup_threshold=0.5"), 1) != base


def test_iterations_take_successive_blocks_of_one_shuffle_then_wrap():
    pool = [Query(id=f"q{i}", text=f"t{i}", source="s") for i in range(5)]
    first = stage.choose_prompts(pool, 2, seed=0, iteration=1)
    second = stage.choose_prompts(pool, 2, seed=0, iteration=2)
    third = stage.choose_prompts(pool, 2, seed=0, iteration=3)
    assert len({q.id for q in first + second}) == 4
    assert len(third) == 2 and third[1] == first[0]  # wrapped around the pool of 5
    assert stage.choose_prompts(list(reversed(pool)), 2, seed=0, iteration=1) == first
    assert stage.choose_prompts([], 2, seed=0, iteration=1) == []
