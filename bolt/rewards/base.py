"""What every reward backend speaks, how backends are combined, and which one a config names.

BOLT (Pang et al., 2025) scores answers twice: in the filtering stage (§3.1) an outcome
reward model scores the *response only* of each bootstrapped answer, and in online
training (§3.3) ArmoRM-Llama3-8B on the response plus a rule-based format reward make
the reward that picks DPO pairs. Both stages use the backends here through one
protocol, :class:`RewardModel`, and combine them with :func:`combine`;
:func:`make_reward` is the one place a :class:`~bolt.config.RewardKind` becomes a
backend.

``RewardItem.response`` is everything the model wrote, thoughts included. Backends
that judge the answer take the external response out of it themselves
(:func:`judged_response`), so no caller can hand a reward model the thoughts by
mistake; the format reward needs the whole text to check the tags.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, assert_never

from bolt.config import ModelsConfig, RewardBackend, RewardKind, S3Options
from bolt.longcot import RESPONSE_OPEN, THOUGHTS_CLOSE, THOUGHTS_OPEN, strip_thoughts
from bolt.records import Generation, Query

if TYPE_CHECKING:
    from bolt.engines.base import Engine


class RewardError(RuntimeError):
    """A reward backend that cannot be built or cannot score what it was given."""


@dataclass(frozen=True)
class RewardItem:
    """One answer to score.

    ``response`` is the full text the model wrote (for BOLT models a LongCoT answer,
    thoughts and response); ``reference`` is a gold answer where one exists (math);
    ``key`` identifies the item in errors and logs (e.g. ``query_id:sample_index``).
    """

    query: str
    response: str
    reference: str | None
    key: str


def reward_item(generation: Generation, query: Query) -> RewardItem:
    """The item that scores ``generation``, an answer to ``query`` (ids must agree)."""
    if generation.query_id != query.id:
        raise ValueError(f"generation of {generation.query_id!r} paired with query {query.id!r}")
    return RewardItem(
        query=query.text,
        response=generation.raw_text,
        reference=query.reference_answer,
        key=f"{generation.query_id}:{generation.sample_index}",
    )


class RewardModel(Protocol):
    """A reward backend: one score per item, in the items' order."""

    def score(self, items: Sequence[RewardItem]) -> list[float]: ...


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


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Item indices in batches of similar length: sort by length, then cut.

    Padding every sequence of a batch to its longest is what batching costs; grouping
    similar lengths keeps that waste small on long-tailed length distributions like
    the bootstrapped answers'. Longest first, so an out-of-memory batch fails at once
    rather than at the end. The sort is stable, so equal lengths keep their order.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


def input_order_batches(n_items: int, batch_size: int) -> list[list[int]]:
    """Item indices in batches as they come (the naive batching the benchmark compares)."""
    return [
        list(range(start, min(start + batch_size, n_items)))
        for start in range(0, n_items, batch_size)
    ]


def make_reward(
    backend: RewardBackend,
    models: ModelsConfig,
    *,
    device: str = "cpu",
    checklist_engine: Engine | None = None,
    checklist_cache_dir: Path | None = None,
    s3: S3Options | None = None,
) -> RewardModel:
    """Build the backend ``backend.kind`` names; the only dispatch on :class:`RewardKind`.

    ``checklist_engine`` writes the checklists of ``lm_checklist`` (any engine: the
    stage's own is fine) and ``checklist_cache_dir`` keeps them across runs. Backends
    are imported here, not at the top: torch and transformers take seconds to import
    and the rule-based rewards need neither.
    """
    match backend.kind:
        case RewardKind.sequence_classifier:
            from bolt.rewards.sequence_classifier import SequenceClassifierReward

            return SequenceClassifierReward.from_catalog(
                models, _model_name(backend), batch_size=backend.batch_size, device=device, s3=s3
            )
        case RewardKind.lm_checklist:
            from bolt.rewards.checklist import ChecklistMaker
            from bolt.rewards.lm_checklist import LMChecklistReward

            if checklist_engine is None or checklist_cache_dir is None:
                raise RewardError(
                    f"reward {backend.name!r} (kind lm_checklist) needs an engine to write its "
                    "checklists and a folder to cache them in"
                )
            maker = ChecklistMaker(checklist_engine, checklist_cache_dir)
            return LMChecklistReward.from_catalog(
                models,
                _model_name(backend),
                maker,
                batch_size=backend.batch_size,
                device=device,
                s3=s3,
            )
        case RewardKind.math_verify:
            from bolt.rewards.math_verify_reward import MathVerifyReward

            return MathVerifyReward()
        case RewardKind.format:
            from bolt.rewards.format_reward import FormatReward

            return FormatReward()
        case _:
            assert_never(backend.kind)


def _model_name(backend: RewardBackend) -> str:
    if backend.model is None:
        raise RewardError(
            f"reward {backend.name!r} (kind {backend.kind.value}) needs `model`: the catalog "
            "name of its reward or judge model"
        )
    return backend.model
