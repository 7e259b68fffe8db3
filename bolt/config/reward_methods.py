"""Settings of the reward and judge methods of issue 19: RLBFF principles (Wang et al.,
2025), STICK self-refinement (Cook et al., 2024) and RocketEval reweighting (Wei et al.,
2025). The reward backend (``RewardBackend``) and the stage sections hold them; every
field that joined an existing section is ``ENTERS_WHEN_SET``, so configs that use none
of them keep their fingerprints.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from bolt.config.base import Strict


class PrincipleFilter(Strict):
    """Which items a principle judges; both conditions must hold when both are set."""

    topics: list[str] | None = Field(
        None,
        min_length=1,
        description="Query topics (the curation labeller's) the principle applies to; "
        "an item without a topic is not judged on it.",
    )
    query_regex: str | None = Field(
        None, description="Python regex searched in the query text (re.search)."
    )

    @field_validator("query_regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as err:
                raise ValueError(f"not a valid regular expression: {err}") from err
        return value


class Principle(Strict):
    """One binary principle (RLBFF): the judge answers whether a response satisfies it."""

    text: str = Field(
        min_length=1,
        description="The principle, e.g. 'The response is accurate and free of factual errors.'",
    )
    weight: float = Field(1.0, gt=0, description="Weight in the item's weighted mean.")
    applies_to: PrincipleFilter | None = Field(
        None, description="Restricts the principle to some queries; every query when unset."
    )

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a principle's text must not be blank")
        return value.strip()


def principle_key(text: str) -> str:
    """What makes two principles the same one: their words, case and spacing aside."""
    return " ".join(text.lower().split())


class RefinementConfig(Strict):
    """STICK self-refinement (Cook et al., 2024): samples that fail checklist items are
    revised with those items as feedback, round after round; every version is kept."""

    rounds: int = Field(1, ge=1, le=8, description="Revision rounds at most (paper: 1 to 3).")
    judge_model: str | None = Field(
        None,
        description="Catalog name of the checklist judge (next-token p(Yes) with "
        "transformers); unset: the stage's own engine judges its answers (Self-TICK), "
        "p(Yes) read from its replies' top log-probabilities (the replies parsed as "
        "Yes/No where the engine gives none).",
    )
    pass_threshold: float = Field(
        0.5, gt=0, lt=1, description="p(Yes) at or above which a checklist item passes."
    )
    max_new_tokens: int | None = Field(
        None, ge=1, description="Tokens per revision; the stage's sampling budget when unset."
    )
