"""Instruct-SkillMix (Kaur et al., 2024, arXiv 2408.14774): skills list, draws, pairs, gate."""

from __future__ import annotations

import json

import pytest

from bolt.config.data import SkillMixSource
from bolt.curation.skillmix import (
    Skill,
    Skills,
    SkillsFileError,
    draw_mixes,
    generation_prompt,
    parse_pair,
    parse_skills,
    read_skills,
    shirker,
    skillmix_queries,
    write_skills,
)
from bolt.engines.base import Completion

SKILLS = Skills(
    (
        Skill("step-by-step reasoning", "derive"),
        Skill("tone adaptation", "fit the reader"),
        Skill("code", "write code"),
    ),
    (Skill("planning", "plan a thing"), Skill("debugging", "fix a bug")),
)
SOURCE = SkillMixSource(kind="skillmix", name="sm", model="m", examples=3, min_response_words=5)


def test_skills_file_round_trip(tmp_path):
    path = write_skills(tmp_path / "skills.jsonl", SKILLS)
    assert read_skills(path) == SKILLS


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", r"skills.jsonl:1: the skills list is empty"),
        ("\n\n", r"skills.jsonl:1: the skills list is empty"),
        ('{"kind": "skill", "name": "a"}\nnot json\n', r"skills.jsonl:2: not JSON"),
        ('{"kind": "talent", "name": "a"}\n', r"skills.jsonl:1: kind must be one of"),
        ('{"kind": "skill", "name": ""}\n', r"skills.jsonl:1: name must be a non-empty string"),
        (
            '{"kind": "skill", "name": "a", "level": 3}\n',
            r"skills.jsonl:1: unknown keys \['level'\]",
        ),
        ("[1, 2]\n", r"skills.jsonl:1: expected a JSON object"),
        (
            '{"kind": "skill", "name": "a"}\n{"kind": "query_type", "name": "q"}\n',
            r"1 skills, at least 2",
        ),
        (
            '{"kind": "skill", "name": "a"}\n{"kind": "skill", "name": "b"}\n',
            r"no query_type entry",
        ),
    ],
)
def test_bad_skills_files_fail_naming_file_and_line(tmp_path, text, match):
    path = tmp_path / "skills.jsonl"
    path.write_text(text)
    with pytest.raises(SkillsFileError, match=match):
        read_skills(path)


def test_parse_skills_from_a_model_answer():
    answer = (
        "Here you go:\n"
        "1. Skill: Step-by-step reasoning - working a problem out in order\n"
        "- **Skill:** Tone adaptation \u2014 fitting the reader\n"
        "Skill: step-by-step reasoning - duplicate\n"
        "Query type: Debugging help - fixing broken code\n"
        "Some prose that is not an item.\n"
    )
    skills = parse_skills(answer)
    assert [s.name for s in skills.skills] == ["Step-by-step reasoning", "Tone adaptation"]
    assert skills.skills[1].description == "fitting the reader"
    assert [s.name for s in skills.query_types] == ["Debugging help"]


def test_draws_are_seeded_and_distinct():
    a = draw_mixes(SKILLS, 2, 20, seed=0, name="sm")
    assert a == draw_mixes(SKILLS, 2, 20, seed=0, name="sm")
    assert a != draw_mixes(SKILLS, 2, 20, seed=1, name="sm")
    assert all(len(set(m.skills)) == 2 and m.query_type in SKILLS.query_types for m in a)
    with pytest.raises(ValueError, match="3 skills cannot make mixes of 4"):
        draw_mixes(SKILLS, 4, 1, seed=0, name="sm")


def test_generation_prompt_names_both_skills_and_the_query_type():
    mix = draw_mixes(SKILLS, 2, 1, seed=0, name="sm")[0]
    text = generation_prompt(mix)[0]["content"]
    assert all(s.name in text for s in mix.skills) and mix.query_type.name in text


def test_parse_pair_takes_the_last_sections():
    assert parse_pair("### Instruction\nDo X.\n### Response\nDone: X.") == ("Do X.", "Done: X.")
    critique = "### Critique\nToo vague.\n### Instruction\nDo X by noon.\n### Response\nX, by noon."
    assert parse_pair(critique) == ("Do X by noon.", "X, by noon.")
    assert parse_pair("Instruction: do X") is None
    assert parse_pair("### Instruction\nDo X.\n### Response\n") is None


def test_shirkers():
    assert shirker("I'm sorry, but I can't help with that.", 3)[0] == "shirker_refusal"
    assert shirker("As an AI language model I cannot do this.", 3)[0] == "shirker_refusal"
    assert shirker("Yes.", 3)[0] == "shirker_too_short"
    assert shirker("Here is a full plan with three steps and a check.", 3) is None


class ScriptEngine:
    name = "script"

    def __init__(self, answers):
        self.answers, self.prompts = list(answers), []

    def generate(self, requests, sampling, *, stop=None, guided_regex=None):
        self.prompts += [r.messages[0]["content"] for r in requests]
        return [[Completion(r.id, 0, self.answers.pop(0), "stop", 1, 1, None)] for r in requests]


def test_skillmix_queries_with_critique_and_gate():
    good = (
        "### Instruction\nPlan a 3-day Rome trip.\n### Response\n"
        + "Day one: the Forum and more. " * 3
    )
    engine = ScriptEngine(
        [
            good,
            "no sections at all",
            "### Instruction\nFix my loop.\n### Response\nSorry, I can't help.",
            # critiques, for the two parsable drafts
            "### Critique\nFine.\n### Instruction\nPlan a 3-day Rome trip on a budget.\n### Response\n"
            + "Day one: free sights only, then more. " * 3,
            "### Critique\nunusable",
        ]
    )
    mixes = draw_mixes(SKILLS, 2, 3, seed=0, name="sm")
    queries, rejects = skillmix_queries(engine, SOURCE, mixes)
    assert [q.text for q in queries] == ["Plan a 3-day Rome trip on a budget."]
    assert queries[0].meta["refined"] is True
    assert queries[0].reference_answer.startswith("Day one: free sights")
    assert queries[0].meta["skills"] == [s.name for s in mixes[0].skills]
    assert [(r.reason, r.source) for r in rejects] == [
        ("unparsable_pair", "sm#1"),
        ("shirker_refusal", "sm#2"),
    ]
    assert len(engine.prompts) == 5


def test_skills_file_lines_are_json(tmp_path):
    path = write_skills(tmp_path / "s.jsonl", SKILLS)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert {r["kind"] for r in rows} == {"skill", "query_type"}
