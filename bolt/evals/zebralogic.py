"""ZebraLogic: logic grid puzzles graded cell by cell (Lin et al., 2025, arXiv 2502.01100).

The model answers with a JSON object whose ``"solution"`` maps ``"House 1"`` ->
attribute -> value. By default grading is ZeroEval's (``src/evaluation/zebra_grid_eval.py``
with ``extract_last_complete_json`` of ``eval_utils.py``, WildEval/ZeroEval), rule for rule:

- the answer is the last top-level balanced ``{...}`` of the output, braces counted
  without regard to JSON strings, parsed after deleting every newline; when that one
  object does not parse, there is no answer (earlier objects are not tried);
- the puzzle is answered when the object has a ``"solution"`` that is not null (any
  type: a string or a list counts as answered, with no right cell);
- a cell is right when house and attribute are present by their exact names and the
  value, lower-cased and stripped, equals the truth's; an empty value or null is
  wrong, a list counts by its first element; where ZeroEval would raise (a number, a
  non-string in a list, a string where a row should be) the cell is wrong;
- cell accuracy is right cells over all cells of all puzzles, unanswered ones included;
  a puzzle is solved when all its cells are right; "no answer" is the share of puzzles
  without an answer; easy/hard and small/medium/large/XL are its size groups.

``eval.zebralogic.parse: lenient`` instead reads the last JSON object that has a
``"solution"`` mapping, fenced or bare, skipping braces inside strings and trying
earlier objects, and compares numbers as text: it scores a fraction of a point above
the leaderboard, so its metrics carry ``_lenient`` in their names and the headline
(``cell_accuracy``) is left empty. BOLT reports cell accuracy.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bolt.engines.base import Messages
from bolt.evals import Benchmark
from bolt.evals.jsontext import last_json_object
from bolt.evals.spec import BenchmarkContext, BenchmarkSpec, JudgingContext, user_turn
from bolt.longcot import strip_thoughts
from bolt.prompts import render_template
from bolt.records import EvalAnswer, EvalItemResult

NO_ANSWER = "no_answer"
ZEROEVAL = "zeroeval"
LENIENT = "lenient"
# zebra_grid_eval.py's size groups ("houses*attributes"); easy and hard cover every size.
EASY_SIZES = frozenset({"2*2", "2*3", "2*4", "2*5", "2*6", "3*2", "3*3"})
SIZE_GROUPS = {
    "small": frozenset({"2*2", "2*3", "2*4", "2*5", "2*6", "3*2", "3*3", "4*2"}),
    "medium": frozenset({"3*4", "3*5", "3*6", "4*3", "4*4", "5*2", "6*2"}),
    "large": frozenset({"4*5", "5*3", "4*6", "5*4", "6*3"}),
    "xl": frozenset({"5*5", "6*4", "5*6", "6*5", "6*6"}),
}


class GridSolution(BaseModel):
    """The data set's solution table: ``header`` starts with "House"; one row per house."""

    model_config = ConfigDict(frozen=True)

    header: list[str]
    rows: list[list[str]]


class ZebraPuzzle(BaseModel):
    """One item of ``allenai/ZebraLogicBench`` (grid mode); extra keys are kept."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: str
    size: str
    puzzle: str
    solution: GridSolution


@dataclass(frozen=True)
class PuzzleGrade:
    correct_cells: int
    total_cells: int
    answered: bool

    @property
    def solved(self) -> bool:
        return self.answered and self.correct_cells == self.total_cells


class ZebraReport(BaseModel):
    """Percentages, as ZeroEval's summary table shows them."""

    cell_accuracy: float
    puzzle_accuracy: float
    no_answer_rate: float
    easy_puzzle_accuracy: float | None = Field(description="None when no easy puzzle was graded.")
    hard_puzzle_accuracy: float | None
    by_size_group: dict[str, float | None] = Field(
        default_factory=dict, description="Puzzle accuracy of ZeroEval's small/medium/large/xl."
    )
    n_puzzles: int
    parse: str = Field(ZEROEVAL, description="zeroeval (the leaderboard's) or lenient.")


def truth_table(solution: GridSolution) -> dict[str, dict[str, str]]:
    """``{"House 1": {"Name": "Arnold", ...}, ...}``: the shape the model must write."""
    if not solution.header or solution.header[0] != "House":
        raise ValueError(f"solution header must start with 'House', got {solution.header[:1]}")
    columns = solution.header[1:]
    return {
        f"House {i}": dict(zip(columns, row[1:], strict=True))
        for i, row in enumerate(solution.rows, start=1)
    }


# ------------------------------------------------------------ ZeroEval's reading


def zeroeval_last_json(text: str) -> dict | None:
    """ZeroEval's ``extract_last_complete_json``: the last top-level balanced ``{...}``
    (braces in strings count too; a brace that never closes swallows what follows),
    parsed with every newline deleted; None when there is none or it does not parse."""
    depth, start, last = 0, 0, None
    for i, char in enumerate(text):
        if char == "{":
            start = i if depth == 0 else start
            depth += 1
        elif char == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                last = text[start : i + 1]
    if last is None:
        return None
    try:
        return json.loads(last.replace("\n", ""))
    except (json.JSONDecodeError, RecursionError):
        return None


def zeroeval_solution(text: str) -> Any:
    """The ``"solution"`` of the last complete JSON object, whatever its type; None when
    there is none (or it is null): ZeroEval's "no answer"."""
    parsed = zeroeval_last_json(text)
    return parsed.get("solution") if isinstance(parsed, dict) else None


def zeroeval_cell(table: Any, house: str, column: str) -> str | None:
    """A predicted cell as ZeroEval compares it (lower-cased, stripped; a list by its
    first element); None when it scores nothing, where ZeroEval would raise included."""
    try:
        if not (house in table and column in table[house]):
            return None
        value = table[house][column]
        if value is None or len(value) == 0:
            return None
        if type(value) is list:
            return value[0].lower().strip()
        return value.lower().strip() if type(value) is str else None
    except (TypeError, AttributeError, KeyError, IndexError):
        return None


# ------------------------------------------------------------ the lenient reading


def parse_grid_answer(text: str) -> dict | None:
    """The ``"solution"`` mapping of the last JSON object that has one (fenced or bare);
    None when there is none or it is not a mapping."""
    parsed = last_json_object(text, "solution")
    solution = parsed["solution"] if parsed is not None else None
    return solution if isinstance(solution, dict) else None


def lenient_cell(table: Mapping, house: str, column: str) -> str | None:
    """A predicted cell, numbers compared as text; None for an empty cell."""
    row = table.get(house)
    value = row.get(column) if isinstance(row, dict) else None
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None:
        return None
    text = str(value).lower().strip()
    return text or None


def grade(puzzle: ZebraPuzzle, text: str, parse: str = ZEROEVAL) -> PuzzleGrade:
    """Cells of ``puzzle`` that ``text`` gets right, read the ``parse`` way (houses and
    attributes matched by their exact names, as ZeroEval does)."""
    if parse not in (ZEROEVAL, LENIENT):
        raise ValueError(f"unknown ZebraLogic parse {parse!r}: zeroeval or lenient")
    truth = truth_table(puzzle.solution)
    total = sum(len(cells) for cells in truth.values())
    strict = parse == ZEROEVAL
    predicted = zeroeval_solution(text) if strict else parse_grid_answer(text)
    if predicted is None:
        return PuzzleGrade(correct_cells=0, total_cells=total, answered=False)
    cell = zeroeval_cell if strict else lenient_cell
    correct = sum(
        cell(predicted, house, column) == value.lower().strip()
        for house, cells in truth.items()
        for column, value in cells.items()
    )
    return PuzzleGrade(correct_cells=correct, total_cells=total, answered=True)


def graded_result(
    puzzle: ZebraPuzzle,
    model: str,
    answer: str,
    response_only: bool = True,
    parse: str = ZEROEVAL,
) -> EvalItemResult:
    """One graded puzzle as a record; ``score`` is its share of right cells. The grid is
    read from the response only by default: JSON drafts in the thoughts are not the answer."""
    response = strip_thoughts(answer) if response_only else answer
    g = grade(puzzle, response, parse)
    return EvalItemResult(
        benchmark=Benchmark.zebralogic,
        item_id=puzzle.id,
        model=model,
        answer=answer,
        judged_text=response,
        score=g.correct_cells / g.total_cells,
        verdict="solved" if g.solved else "unsolved",
        parse_error=None if g.answered else NO_ANSWER,
        meta={
            "size": puzzle.size,
            "correct_cells": g.correct_cells,
            "total_cells": g.total_cells,
            "parse": parse,
        },
    )


def _percent(numerator: int, denominator: int) -> float | None:
    return 100.0 * numerator / denominator if denominator else None


def _solved_percent(grades: list[tuple[str, PuzzleGrade]], sizes: Iterable[str]) -> float | None:
    group = [g for size, g in grades if size in sizes]
    return _percent(sum(g.solved for g in group), len(group))


def zebra_report(grades: Iterable[tuple[str, PuzzleGrade]], parse: str = ZEROEVAL) -> ZebraReport:
    """ZeroEval's numbers from (size, grade) pairs."""
    grades = list(grades)
    if not grades:
        raise ValueError("no graded puzzles")
    hard = {size for size, _ in grades} - EASY_SIZES
    return ZebraReport(
        cell_accuracy=_percent(
            sum(g.correct_cells for _, g in grades), sum(g.total_cells for _, g in grades)
        ),
        puzzle_accuracy=_percent(sum(g.solved for _, g in grades), len(grades)),
        no_answer_rate=_percent(sum(not g.answered for _, g in grades), len(grades)),
        easy_puzzle_accuracy=_solved_percent(grades, EASY_SIZES),
        hard_puzzle_accuracy=_solved_percent(grades, hard),
        by_size_group={name: _solved_percent(grades, sizes) for name, sizes in SIZE_GROUPS.items()},
        n_puzzles=len(grades),
        parse=parse,
    )


def summarize(results: Iterable[EvalItemResult]) -> ZebraReport:
    """ZeroEval's numbers from graded records (all read the same way)."""
    results = list(results)
    parses = {r.meta.get("parse", LENIENT) for r in results}  # older records: lenient
    if len(parses) > 1:
        raise ValueError(f"records graded with different parses: {sorted(parses)}")
    return zebra_report(
        (
            (
                r.meta["size"],
                PuzzleGrade(
                    r.meta["correct_cells"], r.meta["total_cells"], answered=r.parse_error is None
                ),
            )
            for r in results
        ),
        parse=next(iter(parses), ZEROEVAL),
    )


def grade_zeroeval_results(
    rows: Sequence[Mapping[str, Any]], puzzles: Mapping[str, ZebraPuzzle], parse: str = ZEROEVAL
) -> ZebraReport:
    """A ZeroEval result file (a JSON list of ``{"id", "size", "output": [text], ...}``)
    graded against ``puzzles`` by id, as ``zebra_grid_eval.py`` grades a greedy run: the
    first output with a solution is the answer."""
    grades = []
    for row in rows:
        puzzle = puzzles[row["id"]]
        outputs = [o for o in row.get("output", []) if isinstance(o, str)]
        answered = [o for o in outputs if grade(puzzle, o, parse).answered]
        grades.append((row["size"], grade(puzzle, answered[0] if answered else "", parse)))
    return zebra_report(grades, parse)


# ------------------------------------------------------------ the stage's benchmark


def json_template(solution_header: Sequence[str], houses: int) -> str:
    """ZeroEval's answer template: reasoning, then one blank per house and attribute."""
    row = {column: "___" for column in solution_header[1:]}
    template = {"reasoning": "___", "solution": {f"House {i}": row for i in range(1, houses + 1)}}
    return json.dumps(template, indent=4)


def puzzle_turn(puzzle: ZebraPuzzle) -> Messages:
    """ZeroEval's ``zebra_grid`` prompt: a one-shot example, the puzzle, the JSON template."""
    template = json_template(puzzle.solution.header, len(puzzle.solution.rows))
    return user_turn(
        render_template("evals/zebralogic_user.j2", puzzle=puzzle.puzzle, json_template=template)
    )


def grade_answers(
    ctx: JudgingContext, puzzles: Sequence[ZebraPuzzle], answers: dict[str, EvalAnswer]
) -> list[EvalItemResult]:
    """Graded by rule, cell by cell: no judge. The parse is the config's
    (``eval.zebralogic.parse``, through the benchmark's context)."""
    parse = ctx.benchmark.describe.get("parse", ZEROEVAL)
    return [
        graded_result(p, ctx.model, answers[p.id].turns[0], ctx.response_only, parse)
        for p in puzzles
    ]


def metrics(
    results: list[EvalItemResult], puzzles: Sequence[Any], k: int
) -> tuple[dict[str, float | None], dict[str, Any]]:
    """ZeroEval's three numbers; read the lenient way, they are named ``*_lenient`` and
    the headline is left empty, so no lenient number passes for the leaderboard's."""
    z = summarize(results)
    numbers = {
        "cell_accuracy": z.cell_accuracy,
        "puzzle_accuracy": z.puzzle_accuracy,
        "no_answer_rate": z.no_answer_rate,
    }
    if z.parse == LENIENT:
        numbers = {"cell_accuracy": None} | {f"{n}_lenient": v for n, v in numbers.items()}
    return numbers, z.model_dump()


def prepare(eval_cfg: Any, s3: Any, puzzles: Sequence[Any]) -> BenchmarkContext:
    """The config's parse (``eval.zebralogic.parse``; ZeroEval's by default) for the
    grader, the manifest and the eval fingerprint."""
    section = getattr(eval_cfg, "zebralogic", None)
    parse = getattr(section, "parse", ZEROEVAL)
    parse = getattr(parse, "value", parse)
    return BenchmarkContext(digest=f"parse={parse}", describe={"parse": parse})


SPEC = BenchmarkSpec(
    name=Benchmark.zebralogic,
    item_type=ZebraPuzzle,
    item_id=lambda puzzle: puzzle.id,
    messages=puzzle_turn,
    grade=grade_answers,
    metrics=metrics,
    headline="cell_accuracy",
    prepare=prepare,
)
