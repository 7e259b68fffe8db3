"""What every reward backend speaks and how backends are combined.

BOLT (Pang et al., 2025) scores answers twice: in the filtering stage (§3.1) an outcome
reward model scores the *response only* of each bootstrapped answer, and in online
training (§3.3) ArmoRM-Llama3-8B on the response plus a rule-based format reward make
the reward that picks DPO pairs. Both stages use the backends here through one
protocol, :class:`RewardModel`, and combine them with :func:`combine`;
:func:`bolt.rewards.factory.make_reward` is the one place a
:class:`~bolt.config.RewardKind` becomes a backend.

``RewardItem.response`` is everything the model wrote, thoughts included. Backends
that judge the answer take the external response out of it themselves
(:func:`judged_response`), so no caller can hand a reward model the thoughts by
mistake; the format reward needs the whole text to check the tags.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from bolt.longcot import RESPONSE_OPEN, THOUGHTS_CLOSE, THOUGHTS_OPEN, strip_thoughts
from bolt.records import Generation, Query


class RewardError(RuntimeError):
    """A reward backend that cannot be built or cannot score what it was given."""


@dataclass(frozen=True)
class RewardItem:
    """One answer to score.

    ``response`` is the full text the model wrote (for BOLT models a LongCoT answer,
    thoughts and response); ``reference`` is a gold answer where one exists (math);
    ``key`` identifies the item in errors and logs (e.g. ``query_id:sample_index``);
    ``query_id`` and ``topic`` are the query's, where known (the checklist weights are
    per query id, a principle may apply to some topics only).
    """

    query: str
    response: str
    reference: str | None
    key: str
    query_id: str | None = None
    topic: str | None = None


def reward_item(generation: Generation, query: Query) -> RewardItem:
    """The item that scores ``generation``, an answer to ``query`` (ids must agree)."""
    if generation.query_id != query.id:
        raise ValueError(f"generation of {generation.query_id!r} paired with query {query.id!r}")
    return RewardItem(
        query=query.text,
        response=generation.raw_text,
        reference=query.reference_answer,
        key=f"{generation.query_id}:{generation.sample_index}",
        query_id=query.id,
        topic=query.topic,
    )


class RewardModel(Protocol):
    """A reward backend: one score per item, in the items' order."""

    def score(self, items: Sequence[RewardItem]) -> list[float]: ...


@dataclass(frozen=True)
class CountedScores:
    """One batch as a counting backend scored it: a score per item, why an item got
    no verdict at all (item index -> reason; its score is then a placeholder the stage
    sets aside), and what the batch counted (how verdicts were read, rejects by reason)."""

    scores: list[float]
    unscored: dict[int, str]
    counts: dict[str, int]


@runtime_checkable
class CountingReward(Protocol):
    """A backend whose batches come with counts and reasons (the LM judges): the stages
    persist them in their manifests rather than leave them in a live object's memory."""

    def score_counted(self, items: Sequence[RewardItem]) -> CountedScores: ...


def judged_response(item: RewardItem) -> str:
    """What an outcome reward sees: the external response, never the thoughts (BOLT §3.1).

    A malformed answer is judged on what it shows outside its thoughts: the text after
    ``<response>`` when that tag exists (:func:`bolt.longcot.strip_thoughts`), else the
    text after ``</thoughts>``, and nothing when the thoughts never close (the model
    gave no response). Text without any tag has no thoughts to hide; it is judged whole.
    """
    text = item.response
    if RESPONSE_OPEN not in text and THOUGHTS_OPEN in text:
        text = text.rsplit(THOUGHTS_CLOSE, 1)[1] if THOUGHTS_CLOSE in text else ""
    return strip_thoughts(text)


def combine(
    scores_by_backend: Mapping[str, Sequence[float]], weights: Mapping[str, float]
) -> list[float]:
    """The weighted sum of the backends' scores, item by item (BOLT §3.3: ArmoRM + format).

    Every backend needs a weight and every weight a backend, all score lists must have
    the same length, and a non-finite score raises: NaN would make the later percentile
    cut and pair choice silently wrong.
    """
    if set(scores_by_backend) != set(weights):
        raise ValueError(
            f"scores are for {sorted(scores_by_backend)} but weights for {sorted(weights)}"
        )
    lengths = {name: len(scores) for name, scores in scores_by_backend.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"backends scored different numbers of items: {lengths}")
    for name, scores in scores_by_backend.items():
        if not all(math.isfinite(s) for s in scores):
            raise ValueError(f"backend {name!r} returned NaN or infinite scores")
    n_items = next(iter(lengths.values()), 0)
    return [
        sum(weights[name] * scores[i] for name, scores in sorted(scores_by_backend.items()))
        for i in range(n_items)
    ]
