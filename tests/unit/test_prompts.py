"""The prompt room: the 10 in-context LongCoT examples, the templates, the demo queries.

The examples are the only supervision BOLT's bootstrapping gets (Pang et al., 2025,
§3.1), so these tests hold them to the paper's shape: 10 of them, diverse topics,
real thoughts then a response, in the exact format the parser accepts.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from bolt.curation.labels import CRITERIA
from bolt.longcot import (
    ALL_TAGS,
    RESPONSE_CLOSE,
    RESPONSE_OPEN,
    THOUGHTS_CLOSE,
    THOUGHTS_OPEN,
    parse_longcot,
)
from bolt.prompts import PROMPTS_DIR, LongCoTExample, load_examples, render_template

REPO = Path(__file__).resolve().parents[2]
DEMO_QUERIES = REPO / "data" / "queries" / "demo.jsonl"


def _words(text: str) -> int:
    return len(text.split())


@pytest.fixture(scope="module")
def examples() -> list[LongCoTExample]:
    return load_examples(PROMPTS_DIR / "longcot")


# --- the shipped examples ------------------------------------------------------------


def test_ten_examples_with_unique_sorted_ids(examples):
    ids = [example.id for example in examples]
    assert len(examples) == 10
    assert len(set(ids)) == 10
    assert ids == sorted(ids)


def test_examples_cover_diverse_topics(examples):
    assert len({example.topic for example in examples}) >= 8


def test_assistant_text_round_trips_through_the_parser(examples):
    for example in examples:
        parsed = parse_longcot(example.assistant_text())
        assert parsed.ok, (example.id, parsed.error)
        assert parsed.value.thoughts == example.thoughts.strip()
        assert parsed.value.response == example.response.strip()


def test_thoughts_and_responses_have_the_intended_length(examples):
    for example in examples:
        assert 250 <= _words(example.thoughts) <= 600, example.id
        assert 120 <= _words(example.response) <= 400, example.id


def test_example_files_are_named_after_their_ids(examples):
    names = sorted(path.name for path in (PROMPTS_DIR / "longcot").glob("*.yaml"))
    assert [name.split("-", 1)[0] for name in names] == [example.id for example in examples]


# --- malformed example files ------------------------------------------------------------

GOOD = {
    "id": "ex01",
    "topic": "math",
    "query": "What is 2 + 3?",
    "thoughts": "Add the two numbers: 2 + 3 = 5.",
    "response": "5",
}


def _write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def _write_example(directory: Path, name: str, **overrides) -> Path:
    data = {key: value for key, value in {**GOOD, **overrides}.items() if value is not None}
    return _write(directory, name, yaml.safe_dump(data, sort_keys=False))


def test_a_good_file_loads(tmp_path):
    _write_example(tmp_path, "ex01-good.yaml")
    [example] = load_examples(tmp_path)
    assert example == LongCoTExample(**GOOD)


def test_invalid_yaml_names_the_file(tmp_path):
    _write(tmp_path, "ex01-broken.yaml", "id: ex01\nquery: [unclosed\n")
    with pytest.raises(ValueError, match="ex01-broken.yaml.*YAML"):
        load_examples(tmp_path)


def test_missing_key_names_the_file_and_key(tmp_path):
    _write_example(tmp_path, "ex01-missing.yaml", response=None)
    with pytest.raises(ValueError, match="ex01-missing.yaml.*'response'"):
        load_examples(tmp_path)


def test_unknown_key_names_the_file_and_key(tmp_path):
    _write_example(tmp_path, "ex01-extra.yaml", difficulty=3)
    with pytest.raises(ValueError, match="ex01-extra.yaml.*'difficulty'"):
        load_examples(tmp_path)


def test_duplicate_id_names_the_file(tmp_path):
    _write_example(tmp_path, "ex01-first.yaml")
    _write_example(tmp_path, "ex02-second.yaml")
    with pytest.raises(ValueError, match="ex02-second.yaml.*duplicate id 'ex01'"):
        load_examples(tmp_path)


@pytest.mark.parametrize("tag", ALL_TAGS)
def test_tag_inside_thoughts_names_the_file(tmp_path, tag):
    _write_example(tmp_path, "ex01-tagged.yaml", thoughts=f"I will write {tag} here.")
    with pytest.raises(ValueError, match="ex01-tagged.yaml.*'thoughts'"):
        load_examples(tmp_path)


def test_tag_inside_response_names_the_file(tmp_path):
    _write_example(tmp_path, "ex01-tagged.yaml", response=f"5 {RESPONSE_CLOSE}")
    with pytest.raises(ValueError, match="ex01-tagged.yaml.*'response'"):
        load_examples(tmp_path)


def test_a_non_mapping_file_names_the_file(tmp_path):
    _write(tmp_path, "ex01-list.yaml", "- just\n- a list\n")
    with pytest.raises(ValueError, match="ex01-list.yaml"):
        load_examples(tmp_path)


def test_an_empty_directory_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no \\*.yaml"):
        load_examples(tmp_path)


# --- the demo queries -----------------------------------------------------------------


def _demo_rows() -> list[dict]:
    lines = DEMO_QUERIES.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def test_demo_queries_are_many_unique_and_diverse():
    rows = _demo_rows()
    assert len(rows) >= 60
    assert len({row["id"] for row in rows}) == len(rows)
    assert len({row["topic"] for row in rows}) >= 6


def test_demo_query_rows_are_well_formed():
    allowed = {"id", "text", "topic", "reference_answer"}
    for row in _demo_rows():
        assert set(row) <= allowed, row["id"]
        assert row["text"].strip(), row["id"]
        assert row["topic"].strip(), row["id"]
        if "reference_answer" in row:
            assert row["topic"] == "math" and row["reference_answer"].strip(), row["id"]


def test_demo_queries_include_trivial_ones_for_the_difficulty_filter():
    texts = {row["text"] for row in _demo_rows()}
    assert "hi, what's 2+2?" in texts


# --- the templates ------------------------------------------------------------------------


def test_difficulty_template_names_every_criterion_and_the_query():
    text = render_template("difficulty.j2", query="Plan a week of vegetarian dinners.")
    assert "Plan a week of vegetarian dinners." in text
    for criterion in CRITERIA:  # what the parser requires, every one asked for
        assert f"{criterion}: 0|1" in text


def test_topic_template_lists_every_topic_once():
    topics = ["math", "coding", "writing"]
    text = render_template("topic.j2", query="Write a haiku.", topics=topics)
    assert "Write a haiku." in text
    assert "Topic: <name>" in text
    for topic in topics:
        assert text.count(f"- {topic}\n") == 1


def test_bootstrap_system_template_uses_the_tag_constants():
    text = render_template(
        "bootstrap_system.j2",
        thoughts_open=THOUGHTS_OPEN,
        thoughts_close=THOUGHTS_CLOSE,
        response_open=RESPONSE_OPEN,
        response_close=RESPONSE_CLOSE,
    )
    for tag in ALL_TAGS:
        assert tag in text


def test_bootstrap_system_template_hard_codes_no_tag():
    source = (PROMPTS_DIR / "bootstrap_system.j2").read_text(encoding="utf-8")
    assert not any(tag in source for tag in ALL_TAGS)


@pytest.mark.parametrize("name", ["difficulty.j2", "topic.j2", "bootstrap_system.j2"])
def test_templates_refuse_missing_variables(name):
    import jinja2

    with pytest.raises(jinja2.UndefinedError):
        render_template(name)
