"""DRIFT's pure parts on hand-built rows: parsing with rejects, the revision request and
the pair (original prompt without the feedback, revision chosen, real turn rejected)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bolt.config import DRIFT_INSTRUCTION, QuerySource
from bolt.online.drift import (
    PairProblem,
    RowProblem,
    choose_rows,
    drift_pair,
    parse_row,
    revision_request,
)
from bolt.records import DissatisfactionRow, PreferencePair

REPO = Path(__file__).resolve().parents[2]
SOURCE = QuerySource(name="wf", uri="rows.jsonl", id_field="id")
ROW = {
    "id": "r1",
    "prompt": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "How many minutes are in 3 hours?"},
    ],
    "rejected": [{"role": "assistant", "content": "160 minutes."}],
    "user_preference": {"role": "user", "content": "Wrong, check your math."},
}


def test_a_release_format_row_parses():
    row = parse_row(ROW, SOURCE)
    assert isinstance(row, DissatisfactionRow)
    assert row.id == "wf-r1" and row.source == "wf"
    assert [m.role for m in row.prompt] == ["system", "user"]
    assert row.dissatisfying == "160 minutes." and row.feedback == "Wrong, check your math."
    assert row.satisfied is None
    # Strings and single messages are accepted for the turns too; a satisfied follow-up kept.
    flat = {**ROW, "rejected": "160.", "user_preference": "No.", "satisfied": "180 minutes."}
    parsed = parse_row(flat, SOURCE)
    assert parsed.dissatisfying == "160." and parsed.satisfied == "180 minutes."


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"rejected": []}, RowProblem.NO_ASSISTANT_TURN),
        ({"rejected": [{"role": "assistant", "content": "  "}]}, RowProblem.NO_ASSISTANT_TURN),
        ({"rejected": [{"role": "user", "content": "hi"}]}, RowProblem.NO_ASSISTANT_TURN),
        ({"rejected": None}, RowProblem.NO_ASSISTANT_TURN),
        ({"user_preference": {"role": "user", "content": "   "}}, RowProblem.EMPTY_FEEDBACK),
        ({"user_preference": None}, RowProblem.EMPTY_FEEDBACK),
        ({"prompt": []}, RowProblem.NO_USER_TURN),
        ({"prompt": [{"role": "assistant", "content": "Hello"}]}, RowProblem.NO_USER_TURN),
        ({"prompt": [{"role": "user"}]}, RowProblem.MALFORMED_TURN),
        ({"prompt": "just text"}, RowProblem.MALFORMED_TURN),
    ],
)
def test_invalid_rows_are_rejects_with_reasons(change, problem):
    assert parse_row({**ROW, **change}, SOURCE) == problem
    assert parse_row(["not", "a", "row"], SOURCE) == RowProblem.NOT_AN_OBJECT


def test_the_revision_request_carries_the_turn_the_feedback_and_the_instruction():
    row = parse_row(ROW, SOURCE)
    request = revision_request(row, DRIFT_INSTRUCTION)
    assert [m.role for m in request] == ["system", "user", "assistant", "user"]
    assert request[2].content == "160 minutes."
    assert request[3].content == f"Wrong, check your math.\n\n{DRIFT_INSTRUCTION}"
    assert DRIFT_INSTRUCTION.startswith(
        "Based on the user's latest feedback, please provide an improved response"
    )


def test_the_pair_keeps_the_original_prompt_and_anchors_on_the_real_turn():
    row = parse_row(ROW, SOURCE)
    pair = drift_pair(row, "  3 hours are 180 minutes.\n", iteration=2)
    assert isinstance(pair, PreferencePair)
    assert pair.prompt == row.prompt  # no feedback, no dissatisfying turn, no instruction
    assert all("check your math" not in m.content for m in pair.prompt)
    assert pair.chosen == "3 hours are 180 minutes." and pair.rejected == "160 minutes."
    assert (pair.prompt_id, pair.iteration) == ("wf-r1", 2)
    assert pair.chosen_reward > pair.rejected_reward
    assert drift_pair(row, "   ", 1) == PairProblem.EMPTY_REVISION
    assert drift_pair(row, "160 minutes.", 1) == PairProblem.SAME_AS_REJECTED


def test_rows_per_iteration_takes_blocks_of_one_seeded_shuffle():
    rows = [parse_row({**ROW, "id": f"r{i}"}, SOURCE) for i in range(5)]
    assert [r.id for r in choose_rows(rows, None, 0, 1)] == sorted(r.id for r in rows)
    first, second = choose_rows(rows, 2, 0, 1), choose_rows(rows, 2, 0, 2)
    assert len(first) == 2 and not {r.id for r in first} & {r.id for r in second}


def test_the_handmade_file_has_the_release_format_and_two_rejects():
    lines = (REPO / "data/online/dissatisfaction.handmade.jsonl").read_text().splitlines()
    parsed = [parse_row(json.loads(line), SOURCE) for line in lines]
    problems = [p for p in parsed if isinstance(p, RowProblem)]
    assert sorted(problems) == [RowProblem.EMPTY_FEEDBACK, RowProblem.NO_ASSISTANT_TURN]
    assert sum(isinstance(p, DissatisfactionRow) for p in parsed) == 6
