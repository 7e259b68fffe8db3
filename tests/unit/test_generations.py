"""An engine completion as a Generation: the bootstrap form (stopped on </response>, the
tag put back, in-context examples recorded) and the online form (the text as written)."""

from __future__ import annotations

from types import SimpleNamespace

from bolt.engines.base import Completion
from bolt.generations import to_generation

ENGINE = SimpleNamespace(name="vllm", model="teacher")
CUT = "<thoughts>think</thoughts> <response>answer"


def _completion(text: str, finish_reason: str = "stop") -> Completion:
    return Completion("q1", 2, text, finish_reason, 10, 5, None)


def test_a_response_cut_by_the_stop_string_is_closed_again():
    g = to_generation(
        "q1",
        _completion(CUT),
        ENGINE,
        0,
        prompt_tokens=40,
        example_ids=["e1", "e2"],
        stopped_at_response_close=True,
    )
    assert g.raw_text == CUT + "</response>" and g.response == "answer"
    assert g.example_ids == ["e1", "e2"] and g.prompt_tokens == 40 and g.sample_index == 2
    assert g.parse_error is None and (g.engine, g.model, g.seed) == ("vllm", "teacher", 0)


def test_a_response_cut_by_the_length_limit_stays_unparsed():
    g = to_generation(
        "q1",
        _completion(CUT, "length"),
        ENGINE,
        0,
        prompt_tokens=40,
        stopped_at_response_close=True,
    )
    assert g.raw_text == CUT and g.response is None and g.parse_error is not None


def test_without_a_stop_string_the_text_is_kept_as_written():
    g = to_generation("q1", _completion(CUT), ENGINE, 7, prompt_tokens=10)
    assert g.raw_text == CUT and g.response is None and g.parse_error is not None
    assert g.example_ids == [] and g.seed == 7
