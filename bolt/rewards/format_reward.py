"""Rule-based format reward of BOLT's online training (Pang et al., 2025, §3.3).

The online stage adds "a rule-based format reward" to ArmoRM's score so that DPO
prefers answers that keep the LongCoT format (internal thoughts, then an external
response). The rule is the filtering stage's format filter,
:func:`bolt.format_rules.check_format`, applied to the full text the model
wrote: 1.0 when it passes, ``penalty`` (0.0 by default) when it does not.

An item carries text only, not the engine's token count or finish reason, so
truncation is judged from the text: an answer cut at the token limit lacks its
closing ``</response>`` and fails as unclosed (unless ``allow_unclosed_response``,
meant for engines that stop on that tag and drop it).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from bolt.format_rules import RejectReason, RepetitionRule, check_format
from bolt.records import Generation
from bolt.rewards.base import RewardItem

# The format filter's own defaults (BOLT §3.1): the online reward applies the same rule.
DEFAULT_REPETITION = RepetitionRule()


class FormatReward:
    """1.0 for a well-formed LongCoT answer, ``penalty`` otherwise."""

    def __init__(
        self,
        *,
        penalty: float = 0.0,
        repetition: RepetitionRule = DEFAULT_REPETITION,
        allow_unclosed_response: bool = False,
    ):
        self.penalty = penalty
        self.repetition = repetition
        self.allow_unclosed_response = allow_unclosed_response

    def score(self, items: Sequence[RewardItem]) -> list[float]:
        return [1.0 if self.reject_reason(item) is None else self.penalty for item in items]

    def reject_reason(self, item: RewardItem) -> RejectReason | None:
        """Why ``item`` fails the format filter, or None when it passes."""
        generation = Generation(
            query_id=item.key,
            sample_index=0,
            prompt_tokens=0,
            raw_text=item.response,
            # No token count to test: an unbounded limit turns the count test off and
            # leaves truncation to the text checks (see the module docstring).
            output_tokens=0,
            engine="format_reward",
            model="format_reward",
        )
        return check_format(
            generation,
            max_new_tokens=sys.maxsize,
            repetition=self.repetition,
            allow_unclosed_response=self.allow_unclosed_response,
        )
