"""ZebraLogic grading by hand: partial credit per cell, solved puzzles, no-answer rate."""

import json
from pathlib import Path

import pytest

from bolt.evals import zebralogic as zl
from bolt.evals.zebralogic import PuzzleGrade

FIXTURES = Path(__file__).parents[1] / "fixtures" / "evals"


@pytest.fixture(scope="module")
def puzzles():
    lines = (FIXTURES / "zebralogic_puzzles.jsonl").read_text().splitlines()
    return [zl.ZebraPuzzle.model_validate(json.loads(line)) for line in lines]


def _answer(solution: dict) -> str:
    return (
        "Reasoning first.\n```json\n"
        + json.dumps({"reasoning": "...", "solution": solution})
        + "\n```"
    )


def test_truth_table(puzzles):
    assert zl.truth_table(puzzles[0].solution) == {
        "House 1": {"Name": "Arnold", "Drink": "tea"},
        "House 2": {"Name": "Peter", "Drink": "water"},
    }


def test_case_and_whitespace_do_not_matter(puzzles):
    text = _answer(
        {
            "House 1": {"Name": " arnold ", "Drink": "TEA"},
            "House 2": {"Name": "Peter", "Drink": "water"},
        }
    )
    grade = zl.grade(puzzles[0], text)
    assert grade == PuzzleGrade(correct_cells=4, total_cells=4, answered=True)
    assert grade.solved


def test_partial_credit_per_cell(puzzles):
    # House 2's name is wrong; a list counts by its first element
    text = _answer(
        {
            "House 1": {"Name": "Arnold", "Drink": "tea"},
            "House 2": {"Name": "Eric", "Drink": ["water"]},
        }
    )
    grade = zl.grade(puzzles[0], text)
    assert (grade.correct_cells, grade.total_cells, grade.solved) == (3, 4, False)
    # a missing house, an empty cell and a null cell score nothing
    text = _answer({"House 1": {"Name": "", "Drink": None}})
    assert zl.grade(puzzles[0], text).correct_cells == 0


# The first puzzle's solution, and the same houses swapped.
RIGHT = {
    "House 1": {"Name": "Arnold", "Drink": "tea"},
    "House 2": {"Name": "Peter", "Drink": "water"},
}
WRONG = {
    "House 1": {"Name": "Peter", "Drink": "water"},
    "House 2": {"Name": "Arnold", "Drink": "tea"},
}


def test_bare_json_and_the_last_object_win(puzzles):
    text = f"Draft: {json.dumps({'solution': WRONG})}\nFinal: {json.dumps({'solution': RIGHT})}"
    assert zl.grade(puzzles[0], text).solved


def test_no_answer(puzzles):
    for text in [
        "I could not solve it.",
        '{"reasoning": "...", "solution": null}',
        '{"solution": "House 1"}',
    ]:
        assert zl.grade(puzzles[0], text) == PuzzleGrade(0, 4, answered=False)


def test_report_numbers(puzzles):
    grades = [
        ("2*2", PuzzleGrade(4, 4, True)),  # solved
        ("2*2", PuzzleGrade(3, 4, True)),  # partial
        ("3*4", PuzzleGrade(0, 12, False)),  # no answer: its cells still count as wrong
    ]
    report = zl.zebra_report(grades)
    assert report.cell_accuracy == pytest.approx(100 * 7 / 20)
    assert report.puzzle_accuracy == pytest.approx(100 / 3)
    assert report.no_answer_rate == pytest.approx(100 / 3)
    assert report.easy_puzzle_accuracy == pytest.approx(50.0)
    assert report.hard_puzzle_accuracy == pytest.approx(0.0)


def test_records_read_the_response_not_the_thoughts(puzzles):
    answer = f"<thoughts>\n{_answer(RIGHT)}\n</thoughts>\n<response>\n{_answer(WRONG)}\n</response>"
    result = zl.graded_result(puzzles[0], "m", answer)
    assert (result.score, result.verdict, result.parse_error) == (0.0, "unsolved", None)
    results = [result, zl.graded_result(puzzles[1], "m", "no idea")]
    assert results[1].parse_error == zl.NO_ANSWER
    report = zl.summarize(results)
    assert report.cell_accuracy == pytest.approx(0.0)
    assert report.no_answer_rate == pytest.approx(50.0)
