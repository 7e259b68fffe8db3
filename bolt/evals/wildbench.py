"""WildBench: WB-Score and WB-Reward (Lin et al., 2024, arXiv 2406.04770; allenai/WildBench).

WB-Score: a judge scores each response 1-10 against the item's checklist; a score S is
rescaled to (S - 5) * 2 so that 5 ("fair") is zero, averaged per task group, and the
five group means are combined with WildBench's official weights ("task macro"). The
leaderboard shows these numbers times 10. WB-Reward: a judge compares the response with
a reference model's (A++ / A+ / A=B / B+ / B++); outcomes score +100 / +50 / 0 / -50 /
-100 for the tested model, with the paper's length rule: a "slightly better" verdict
for a winner more than K characters longer than the loser counts as a tie.

Rules and constants follow the official scripts: ``leaderboard/data_dir/_create_tables.py``
(task groups, weights, length rule, exclusions) and ``_merge_results.py`` (scales).
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bolt.evals import Benchmark, mean_or_none
from bolt.evals.jsontext import last_json_object
from bolt.longcot import strip_thoughts
from bolt.records import EvalItemResult

LEADERBOARD_SCALE = 10  # _merge_results.py: WB_score columns are adjusted scores * 10
DEFAULT_LENGTH_MARGIN = 500  # K of the paper's WB-Reward length rule; -1 disables it
# Markers the official pipeline writes for outputs it cut or found empty.
TRUNCATED_SUFFIX = "... (truncated)"
EMPTY_PLACEHOLDER = "[This model response is empty.]"
UNPARSABLE_SCORE = "unparsable_score"
UNPARSABLE_CHOICE = "unparsable_choice"
_SCORE_VALUE = re.compile(r"\s*\[?\s*(\d+(?:\.\d+)?)\s*(?:/\s*10)?\s*\]?\s*")


class TaskGroup(StrEnum):
    creative = "Creative Tasks"
    planning_reasoning = "Planning & Reasoning"
    math_data_analysis = "Math & Data Analysis"
    information_advice = "Information/Advice seeking"
    coding_debugging = "Coding & Debugging"


# _create_tables.py ``task_group_new``: the 12 tags of the data set in 5 groups.
TAG_TO_GROUP: dict[str, TaskGroup] = {
    "Information seeking": TaskGroup.information_advice,
    "Advice seeking": TaskGroup.information_advice,
    "Creative Writing": TaskGroup.creative,
    "Editing": TaskGroup.creative,
    "Brainstorming": TaskGroup.creative,
    "Role playing": TaskGroup.creative,
    "Others": TaskGroup.creative,
    "Reasoning": TaskGroup.planning_reasoning,
    "Planning": TaskGroup.planning_reasoning,
    "Math": TaskGroup.math_data_analysis,
    "Data Analysis": TaskGroup.math_data_analysis,
    "Coding & Debugging": TaskGroup.coding_debugging,
}

# _create_tables.py ``weights_by_task``: the task-macro weights of WB-Score and WB-Reward.
TASK_GROUP_WEIGHTS: dict[TaskGroup, float] = {
    TaskGroup.creative: 0.5,
    TaskGroup.planning_reasoning: 1.25,
    TaskGroup.math_data_analysis: 1.0,
    TaskGroup.information_advice: 0.75,
    TaskGroup.coding_debugging: 1.25,
}


class PairwiseChoice(StrEnum):
    """The five verdicts of the pairwise template (``eval_template.pairwise.v2.md``)."""

    a_much_better = "A++"
    a_better = "A+"
    tie = "A=B"
    b_better = "B+"
    b_much_better = "B++"


class Outcome(StrEnum):
    """A pairwise verdict seen from the tested model."""

    win_much = "win_much"
    win = "win"
    tie = "tie"
    lose = "lose"
    lose_much = "lose_much"


OUTCOME_REWARD: dict[Outcome, float] = {
    Outcome.win_much: 100.0,
    Outcome.win: 50.0,
    Outcome.tie: 0.0,
    Outcome.lose: -50.0,
    Outcome.lose_much: -100.0,
}


class WildBenchTurn(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    role: str
    content: str


class WildBenchItem(BaseModel):
    """One item of the official data set (``allenai/WildBench``, v1 or v2 fields).

    Unknown keys are kept, not refused: the official file grows fields between versions
    (``timestamp`` in v2, ``appropriate`` in v1).
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    id: str | int
    session_id: str
    conversation_input: list[WildBenchTurn]
    references: dict[str, str | None] = Field(default_factory=dict)
    checklist: list[str]
    length: int
    primary_tag: str
    secondary_tags: list[str] = Field(default_factory=list)
    intent: str | None = None
    appropriate: str | None = None


@dataclass(frozen=True)
class ScoredRow:
    """One WB-Score judgement: its task groups and its 1-10 score (None: unparsable)."""

    groups: frozenset[TaskGroup]
    score: float | None


@dataclass(frozen=True)
class RewardRow:
    """One WB-Reward judgement: its task groups and outcome (None: unparsable)."""

    groups: frozenset[TaskGroup]
    outcome: Outcome | None


class WBScoreReport(BaseModel):
    """WB-Score on the leaderboard's scale: ((mean score) - 5) * 2 * 10."""

    score: float | None = Field(description="Over all scored items.")
    task_macro: float | None = Field(description="Weighted mean of the group scores.")
    by_group: dict[TaskGroup, float]
    n_scored: int
    n_unparsable: int


class WBRewardReport(BaseModel):
    """WB-Reward in [-100, 100] against one reference model, at length margin ``k``."""

    reward: float | None
    task_macro: float | None
    by_group: dict[TaskGroup, float]
    counts: dict[Outcome, int]
    n_unparsable: int
    k: int


def load_items(path: str | Path) -> list[WildBenchItem]:
    """Items from a JSON list or JSONL export of the data set."""
    text = Path(path).read_text(encoding="utf-8")
    rows = (
        json.loads(text)
        if text.lstrip().startswith("[")
        else [json.loads(line) for line in text.splitlines() if line.strip()]
    )
    return [WildBenchItem.model_validate(row) for row in rows]


def task_groups(item: WildBenchItem) -> frozenset[TaskGroup]:
    """The groups of the primary and every secondary tag, as the official tables count
    them: an item with tags in two groups counts in both."""
    return frozenset(TAG_TO_GROUP[tag] for tag in [item.primary_tag, *item.secondary_tags])


def rescale_score(score: float) -> float:
    """(S - 5) * 2: a judge score 1-10 mapped to [-8, 10], 5 ("fair") to 0 (WildBench paper, WB-Score)."""
    return (score - 5) * 2


def task_macro(by_group: dict[TaskGroup, float]) -> float | None:
    """The official weighted mean of per-group numbers.

    ``_create_tables.py`` divides by the sum of all five weights even when a group has no
    item; we divide by the weights of the groups present, which gives the same number on
    the full data set (every group present) and a sane one on a subset.
    """
    if not by_group:
        return None
    total_weight = sum(TASK_GROUP_WEIGHTS[g] for g in by_group)
    return sum(TASK_GROUP_WEIGHTS[g] * v for g, v in by_group.items()) / total_weight


def _judge_field(text: str, key: str) -> str | None:
    """``key`` of the judge's JSON answer; a regex on ``"key": "value"`` when the JSON is
    broken (a local judge often leaves a trailing comma, as the template itself does)."""
    parsed = last_json_object(text, key)
    if parsed is not None:
        return None if parsed[key] is None else str(parsed[key])
    matches = re.findall(rf'"{re.escape(key)}"\s*:\s*"?([^",}}\n]+)', text)
    return matches[-1] if matches else None


def _score_value(value: object) -> float | None:
    """A 1-10 score from a judge's ``score`` field: a number, or a string such as "7",
    "[7]" or "7/10"; None otherwise (the template's own placeholder "[1~10]" included)."""
    match = _SCORE_VALUE.fullmatch("" if value is None else str(value))
    if match is None:
        return None
    score = float(match.group(1))
    return score if 1 <= score <= 10 else None


def parse_score_judgement(text: str) -> float | None:
    """The 1-10 ``score`` of a WB-Score judgement (``eval_template.score.v2.md``);
    None when it is missing or out of range."""
    return _score_value(_judge_field(text, "score"))


def parse_pairwise_choice(text: str) -> PairwiseChoice | None:
    """The ``choice`` of a WB-Reward judgement; None when missing or not one of the five."""
    value = (_judge_field(text, "choice") or "").strip().strip("[]").strip()
    try:
        return PairwiseChoice(value)
    except ValueError:
        return None


_OUTCOME_FOR_A: dict[PairwiseChoice, Outcome] = {
    PairwiseChoice.a_much_better: Outcome.win_much,
    PairwiseChoice.a_better: Outcome.win,
    PairwiseChoice.tie: Outcome.tie,
    PairwiseChoice.b_better: Outcome.lose,
    PairwiseChoice.b_much_better: Outcome.lose_much,
}
_MIRRORED: dict[Outcome, Outcome] = {
    Outcome.win_much: Outcome.lose_much,
    Outcome.win: Outcome.lose,
    Outcome.tie: Outcome.tie,
    Outcome.lose: Outcome.win,
    Outcome.lose_much: Outcome.win_much,
}


def choice_outcome(choice: PairwiseChoice, tested_is_a: bool) -> Outcome:
    """The verdict from the tested model's side (the judge saw it as A or as B; the
    official pipeline draws the side at random per item, ``src/eval.py``)."""
    outcome = _OUTCOME_FOR_A[choice]
    return outcome if tested_is_a else _MIRRORED[outcome]


def apply_length_rule(
    outcome: Outcome, tested_length: int, reference_length: int, k: int
) -> Outcome:
    """A "slightly better" win whose winner is longer than the loser by more than ``k``
    characters becomes a tie; ``k = -1`` disables the rule (``_create_tables.py``: the
    test is ``len(winner) > len(loser) + K``, so exactly K longer still wins).

    Strong verdicts (A++/B++) are never changed: the paper only discounts the slight
    preferences that length bias explains.
    """
    if k < 0:
        return outcome
    if outcome is Outcome.win and tested_length > reference_length + k:
        return Outcome.tie
    if outcome is Outcome.lose and reference_length > tested_length + k:
        return Outcome.tie
    return outcome


def _group_means(rows: list[tuple[frozenset[TaskGroup], float]]) -> dict[TaskGroup, float]:
    values: dict[TaskGroup, list[float]] = defaultdict(list)
    for groups, value in rows:
        for group in groups:
            values[group].append(value)
    return {g: sum(v) / len(v) for g, v in sorted(values.items())}


def wb_score(rows: Iterable[ScoredRow]) -> WBScoreReport:
    """WB-Score overall, per group and task-macro; unparsable judgements are counted and
    left out (the official pipeline drops them when it reads the judge's batch output)."""
    rows = list(rows)
    scored = [
        (r.groups, rescale_score(r.score) * LEADERBOARD_SCALE) for r in rows if r.score is not None
    ]
    by_group = _group_means(scored)
    return WBScoreReport(
        score=mean_or_none([value for _, value in scored]),
        task_macro=task_macro(by_group),
        by_group=by_group,
        n_scored=len(scored),
        n_unparsable=len(rows) - len(scored),
    )


def wb_reward(rows: Iterable[RewardRow], k: int) -> WBRewardReport:
    """WB-Reward overall, per group and task-macro, for outcomes already judged at ``k``."""
    rows = list(rows)
    judged = [(r.groups, r.outcome) for r in rows if r.outcome is not None]
    rewards = [(groups, OUTCOME_REWARD[outcome]) for groups, outcome in judged]
    by_group = _group_means(rewards)
    counts = Counter(outcome for _, outcome in judged)
    return WBRewardReport(
        reward=mean_or_none([value for _, value in rewards]),
        task_macro=task_macro(by_group),
        by_group=by_group,
        counts={o: counts.get(o, 0) for o in Outcome},
        n_unparsable=len(rows) - len(judged),
        k=k,
    )


# ------------------------------------------------------------- our own judged records


def score_result(
    item: WildBenchItem, model: str, answer: str, judge_raw: str, judged_text: str | None = None
) -> EvalItemResult:
    """A WB-Score judgement as a record (``score`` is the judge's 1-10); ``judged_text``
    is what the judge saw (default: the answer without its thoughts)."""
    score = parse_score_judgement(judge_raw)
    return EvalItemResult(
        benchmark=Benchmark.wildbench,
        item_id=item.session_id,
        model=model,
        answer=answer,
        judged_text=strip_thoughts(answer) if judged_text is None else judged_text,
        score=score,
        parse_error=None if score is not None else UNPARSABLE_SCORE,
        judge_raw=judge_raw,
        meta={"mode": "score"},
    )


def pairwise_result(
    item: WildBenchItem,
    model: str,
    answer: str,
    reference_model: str,
    reference_text: str,
    tested_is_a: bool,
    judge_raw: str,
    judged_text: str | None = None,
) -> EvalItemResult:
    """A WB-Reward judgement as a record. ``verdict`` keeps the judge's raw choice so that
    K can change at summary time without judging again (as the official tables do)."""
    choice = parse_pairwise_choice(judge_raw)
    return EvalItemResult(
        benchmark=Benchmark.wildbench,
        item_id=item.session_id,
        model=model,
        answer=answer,
        judged_text=strip_thoughts(answer) if judged_text is None else judged_text,
        verdict=choice.value if choice is not None else None,
        parse_error=None if choice is not None else UNPARSABLE_CHOICE,
        judge_raw=judge_raw,
        meta={
            "mode": "pairwise",
            "reference_model": reference_model,
            "reference_length": len(reference_text),
            "tested_is_a": tested_is_a,
        },
    )


def summarize_scores(
    results: Iterable[EvalItemResult], items: Iterable[WildBenchItem]
) -> WBScoreReport:
    groups = {item.session_id: task_groups(item) for item in items}
    return wb_score(ScoredRow(groups[r.item_id], r.score) for r in results)


def summarize_rewards(
    results: Iterable[EvalItemResult],
    items: Iterable[WildBenchItem],
    k: int = DEFAULT_LENGTH_MARGIN,
) -> WBRewardReport:
    groups = {item.session_id: task_groups(item) for item in items}
    rows = []
    for r in results:
        outcome = None
        if r.verdict is not None:
            outcome = apply_length_rule(
                choice_outcome(PairwiseChoice(r.verdict), r.meta["tested_is_a"]),
                len(r.judged_text),
                r.meta["reference_length"],
                k,
            )
        rows.append(RewardRow(groups[r.item_id], outcome))
    return wb_reward(rows, k)


# ------------------------------------------------- WildBench's own eval-results files


class OfficialScoreResult(BaseModel):
    """A row of ``eval_results/.../score.v2/eval=<judge>/<model>.json``."""

    model_config = ConfigDict(extra="allow", frozen=True)

    session_id: str
    parsed_result: dict[str, Any] | None = None
    score: str | float | None = None
    model_output: str | list[str] = ""
    model_test: str | None = None


class OfficialPairwiseResult(BaseModel):
    """A row of ``eval_results/.../pairwise.v2/eval=<judge>/ref=<model>/<model>.json``."""

    model_config = ConfigDict(extra="allow", frozen=True)

    session_id: str
    parsed_result: dict[str, Any] | None = None
    model_A: str
    model_B: str
    winner: str
    extent: int
    model_outputs: dict[str, str]


def load_official_results(path: str | Path, model: type[BaseModel]) -> list[Any]:
    """Rows of an official eval-results JSON file, validated as ``model``."""
    rows = json.loads(Path(path).read_text(encoding="utf-8"))
    return [model.model_validate(row) for row in rows]


def official_score_report(
    results: Iterable[OfficialScoreResult], items: Iterable[WildBenchItem]
) -> WBScoreReport:
    """The leaderboard's WB-Score columns from an official score file.

    As ``_create_tables.py``: every score enters the overall mean, but a truncated or
    empty output enters no task group (its row gets no groups here).
    """
    groups = {item.session_id: task_groups(item) for item in items}
    rows = []
    for r in results:
        output = r.model_output[0] if isinstance(r.model_output, list) else r.model_output
        raw = r.score if r.score is not None else (r.parsed_result or {}).get("score")
        cut_or_empty = output.endswith(TRUNCATED_SUFFIX) or not output
        rows.append(
            ScoredRow(frozenset() if cut_or_empty else groups[r.session_id], _score_value(raw))
        )
    return wb_score(rows)


def official_reward_report(
    results: Iterable[OfficialPairwiseResult],
    items: Iterable[WildBenchItem],
    reference_model: str,
    k: int = DEFAULT_LENGTH_MARGIN,
) -> WBRewardReport:
    """The leaderboard's WB-Reward columns (``reward``, ``task_macro_reward``) at ``k``.

    The official script skips a pair when either output is truncated or empty, yet
    divides the overall reward by the number of all pairs: such a pair is a tie that
    belongs to no task group, which is how it is counted here.
    """
    groups = {item.session_id: task_groups(item) for item in items}
    rows = []
    for r in results:
        tested = r.model_B if reference_model in r.model_A else r.model_A
        reference = r.model_A if tested == r.model_B else r.model_B
        tested_text, reference_text = r.model_outputs[tested], r.model_outputs[reference]
        if any(
            t.endswith(TRUNCATED_SUFFIX) or t == EMPTY_PLACEHOLDER
            for t in (tested_text, reference_text)
        ):
            rows.append(RewardRow(frozenset(), Outcome.tie))
            continue
        if r.winner == "tie":
            outcome = Outcome.tie
        elif r.winner == tested:
            outcome = Outcome.win_much if r.extent == 2 else Outcome.win
        else:
            outcome = Outcome.lose_much if r.extent == 2 else Outcome.lose
        outcome = apply_length_rule(outcome, len(tested_text), len(reference_text), k)
        rows.append(RewardRow(groups[r.session_id], outcome))
    return wb_reward(rows, k)
