"""Preference pairs for online DPO (BOLT, Pang et al., 2025, §3.3).

BOLT samples 8 responses per prompt from the current policy, scores them and pairs
the highest-reward response (chosen) with the lowest (rejected), following the
``max_min`` choice of RLHFlow's Online-RLHF (``dpo_iteration/run_dpo.py``,
``prepare_data``). Two alternatives are kept for ablations. Every strategy draws its
pair from the same *eligible* pairs (rewards strictly different, gap >= ``min_gap``),
so a prompt is skipped for the same reason whatever the strategy:

- ``TOO_FEW_SAMPLES``: fewer than two samples;
- ``ALL_REWARDS_EQUAL``: no pair has a preference (RLHFlow drops such pairs too);
- ``GAP_BELOW_MIN``: even the best-worst gap is below ``min_gap``.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

from bolt.config import PairStrategyName
from bolt.records import Message, PreferencePair

# The config owns the enum (its values are the config's vocabulary); the name here is
# the one the pairing code reads naturally with.
PairStrategy = PairStrategyName


class SkipReason(StrEnum):
    TOO_FEW_SAMPLES = "too_few_samples"
    ALL_REWARDS_EQUAL = "all_rewards_equal"
    GAP_BELOW_MIN = "gap_below_min"


@dataclass(frozen=True)
class Skip:
    """A prompt that yields no pair, and why."""

    prompt_id: str
    reason: SkipReason


class PromptSamples(NamedTuple):
    """One prompt with its sampled responses and their rewards, in sample order."""

    prompt_id: str
    prompt: list[Message]
    samples: list[tuple[str, float]]


@dataclass(frozen=True)
class Pairing:
    pairs: list[PreferencePair] = field(default_factory=list)
    skips: list[Skip] = field(default_factory=list)

    def skip_counts(self) -> dict[str, int]:
        return dict(Counter(str(s.reason) for s in self.skips))


def pair_rng(rng_seed: int, iteration: int, prompt_id: str) -> random.Random:
    """A generator private to one prompt of one iteration.

    Seeding per prompt (Python hashes a str seed with SHA-512, not with the salted
    ``hash``) makes the pair independent of shard boundaries, worker count and the
    order prompts are processed in, and different in every iteration.
    """
    return random.Random(f"{rng_seed}:{iteration}:{prompt_id}")


def build_pairs(
    prompt_id: str,
    prompt_messages: list[Message],
    samples: Sequence[tuple[str, float]],
    strategy: PairStrategy,
    *,
    min_gap: float = 0.0,
    rng_seed: int,
    iteration: int,
) -> PreferencePair | Skip:
    """One DPO pair for one prompt (BOLT §3.3), or the reason there is none.

    ``samples`` are ``(response_text, reward)`` in sample order; "first" below means
    the lowest position, which makes every tie deterministic.

    - ``max_min`` (the paper): the first highest-reward sample against the first
      lowest-reward one.
    - ``max_random``: the first highest-reward sample against one drawn uniformly
      from the samples at least ``min_gap`` (and strictly) below it. RLHFlow pairs
      the best with another i.i.d. sample and drops the pair on a tie; drawing among
      eligible samples only keeps the prompt instead.
    - ``random_pair``: one pair drawn uniformly from all eligible pairs, the higher
      reward chosen.
    """
    rewards = [reward for _, reward in samples]
    if not all(math.isfinite(r) for r in rewards):
        raise ValueError(f"prompt {prompt_id}: rewards contain NaN or infinity")
    if len(samples) < 2:
        return Skip(prompt_id, SkipReason.TOO_FEW_SAMPLES)
    best, worst = max(rewards), min(rewards)
    if best == worst:
        return Skip(prompt_id, SkipReason.ALL_REWARDS_EQUAL)
    if best - worst < min_gap:
        return Skip(prompt_id, SkipReason.GAP_BELOW_MIN)

    def eligible(high: float, low: float) -> bool:
        return high > low and high - low >= min_gap

    rng = pair_rng(rng_seed, iteration, prompt_id)
    match strategy:
        case PairStrategy.max_min:
            chosen, rejected = rewards.index(best), rewards.index(worst)
        case PairStrategy.max_random:
            chosen = rewards.index(best)
            rejected = rng.choice([i for i, r in enumerate(rewards) if eligible(best, r)])
        case PairStrategy.random_pair:
            # Ordered (chosen, rejected) with chosen strictly higher: each eligible
            # unordered pair appears exactly once.
            indices = range(len(rewards))
            candidates = [
                (i, j) for i in indices for j in indices if eligible(rewards[i], rewards[j])
            ]
            chosen, rejected = rng.choice(candidates)
        case _:
            raise ValueError(f"unknown pair strategy {strategy!r}")
    return PreferencePair(
        prompt_id=prompt_id,
        prompt=list(prompt_messages),
        chosen=samples[chosen][0],
        rejected=samples[rejected][0],
        chosen_reward=rewards[chosen],
        rejected_reward=rewards[rejected],
        iteration=iteration,
    )


def pair_all(
    prompts: Iterable[PromptSamples],
    strategy: PairStrategy,
    *,
    min_gap: float = 0.0,
    rng_seed: int,
    iteration: int,
) -> Pairing:
    """:func:`build_pairs` over many prompts: the pairs, and every skip with its reason."""
    pairs: list[PreferencePair] = []
    skips: list[Skip] = []
    for item in prompts:
        outcome = build_pairs(
            item.prompt_id,
            item.prompt,
            item.samples,
            strategy,
            min_gap=min_gap,
            rng_seed=rng_seed,
            iteration=iteration,
        )
        if isinstance(outcome, Skip):
            skips.append(outcome)
        else:
            pairs.append(outcome)
    return Pairing(pairs, skips)
