"""The LongCoT answer format, defined once.

BOLT (Pang et al., 2025, §3.1) splits every bootstrapped answer into *internal
thoughts* (analysis, planning, branching, reflection) and an *external response*.
The tags below delimit the two parts. The prompt builder renders the in-context
examples with them, the format filter and the format reward parse with them, the
trainers train on them and the evaluators strip the thoughts with them: change them
here and nowhere else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

THOUGHTS_OPEN = "<thoughts>"
THOUGHTS_CLOSE = "</thoughts>"
RESPONSE_OPEN = "<response>"
RESPONSE_CLOSE = "</response>"
ALL_TAGS = (THOUGHTS_OPEN, THOUGHTS_CLOSE, RESPONSE_OPEN, RESPONSE_CLOSE)


class ParseError(StrEnum):
    """Why a text is not a well-formed LongCoT answer (one name per failure)."""

    MISSING_THOUGHTS = "missing_thoughts_tag"
    MISSING_RESPONSE = "missing_response_tag"
    REPEATED_TAG = "repeated_tag"
    WRONG_ORDER = "wrong_tag_order"
    EMPTY_THOUGHTS = "empty_thoughts"
    EMPTY_RESPONSE = "empty_response"
    UNCLOSED_RESPONSE = "unclosed_response"


@dataclass(frozen=True)
class LongCoT:
    thoughts: str
    response: str


@dataclass(frozen=True)
class LongCoTParse:
    """Either ``value`` (a parsed answer) or ``error`` is set, never both."""

    value: LongCoT | None = None
    error: ParseError | None = None

    @property
    def ok(self) -> bool:
        return self.value is not None


def render_longcot(thoughts: str, response: str) -> str:
    """The assistant text of a LongCoT answer, exactly as the model should write it."""
    return (
        f"{THOUGHTS_OPEN}\n{thoughts.strip()}\n{THOUGHTS_CLOSE}\n\n"
        f"{RESPONSE_OPEN}\n{response.strip()}\n{RESPONSE_CLOSE}"
    )


def parse_longcot(text: str, *, allow_unclosed_response: bool = False) -> LongCoTParse:
    """Parse ``<thoughts>...</thoughts> <response>...</response>`` strictly.

    Each tag must appear exactly once and in order; text before the thoughts or after
    the response is ignored (chat templates and stop strings leave such debris).
    ``allow_unclosed_response`` accepts a response that runs to the end of the text,
    which is what a generation stopped on ``</response>`` as a stop string looks like.
    """
    counts = {tag: text.count(tag) for tag in ALL_TAGS}
    if counts[THOUGHTS_OPEN] == 0 or counts[THOUGHTS_CLOSE] == 0:
        return LongCoTParse(error=ParseError.MISSING_THOUGHTS)
    if counts[RESPONSE_OPEN] == 0:
        return LongCoTParse(error=ParseError.MISSING_RESPONSE)
    if any(n > 1 for n in counts.values()):
        return LongCoTParse(error=ParseError.REPEATED_TAG)
    if counts[RESPONSE_CLOSE] == 0 and not allow_unclosed_response:
        return LongCoTParse(error=ParseError.UNCLOSED_RESPONSE)

    t_open, t_close = text.index(THOUGHTS_OPEN), text.index(THOUGHTS_CLOSE)
    r_open = text.index(RESPONSE_OPEN)
    r_close = text.index(RESPONSE_CLOSE) if counts[RESPONSE_CLOSE] else len(text)
    if not t_open < t_close <= r_open < r_close:
        return LongCoTParse(error=ParseError.WRONG_ORDER)

    thoughts = text[t_open + len(THOUGHTS_OPEN) : t_close].strip()
    response = text[r_open + len(RESPONSE_OPEN) : r_close].strip()
    if not thoughts:
        return LongCoTParse(error=ParseError.EMPTY_THOUGHTS)
    if not response:
        return LongCoTParse(error=ParseError.EMPTY_RESPONSE)
    return LongCoTParse(value=LongCoT(thoughts=thoughts, response=response))


_TAG_RE = re.compile("|".join(re.escape(t) for t in ALL_TAGS))


def strip_thoughts(text: str) -> str:
    """The external response of ``text`` for judging; the whole text when it has no
    well-formed response (a judge must see what the model said, not an empty string)."""
    parsed = parse_longcot(text, allow_unclosed_response=True)
    if parsed.value is not None:
        return parsed.value.response
    if RESPONSE_OPEN in text:
        return _TAG_RE.sub("", text.split(RESPONSE_OPEN, 1)[1]).strip()
    return _TAG_RE.sub("", text).strip()
