"""The format filter (BOLT §3.1) on hand-written answers: every RejectReason fires."""

from __future__ import annotations

import pytest

from bolt.format_rules import (
    RejectReason,
    RepetitionRule,
    check_format,
    is_degenerate,
    leaks_thoughts,
    max_line_count,
    repeated_ngram_fraction,
)
from bolt.longcot import ParseError, render_longcot
from bolt.records import Generation

MAX_NEW_TOKENS = 1000

GOOD_THOUGHTS = (
    "The user wants the sum of 2 and 3. Plan: add them directly. Check: 2 + 3 = 5, "
    "and counting up from 2 by three steps also lands on 5, so the answer holds."
)
GOOD_RESPONSE = "2 + 3 = 5."


def gen(
    raw_text: str, *, finish_reason: str | None = "stop", output_tokens: int = 100
) -> Generation:
    return Generation(
        query_id="q1",
        sample_index=0,
        prompt_tokens=50,
        raw_text=raw_text,
        finish_reason=finish_reason,
        output_tokens=output_tokens,
        engine="test",
        model="test-model",
    )


def check(raw_text: str, **kwargs) -> RejectReason | None:
    return check_format(gen(raw_text, **kwargs), max_new_tokens=MAX_NEW_TOKENS)


def test_a_well_formed_answer_passes():
    assert check(render_longcot(GOOD_THOUGHTS, GOOD_RESPONSE)) is None


def test_debris_around_the_tags_is_ignored():
    text = "assistant\n" + render_longcot(GOOD_THOUGHTS, GOOD_RESPONSE) + "\n<|eot_id|>"
    assert check(text) is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("<response>5</response>", RejectReason.MISSING_THOUGHTS),
        ("<thoughts>add</thoughts> The answer is 5.", RejectReason.MISSING_RESPONSE),
        (
            "<thoughts>a</thoughts><thoughts>b</thoughts><response>5</response>",
            RejectReason.REPEATED_TAG,
        ),
        ("<response>5</response><thoughts>add them</thoughts>", RejectReason.WRONG_ORDER),
        ("<thoughts> \n </thoughts><response>5</response>", RejectReason.EMPTY_THOUGHTS),
        ("<thoughts>add them</thoughts><response>\n\n</response>", RejectReason.EMPTY_RESPONSE),
        ("<thoughts>add them</thoughts><response>5", RejectReason.UNCLOSED_RESPONSE),
    ],
)
def test_tag_structure_failures(text, reason):
    assert check(text) == reason


def test_parse_failures_reuse_the_parse_error_names():
    for error in ParseError:
        assert RejectReason(error.value).value == error.value


def test_unclosed_response_passes_when_the_engine_stops_on_the_close_tag():
    text = f"<thoughts>{GOOD_THOUGHTS}</thoughts><response>{GOOD_RESPONSE}"
    result = check_format(gen(text), max_new_tokens=MAX_NEW_TOKENS, allow_unclosed_response=True)
    assert result is None


def test_finish_reason_length_is_truncation_even_when_the_tags_are_broken_too():
    cut = f"<thoughts>{GOOD_THOUGHTS}</thoughts><response>2 + 3"
    assert check(cut, finish_reason="length") == RejectReason.TRUNCATED


def test_using_the_whole_token_budget_is_truncation():
    full = render_longcot(GOOD_THOUGHTS, GOOD_RESPONSE)
    assert check(full, output_tokens=MAX_NEW_TOKENS) == RejectReason.TRUNCATED
    assert check(full, output_tokens=MAX_NEW_TOKENS - 1) is None


@pytest.mark.parametrize(
    "response",
    [
        "As worked out in my thoughts above, the answer is 5.",
        "See the thoughts section: 2 + 3 = 5.",
        "My internal monologue says 5.",
        "The answer is 5.\n</thought",
        "The answer is 5. thoughts>",
        "<Thought>hmm</Thought> The answer is 5.",
    ],
)
def test_thoughts_leaking_into_the_response(response):
    assert check(render_longcot(GOOD_THOUGHTS, response)) == RejectReason.THOUGHTS_LEAK


@pytest.mark.parametrize(
    "response",
    [
        "You are in my thoughts. Thoughts and prayers are a common phrase.",
        "A thoughtful reply: 2 + 3 = 5.",
        "Use a <thoughtful-widget> element; thoughts are welcome.",
    ],
)
def test_ordinary_mentions_of_thoughts_are_not_leaks(response):
    assert not leaks_thoughts(response)
    assert check(render_longcot(GOOD_THOUGHTS, response)) is None


def test_a_looping_thoughts_part_is_degenerate_repetition():
    loop = "I should add the two numbers and then check the result again. " * 5
    assert repeated_ngram_fraction(loop, 10) > 0.3
    assert check(render_longcot(loop, GOOD_RESPONSE)) == RejectReason.DEGENERATE_REPETITION


def test_a_looping_response_is_degenerate_repetition():
    loop = "The answer is five because two plus three equals five exactly. " * 4
    assert check(render_longcot(GOOD_THOUGHTS, loop)) == RejectReason.DEGENERATE_REPETITION


def test_a_line_repeated_ten_times_between_distinct_lines_is_degenerate():
    stuck = "Let me double-check this step again."  # 7 words: no 10-gram fits inside it
    lines = []
    for i in range(10):
        lines += [stuck, f"Step {i}: consider case number {i} with its own distinct words {i * 7}."]
    thoughts = "\n".join(lines)
    assert repeated_ngram_fraction(thoughts, 10) <= 0.3  # the line rule alone decides
    assert max_line_count(thoughts, 20) == 10
    assert check(render_longcot(thoughts, GOOD_RESPONSE)) == RejectReason.DEGENERATE_REPETITION
    nine_times = "\n".join(lines[2:])
    assert check(render_longcot(nine_times, GOOD_RESPONSE)) is None


def test_short_repeated_lines_like_code_braces_are_not_degenerate():
    code = "\n".join(f"def f{i}():\n    return {i}\n}}" for i in range(30))
    assert not is_degenerate(code, RepetitionRule())


def test_a_response_restating_the_thoughts_is_not_repetition():
    conclusion = "Adding two and three gives five, which the counting check confirms as well."
    text = render_longcot(GOOD_THOUGHTS + " " + conclusion, conclusion)
    assert check(text) is None


def test_repeated_ngram_fraction_by_hand():
    # 3-grams of "a b c a b c": (a b c) (b c a) (c a b) (a b c) -> the last repeats and
    # covers words 3, 4, 5: 3 of 6 words.
    assert repeated_ngram_fraction("a b c a b c", 3) == pytest.approx(0.5)
    assert repeated_ngram_fraction("a b", 3) == 0.0
    assert repeated_ngram_fraction("a b c d e f", 3) == 0.0


def test_the_repeat_fraction_threshold_is_strict():
    # "x y z w" three times: 12 words; 2-grams repeat from word 4 on -> 8 of 12 covered.
    text = "x y z w x y z w x y z w"
    assert repeated_ngram_fraction(text, 2) == pytest.approx(8 / 12)
    at_threshold = RepetitionRule(ngram_size=2, max_repeat_fraction=8 / 12)
    assert not is_degenerate(text, at_threshold)
    assert is_degenerate(text, RepetitionRule(ngram_size=2, max_repeat_fraction=0.6))
