"""ZebraLogic grading: ZeroEval's rules by default (checked on hand-made outputs in ZeroEval's
result layout, with the numbers its ``zebra_grid_eval.py`` gives on them), the lenient
parse as an option; partial credit per cell, solved puzzles, no-answer rate."""

import json
from pathlib import Path

import pytest

from bolt.evals import zebralogic as zl
from bolt.evals.zebralogic import PuzzleGrade

FIXTURES = Path(__file__).parents[1] / "fixtures" / "evals"


@pytest.fixture(scope="module")
def puzzles():
    lines = (FIXTURES / "zebralogic_puzzles.handmade.jsonl").read_text().splitlines()
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
    for text in ["I could not solve it.", '{"reasoning": "...", "solution": null}']:
        for parse in (zl.ZEROEVAL, zl.LENIENT):
            assert zl.grade(puzzles[0], text, parse) == PuzzleGrade(0, 4, answered=False)
    # ZeroEval counts any non-null solution as an answer (with no right cell); the
    # lenient parse wants a table
    assert zl.grade(puzzles[0], '{"solution": "House 1"}') == PuzzleGrade(0, 4, answered=True)
    assert not zl.grade(puzzles[0], '{"solution": "House 1"}', zl.LENIENT).answered


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


# ------------------------------------------------------------ ZeroEval's result layout

RESULTS = FIXTURES / "zeroeval_zebra_grid_results.handmade.json"

# (right cells, answered) per row of the results file: what ZeroEval's eval_model(...,
# mode="single") writes in its parsed results for them (correct_cells, parsed), and what
# the lenient parse reads.
ZEROEVAL_GRADES = {
    "zz-1-solved": (4, True),
    "zz-2-partial": (9, True),
    "zz-3-unclosed-brace": (0, False),  # the stray "{" never closes: no complete object
    "zz-4-last-not-json": (0, False),  # only the last object is tried
    "zz-5-newline-in-value": (4, True),  # newlines deleted: "Arn\nold" reads "Arnold"
    "zz-6-brace-in-string": (0, False),  # the "}" in a string ends the object early
    "zz-7-solution-not-a-table": (0, True),
    "zz-8-no-json": (0, False),
    "zz-9-solved-hard": (12, True),
}
LENIENT_GRADES = ZEROEVAL_GRADES | {
    "zz-3-unclosed-brace": (4, True),
    "zz-4-last-not-json": (4, True),
    "zz-5-newline-in-value": (3, True),
    "zz-6-brace-in-string": (4, True),
    "zz-7-solution-not-a-table": (0, False),
}


@pytest.fixture(scope="module")
def zeroeval_run():
    lines = (FIXTURES / "zeroeval_zebra_puzzles.handmade.jsonl").read_text().splitlines()
    puzzles = {p.id: p for p in (zl.ZebraPuzzle.model_validate_json(line) for line in lines)}
    return puzzles, json.loads(RESULTS.read_text())


@pytest.mark.parametrize(
    ("parse", "expected"), [(zl.ZEROEVAL, ZEROEVAL_GRADES), (zl.LENIENT, LENIENT_GRADES)]
)
def test_each_output_as_zeroeval_reads_it(zeroeval_run, parse, expected):
    puzzles, rows = zeroeval_run
    for row in rows:
        g = zl.grade(puzzles[row["id"]], row["output"][0], parse)
        assert (g.correct_cells, g.answered) == expected[row["id"]], row["id"]


def test_the_numbers_zeroeval_prints_for_the_file(zeroeval_run):
    # zebra_grid_eval.py on this file: Puzzle Acc 33.33, Cell Acc 48.33, No answer 44.44,
    # Easy 33.33, Hard 33.33 (29 of 60 cells; 3 of 9 solved; 4 without an answer)
    report = zl.grade_zeroeval_results(zeroeval_run[1], zeroeval_run[0])
    assert round(report.puzzle_accuracy, 2) == 33.33
    assert round(report.cell_accuracy, 2) == 48.33
    assert round(report.no_answer_rate, 2) == 44.44
    assert round(report.easy_puzzle_accuracy, 2) == 33.33
    assert round(report.hard_puzzle_accuracy, 2) == 33.33
    assert report.by_size_group["small"] == pytest.approx(100 / 3)
    assert report.by_size_group["large"] is None
    assert (report.n_puzzles, report.parse) == (9, "zeroeval")


def test_the_lenient_parse_scores_higher(zeroeval_run):
    report = zl.grade_zeroeval_results(zeroeval_run[1], zeroeval_run[0], zl.LENIENT)
    assert report.cell_accuracy == pytest.approx(100 * 40 / 60)
    assert report.puzzle_accuracy == pytest.approx(100 * 5 / 9)
    assert report.no_answer_rate == pytest.approx(100 * 2 / 9)
    assert report.parse == "lenient"


def test_where_zeroeval_would_raise_the_cell_is_wrong(puzzles):
    # ZeroEval raises ValueError on a number and AttributeError on a list of numbers
    text = json.dumps(
        {"solution": {"House 1": {"Name": 7, "Drink": [1]}, "House 2": "Peter water"}}
    )
    assert zl.grade(puzzles[0], text) == PuzzleGrade(0, 4, answered=True)
    numbers = json.dumps({"solution": {"House 1": {"Name": "Arnold", "Drink": 5}}})
    assert zl.grade(puzzles[0], numbers, zl.LENIENT).correct_cells == 1


def _results(puzzles, parse):
    right = _answer(RIGHT)
    return [zl.graded_result(p, "m", right, parse=parse) for p in puzzles]


def test_metrics_name_the_lenient_parse(puzzles):
    strict, _ = zl.metrics(_results(puzzles, zl.ZEROEVAL), puzzles, 500)
    assert list(strict) == ["cell_accuracy", "puzzle_accuracy", "no_answer_rate"]
    lenient, details = zl.metrics(_results(puzzles, zl.LENIENT), puzzles, 500)
    assert lenient["cell_accuracy"] is None  # no headline: not the leaderboard's number
    assert lenient["cell_accuracy_lenient"] == strict["cell_accuracy"]
    assert details["parse"] == "lenient"
    with pytest.raises(ValueError, match="different parses"):
        zl.summarize(_results(puzzles[:1], zl.ZEROEVAL) + _results(puzzles[1:], zl.LENIENT))


def test_the_config_chooses_the_parse(puzzles):
    from bolt.config.evaluation import ZebraLogicEvalConfig
    from bolt.evals.spec import JudgingContext
    from bolt.records import EvalAnswer

    class Section:
        zebralogic = ZebraLogicEvalConfig(parse="lenient")

    context = zl.SPEC.prepare(Section(), None, puzzles)
    assert context.describe == {"parse": "lenient"} and context.digest == "parse=lenient"
    assert zl.SPEC.prepare(object(), None, puzzles).describe == {"parse": "zeroeval"}
    ctx = JudgingContext(model="m", judge=None, response_only=True, benchmark=context)
    answer = EvalAnswer.model_construct(item_id=puzzles[0].id, turns=['{"solution": "x"}'])
    (result,) = zl.grade_answers(ctx, puzzles[:1], {puzzles[0].id: answer})
    assert (result.meta["parse"], result.parse_error) == ("lenient", zl.NO_ANSWER)
