"""The format rules of BOLT's filter (Pang et al., 2025, §3.1, "filtering").

The paper filters bootstrapped answers with rules before any reward model sees them:
an answer must be a well-formed LongCoT (internal thoughts, then an external
response) and must not be broken. This module names every way an answer is refused,
so the filter stage can count them and keep each refused row with its reason, and the
online stage's format reward (§3.3) applies the same rules; it sits beneath both
(``bolt.filtering`` and ``bolt.rewards``), so neither imports the other.

Checks run in a fixed order and the first failure is the reason reported:

1. truncation at the token limit (it is the cause of most other defects, so it is
   reported as such rather than as the unclosed tag it leaves behind);
2. the tag structure, by :func:`bolt.longcot.parse_longcot` (reasons reuse its names);
3. thoughts leaking into the external response;
4. degenerate repetition in either part.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum

from bolt.longcot import ParseError, parse_longcot
from bolt.records import Generation


class RejectReason(StrEnum):
    """Why the format filter refused a generation; parse failures keep ParseError's names."""

    MISSING_THOUGHTS = ParseError.MISSING_THOUGHTS.value
    MISSING_RESPONSE = ParseError.MISSING_RESPONSE.value
    REPEATED_TAG = ParseError.REPEATED_TAG.value
    WRONG_ORDER = ParseError.WRONG_ORDER.value
    EMPTY_THOUGHTS = ParseError.EMPTY_THOUGHTS.value
    EMPTY_RESPONSE = ParseError.EMPTY_RESPONSE.value
    UNCLOSED_RESPONSE = ParseError.UNCLOSED_RESPONSE.value
    THOUGHTS_LEAK = "thoughts_leak_in_response"
    TRUNCATED = "truncated_at_token_limit"
    DEGENERATE_REPETITION = "degenerate_repetition"


# The external response must "not mention your thoughts or the process that produced
# them" (prompts/bootstrap_system.j2). The rule is a fixed, case-insensitive list that
# favours precision over recall: a false positive costs one of 8 samples, while a
# vague list ("let me think", "wait") would refuse legitimate prose and dialogue.
#   - a fragment of the thoughts tag: "<thought", "</thoughts", "thoughts>" (no spaces,
#     as a tag would be written; a full tag is already caught as repeated/misordered);
#   - a reference to the hidden part: "my/the (internal|inner) thoughts above|section|block";
#   - "my internal thoughts" / "my internal monologue".
_THOUGHTS_LEAK_RE = re.compile(
    r"</?thoughts?\b"
    r"|\bthoughts?>"
    r"|\b(?:my|the)\s+(?:(?:internal|inner)\s+)?thoughts\s+(?:above|section|block)\b"
    r"|\bmy\s+internal\s+(?:thoughts|monologue)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class RepetitionRule:
    """When a part (thoughts or response) counts as degenerate repetition.

    Two tests, either one refuses:

    - *looping*: the share of words that lie inside a word ``ngram_size``-gram already
      seen earlier in the same part exceeds ``max_repeat_fraction``. This is the
      "duplicate n-gram fraction" of the Gopher quality filters (Rae et al., 2021,
      App. A), on words rather than characters. A text that loops k times scores
      about (k-1)/k; ordinary prose with a few restated phrases stays far below 0.3.
    - *stuck line*: one line of at least ``min_line_chars`` characters (stripped)
      appears ``max_line_repeats`` times or more. Short lines ("}", "---", table
      rules) are exempt because code and markdown repeat them legitimately.

    The parts are tested separately because a response that restates a conclusion of
    the thoughts is the intended format, not a loop.
    """

    ngram_size: int = 10
    max_repeat_fraction: float = 0.3
    max_line_repeats: int = 10
    min_line_chars: int = 20


def check_format(
    gen: Generation,
    *,
    max_new_tokens: int,
    repetition: RepetitionRule = RepetitionRule(),
    allow_unclosed_response: bool = False,
) -> RejectReason | None:
    """None when ``gen`` passes the format filter of BOLT §3.1, else why it does not.

    ``gen.raw_text`` is parsed afresh, so the answer is judged by the same rules as
    everywhere else and not by fields an earlier stage may have filled differently.
    A generation is truncated when the engine says so (``finish_reason == "length"``)
    or when it used the whole budget (``output_tokens >= max_new_tokens``): an answer
    that ends exactly at the limit cannot be told apart from a cut one.
    ``allow_unclosed_response`` is for engines that stop on ``</response>`` and drop
    the stop string from the output.
    """
    if gen.finish_reason == "length" or gen.output_tokens >= max_new_tokens:
        return RejectReason.TRUNCATED
    parsed = parse_longcot(gen.raw_text, allow_unclosed_response=allow_unclosed_response)
    if parsed.error is not None:
        return RejectReason(parsed.error.value)
    answer = parsed.value
    assert answer is not None  # LongCoTParse sets exactly one of value and error
    if leaks_thoughts(answer.response):
        return RejectReason.THOUGHTS_LEAK
    if is_degenerate(answer.thoughts, repetition) or is_degenerate(answer.response, repetition):
        return RejectReason.DEGENERATE_REPETITION
    return None


def leaks_thoughts(response: str) -> bool:
    """Whether the external response mentions the thoughts (see ``_THOUGHTS_LEAK_RE``)."""
    return _THOUGHTS_LEAK_RE.search(response) is not None


def is_degenerate(text: str, rule: RepetitionRule) -> bool:
    """Whether ``text`` loops or is stuck on one line, as defined by ``rule``."""
    if repeated_ngram_fraction(text, rule.ngram_size) > rule.max_repeat_fraction:
        return True
    return max_line_count(text, rule.min_line_chars) >= rule.max_line_repeats


def repeated_ngram_fraction(text: str, n: int) -> float:
    """Share of the words of ``text`` covered by a word n-gram that occurred earlier.

    Words are whitespace-separated. Every position of every repeat occurrence is
    marked once, so overlapping repeats are not double-counted. Texts shorter than
    ``n`` words cannot repeat an n-gram and score 0.
    """
    words = text.split()
    if len(words) < n:
        return 0.0
    seen: set[tuple[str, ...]] = set()
    covered = [False] * len(words)
    for start in range(len(words) - n + 1):
        gram = tuple(words[start : start + n])
        if gram in seen:
            covered[start : start + n] = [True] * n
        else:
            seen.add(gram)
    return sum(covered) / len(words)


def max_line_count(text: str, min_chars: int) -> int:
    """How often the most frequent stripped line of at least ``min_chars`` characters occurs."""
    lines = Counter(line.strip() for line in text.splitlines() if len(line.strip()) >= min_chars)
    return max(lines.values(), default=0)
