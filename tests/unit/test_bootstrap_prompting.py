"""Few-shot prompt building and the guided-decoding shape, on hand-built examples."""

from __future__ import annotations

import re

import pytest

from bolt.bootstrap.prompting import (
    build_messages,
    choose_examples,
    group_key,
    longcot_regex,
)
from bolt.longcot import parse_longcot, render_longcot
from bolt.prompts import LongCoTExample

EXAMPLES = [
    LongCoTExample(id=f"ex{i:02d}", topic="t", query=f"q{i}", thoughts=f"th{i}", response=f"r{i}")
    for i in range(1, 11)
]


def test_choice_is_seeded_stable_and_sorted():
    first = choose_examples("query-7", EXAMPLES, 3, seed=0)
    assert first == choose_examples("query-7", list(reversed(EXAMPLES)), 3, seed=0)
    assert [e.id for e in first] == sorted(e.id for e in first) and len(set(first)) == 3
    assert any(
        choose_examples(f"query-{i}", EXAMPLES, 3, seed=0) != first for i in range(20)
    )  # different queries spread over different subsets
    with pytest.raises(ValueError, match="examples_per_prompt = 11"):
        choose_examples("q", EXAMPLES, 11, seed=0)


def test_messages_alternate_examples_then_query():
    chosen = EXAMPLES[:2]
    messages = build_messages("the query", chosen, "be thoughtful")
    assert [m["role"] for m in messages] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
    ]
    assert messages[-1]["content"] == "the query"
    assert parse_longcot(messages[2]["content"]).value.response == "r1"
    assert group_key(chosen) == "ex01+ex02"


def test_guided_shape_accepts_a_rendered_answer_and_nothing_else():
    pattern = re.compile(longcot_regex())
    assert pattern.fullmatch(render_longcot("I compare 3 < 4 and x <= y.", "So 4."))
    assert not pattern.fullmatch(render_longcot("thinking", "answer") + " trailing")
    assert not pattern.fullmatch(render_longcot("", "answer"))  # empty thoughts
    assert not pattern.fullmatch(render_longcot("thinking", "  "))  # blank response


def test_bounded_shape_caps_each_part():
    pattern = re.compile(longcot_regex((11, 6)))  # each body ends in the newline before its tag
    assert pattern.fullmatch(render_longcot("a" * 10, "b" * 5))
    assert not pattern.fullmatch(render_longcot("a" * 11, "b" * 5))
    assert not pattern.fullmatch(render_longcot("a" * 10, "b" * 6))
