"""ZebraLogic: logic grid puzzles graded cell by cell (Lin et al., 2025, arXiv 2502.01100).

The model answers with a JSON object whose ``"solution"`` maps ``"House 1"`` ->
attribute -> value. Grading follows ZeroEval's ``src/evaluation/zebra_grid_eval.py``:
a cell is right when the predicted value equals the truth after lower-casing and
stripping (a list counts by its first element); cell accuracy is right cells over all
cells of all puzzles, puzzles without an answer included; a puzzle is solved when all
its cells are right; "no answer" is a puzzle whose output has no parsable solution.
BOLT reports cell accuracy.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bolt.engines.base import Messages
from bolt.evals import Benchmark
from bolt.evals.jsontext import last_json_object
from bolt.evals.spec import BenchmarkSpec, JudgingContext, user_turn
from bolt.longcot import strip_thoughts
from bolt.prompts import render_template
from bolt.records import EvalAnswer, EvalItemResult

NO_ANSWER = "no_answer"
# zebra_grid_eval.py: the sizes ("houses*attributes") it reports as easy; the rest are hard.
EASY_SIZES = frozenset({"2*2", "2*3", "2*4", "2*5", "2*6", "3*2", "3*3"})


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
    n_puzzles: int


def truth_table(solution: GridSolution) -> dict[str, dict[str, str]]:
    """``{"House 1": {"Name": "Arnold", ...}, ...}``: the shape the model must write."""
    if not solution.header or solution.header[0] != "House":
        raise ValueError(f"solution header must start with 'House', got {solution.header[:1]}")
    columns = solution.header[1:]
    return {
        f"House {i}": dict(zip(columns, row[1:], strict=True))
        for i, row in enumerate(solution.rows, start=1)
    }


def parse_grid_answer(text: str) -> dict | None:
    """The ``"solution"`` mapping of the last JSON object that has one (fenced or bare);
    None when there is none or it is not a mapping."""
    parsed = last_json_object(text, "solution")
    solution = parsed["solution"] if parsed is not None else None
    return solution if isinstance(solution, dict) else None


def _normalize(value: object) -> str | None:
    """A predicted cell as ZeroEval compares it; None for an empty cell. A list counts by
    its first element; numbers are compared as text (ZeroEval raises on them)."""
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None:
        return None
    text = str(value).lower().strip()
    return text or None


def grade(puzzle: ZebraPuzzle, text: str) -> PuzzleGrade:
    """Cells of ``puzzle`` that ``text`` gets right (houses and attributes matched by
    their exact names, as ZeroEval does)."""
    truth = truth_table(puzzle.solution)
    total = sum(len(cells) for cells in truth.values())
    predicted = parse_grid_answer(text)
    if predicted is None:
        return PuzzleGrade(correct_cells=0, total_cells=total, answered=False)
    correct = 0
    for house, cells in truth.items():
        row = predicted.get(house)
        if not isinstance(row, dict):
            continue
        for column, value in cells.items():
            correct += _normalize(row.get(column)) == value.lower().strip()
    return PuzzleGrade(correct_cells=correct, total_cells=total, answered=True)


def graded_result(
    puzzle: ZebraPuzzle, model: str, answer: str, response_only: bool = True
) -> EvalItemResult:
    """One graded puzzle as a record; ``score`` is its share of right cells. The grid is
    read from the response only by default: JSON drafts in the thoughts are not the answer."""
    response = strip_thoughts(answer) if response_only else answer
    g = grade(puzzle, response)
    return EvalItemResult(
        benchmark=Benchmark.zebralogic,
        item_id=puzzle.id,
        model=model,
        answer=answer,
        judged_text=response,
        score=g.correct_cells / g.total_cells,
        verdict="solved" if g.solved else "unsolved",
        parse_error=None if g.answered else NO_ANSWER,
        meta={"size": puzzle.size, "correct_cells": g.correct_cells, "total_cells": g.total_cells},
    )


def _percent(numerator: int, denominator: int) -> float | None:
    return 100.0 * numerator / denominator if denominator else None


def zebra_report(grades: Iterable[tuple[str, PuzzleGrade]]) -> ZebraReport:
    """ZeroEval's numbers from (size, grade) pairs."""
    grades = list(grades)
    if not grades:
        raise ValueError("no graded puzzles")
    easy = [g for size, g in grades if size in EASY_SIZES]
    hard = [g for size, g in grades if size not in EASY_SIZES]
    return ZebraReport(
        cell_accuracy=_percent(
            sum(g.correct_cells for _, g in grades), sum(g.total_cells for _, g in grades)
        ),
        puzzle_accuracy=_percent(sum(g.solved for _, g in grades), len(grades)),
        no_answer_rate=_percent(sum(not g.answered for _, g in grades), len(grades)),
        easy_puzzle_accuracy=_percent(sum(g.solved for g in easy), len(easy)),
        hard_puzzle_accuracy=_percent(sum(g.solved for g in hard), len(hard)),
        n_puzzles=len(grades),
    )


def summarize(results: Iterable[EvalItemResult]) -> ZebraReport:
    """ZeroEval's numbers from graded records."""
    return zebra_report(
        (
            r.meta["size"],
            PuzzleGrade(
                r.meta["correct_cells"], r.meta["total_cells"], answered=r.parse_error is None
            ),
        )
        for r in results
    )


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
    """Graded by rule, cell by cell: no judge."""
    return [graded_result(p, ctx.model, answers[p.id].turns[0], ctx.response_only) for p in puzzles]


def metrics(
    results: list[EvalItemResult], puzzles: Sequence[Any], k: int
) -> tuple[dict[str, float | None], dict[str, Any]]:
    z = summarize(results)
    return {
        "cell_accuracy": z.cell_accuracy,
        "puzzle_accuracy": z.puzzle_accuracy,
        "no_answer_rate": z.no_answer_rate,
    }, z.model_dump()


SPEC = BenchmarkSpec(
    name=Benchmark.zebralogic,
    item_type=ZebraPuzzle,
    item_id=lambda puzzle: puzzle.id,
    messages=puzzle_turn,
    grade=grade_answers,
    metrics=metrics,
    headline="cell_accuracy",
)
