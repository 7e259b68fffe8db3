"""Preference pairs for online DPO (BOLT §3.3): strategies, ties, skips, determinism."""

from __future__ import annotations

import math

import pytest

from bolt.online.pairs import (
    Pairing,
    PairStrategy,
    PromptSamples,
    Skip,
    SkipReason,
    build_pairs,
    pair_all,
)
from bolt.records import Message, PreferencePair

PROMPT = [Message(role="user", content="Explain recursion.")]


def pair(
    samples, strategy=PairStrategy.max_min, *, min_gap=0.0, seed=0, iteration=1, prompt_id="p"
):
    return build_pairs(
        prompt_id, PROMPT, samples, strategy, min_gap=min_gap, rng_seed=seed, iteration=iteration
    )


def test_max_min_pairs_the_first_highest_with_the_first_lowest():
    samples = [("a", 1.0), ("b", 3.0), ("c", 0.5), ("d", 3.0), ("e", 0.5)]
    result = pair(samples)
    assert isinstance(result, PreferencePair)
    assert (result.chosen, result.rejected) == ("b", "c")
    assert (result.chosen_reward, result.rejected_reward) == (3.0, 0.5)
    assert (result.prompt_id, result.prompt, result.iteration) == ("p", PROMPT, 1)


@pytest.mark.parametrize("strategy", list(PairStrategy))
def test_all_equal_rewards_are_skipped_by_every_strategy(strategy):
    assert pair([("a", 2.0), ("b", 2.0), ("c", 2.0)], strategy) == Skip(
        "p", SkipReason.ALL_REWARDS_EQUAL
    )


@pytest.mark.parametrize("strategy", list(PairStrategy))
def test_fewer_than_two_samples_are_skipped(strategy):
    assert pair([("a", 1.0)], strategy) == Skip("p", SkipReason.TOO_FEW_SAMPLES)
    assert pair([], strategy) == Skip("p", SkipReason.TOO_FEW_SAMPLES)


@pytest.mark.parametrize("strategy", list(PairStrategy))
def test_min_gap_is_inclusive(strategy):
    samples = [("a", 1.0), ("b", 1.5)]
    assert pair(samples, strategy, min_gap=0.75) == Skip("p", SkipReason.GAP_BELOW_MIN)
    at_gap = pair(samples, strategy, min_gap=0.5)  # 1.5 - 1.0 == 0.5 exactly
    assert isinstance(at_gap, PreferencePair)
    assert (at_gap.chosen, at_gap.rejected) == ("b", "a")


def test_max_random_never_pairs_the_best_with_a_tie():
    # Only "c" is strictly below the tied best; the first best ("a") is chosen.
    samples = [("a", 3.0), ("b", 3.0), ("c", 1.0)]
    for seed in range(20):
        result = pair(samples, PairStrategy.max_random, seed=seed)
        assert (result.chosen, result.rejected) == ("a", "c")


def test_max_random_draws_only_samples_at_least_min_gap_below_the_best():
    samples = [("a", 1.0), ("b", 5.0), ("c", 4.5), ("d", 2.0), ("e", 0.0)]
    rejected = {
        pair(samples, PairStrategy.max_random, min_gap=2.0, seed=s).rejected for s in range(200)
    }
    assert rejected == {"a", "d", "e"}
    rejected_any = {pair(samples, PairStrategy.max_random, seed=s).rejected for s in range(200)}
    assert rejected_any == {"a", "c", "d", "e"}


def test_random_pair_draws_among_all_eligible_pairs_with_the_higher_chosen():
    samples = [("a", 1.0), ("b", 2.0), ("c", 2.0), ("d", 0.0)]
    seen = set()
    for seed in range(300):
        result = pair(samples, PairStrategy.random_pair, seed=seed)
        assert result.chosen_reward > result.rejected_reward
        seen.add((result.chosen, result.rejected))
    # Every unordered pair with different rewards; the tied (b, c) never.
    assert seen == {("a", "d"), ("b", "a"), ("b", "d"), ("c", "a"), ("c", "d")}
    gapped = {
        pair(samples, PairStrategy.random_pair, min_gap=1.5, seed=s).rejected for s in range(100)
    }
    assert gapped == {"d"}


def test_random_strategies_are_deterministic_per_seed_iteration_and_prompt():
    samples = [(chr(ord("a") + i), float(i)) for i in range(8)]
    for strategy in (PairStrategy.max_random, PairStrategy.random_pair):
        assert pair(samples, strategy, seed=7) == pair(samples, strategy, seed=7)
        by_iteration = [pair(samples, strategy, seed=7, iteration=it) for it in range(10)]
        assert len({(p.chosen, p.rejected) for p in by_iteration}) > 1  # a new iteration draws anew


def test_non_finite_rewards_raise():
    with pytest.raises(ValueError, match="NaN"):
        pair([("a", 1.0), ("b", math.nan)])


def test_pair_all_counts_skips_and_does_not_depend_on_order():
    prompts = [
        PromptSamples("p1", PROMPT, [("a", 1.0), ("b", 2.0), ("c", 0.0)]),
        PromptSamples("p2", PROMPT, [("a", 1.0), ("b", 1.0)]),
        PromptSamples("p3", PROMPT, [("a", 1.0), ("b", 1.1)]),
        PromptSamples("p4", PROMPT, [("a", 1.0)]),
        PromptSamples("p5", PROMPT, [(f"s{i}", float(i)) for i in range(8)]),
    ]
    result = pair_all(prompts, PairStrategy.random_pair, min_gap=0.5, rng_seed=3, iteration=2)
    assert isinstance(result, Pairing)
    assert [p.prompt_id for p in result.pairs] == ["p1", "p5"]
    assert result.skip_counts() == {
        "all_rewards_equal": 1,
        "gap_below_min": 1,
        "too_few_samples": 1,
    }
    assert [s.prompt_id for s in result.skips] == ["p2", "p3", "p4"]
    reversed_run = pair_all(
        list(reversed(prompts)), PairStrategy.random_pair, min_gap=0.5, rng_seed=3, iteration=2
    )
    assert {p.prompt_id: p for p in reversed_run.pairs} == {p.prompt_id: p for p in result.pairs}
