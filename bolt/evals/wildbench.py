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

import hashlib
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from bolt.engines.base import Messages
from bolt.evals import Benchmark, mean_or_none
from bolt.evals.jsontext import last_json_object
from bolt.evals.judges import JudgeRequest, ReplyFormat
from bolt.evals.spec import (
    BenchmarkSpec,
    JudgingContext,
    judged_record,
    run_judge,
    user_turn,
)
from bolt.evals.wildbench_files import WildBenchItem, prepare, version
from bolt.prompts import render_template
from bolt.records import EvalAnswer, EvalItemResult

LEADERBOARD_SCALE = 10  # _merge_results.py: WB_score columns are adjusted scores * 10
DEFAULT_LENGTH_MARGIN = 500  # K of the paper's WB-Reward length rule; -1 disables it
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


def score_value(value: object) -> float | None:
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
    return score_value(_judge_field(text, "score"))


def parse_pairwise_choice(text: str) -> PairwiseChoice | None:
    """The ``choice`` of a WB-Reward judgement; None when missing or not one of the five."""
    value = (_judge_field(text, "choice") or "").strip().strip("[]").strip()
    try:
        return PairwiseChoice(value)
    except ValueError:
        return None


# Both enums list the verdicts from best for A to best for B, so A's outcome of a choice is
# the outcome in the same place, and B's is the one in the mirrored place.
_OUTCOME_FOR_A: dict[PairwiseChoice, Outcome] = dict(zip(PairwiseChoice, Outcome, strict=True))
_MIRRORED: dict[Outcome, Outcome] = dict(zip(Outcome, reversed(Outcome), strict=True))


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
    return judged_record(
        Benchmark.wildbench,
        item.session_id,
        model,
        answer,
        judge_raw,
        judged_text,
        unparsable=UNPARSABLE_SCORE,
        score=parse_score_judgement(judge_raw),
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
    return judged_record(
        Benchmark.wildbench,
        item.session_id,
        model,
        answer,
        judge_raw,
        judged_text,
        unparsable=UNPARSABLE_CHOICE,
        verdict=choice.value if choice is not None else None,
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


# ------------------------------------------------------------ the stage's benchmark


def conversation(item: WildBenchItem) -> Messages:
    """The conversation as given; the model answers its last user turn."""
    return [{"role": t.role, "content": t.content} for t in item.conversation_input]


def template_fields(item: WildBenchItem) -> dict[str, str]:
    """History, current query and checklist, as WildBench's ``eval.py`` fills its templates."""
    turns = item.conversation_input
    history = "".join(f"{t.role.upper()}: {t.content}\n\n" for t in turns[:-1])
    return {
        "history": history.strip(),
        "user_query": turns[-1].content,
        "checklist": "\n".join(f"- {c}" for c in item.checklist),
    }


def shows_tested_as_a(session_id: str, seed: int) -> bool:
    """The side of the tested model, drawn per item (WildBench draws it at random) and
    seeded, so a rerun asks the judge exactly the same question."""
    return hashlib.sha256(f"{seed}:{session_id}".encode()).digest()[0] % 2 == 0


def _request(
    item: WildBenchItem, mode: str, template: str, reply_format: ReplyFormat, **answers: str
) -> JudgeRequest:
    """A score.v2 (one answer) or pairwise.v2 (candidates A and B) judge request."""
    fields = template_fields(item)
    return JudgeRequest(
        id=f"wildbench/{item.session_id}/{mode}",
        messages=user_turn(render_template(template, **answers, **fields)),
        reply_format=reply_format,
        query=fields["user_query"],
        answers=tuple(answers.values()),
        checklist=tuple(item.checklist),
    )


def _pairwise(
    ctx: JudgingContext, item: WildBenchItem, text: str, shown: str, reference_model: str
) -> tuple[JudgeRequest, Callable[[str], EvalItemResult]]:
    """The WB-Reward request against one reference model's answer, and its record."""
    reference = ctx.shown(ctx.references[reference_model][item.session_id].turns[0])
    a_is_tested = shows_tested_as_a(item.session_id, ctx.seed)
    a, b = (shown, reference) if a_is_tested else (reference, shown)
    request = _request(
        item,
        f"pairwise/{reference_model}",
        "evals/wildbench_pairwise.j2",
        ReplyFormat.wb_choice,
        candidate_a=a,
        candidate_b=b,
    )
    return request, lambda raw: pairwise_result(
        item, ctx.model, text, reference_model, reference, a_is_tested, raw, shown
    )


def grade(
    ctx: JudgingContext, items: Sequence[WildBenchItem], answers: dict[str, EvalAnswer]
) -> list[EvalItemResult]:
    """WB-Score for every answer; WB-Reward against each reference model too."""
    requests, build = [], []
    for item in items:
        text = answers[item.session_id].turns[0]
        shown = ctx.shown(text)
        requests.append(
            _request(
                item, "score", "evals/wildbench_score.j2", ReplyFormat.wb_score, model_output=shown
            )
        )
        build.append(
            lambda raw, item=item, text=text, shown=shown: score_result(
                item, ctx.model, text, raw, shown
            )
        )
        for reference_model in ctx.references:
            request, record = _pairwise(ctx, item, text, shown, reference_model)
            requests.append(request)
            build.append(record)
    return run_judge(ctx, requests, build)


def metrics(
    results: list[EvalItemResult], items: Sequence[WildBenchItem], k: int
) -> tuple[dict[str, float | None], dict[str, Any]]:
    """WB-Score (task macro first, as BOLT reports it), then WB-Reward where judged: per
    reference model (``wb_reward_task_macro.<model>``) and, as the leaderboard's
    ``task_macro_reward`` and ``mixture_of_rewards``, the mean over the references."""
    scores = [r for r in results if r.meta.get("mode") == "score"]
    s = summarize_scores(scores, items)
    numbers = {"wb_score_task_macro": s.task_macro, "wb_score": s.score}
    details: dict[str, Any] = {"score": s.model_dump(mode="json")}
    by_reference: dict[str, list[EvalItemResult]] = defaultdict(list)
    for r in results:
        if r.meta.get("mode") == "pairwise":
            by_reference[r.meta["reference_model"]].append(r)
    rewards = {m: summarize_rewards(rs, items, k) for m, rs in by_reference.items()}
    if rewards:
        numbers |= {
            "wb_reward_task_macro": _mean([w.task_macro for w in rewards.values()]),
            "wb_reward": _mean([w.reward for w in rewards.values()]),
        }
        for model, w in rewards.items():
            numbers |= {
                f"wb_reward_task_macro.{model}": w.task_macro,
                f"wb_reward.{model}": w.reward,
            }
        details["reward"] = {m: w.model_dump(mode="json") for m, w in rewards.items()}
    return numbers, details


def _mean(values: list[float | None]) -> float | None:
    return None if any(v is None for v in values) else mean_or_none(values)  # type: ignore[arg-type]


SPEC = BenchmarkSpec(
    name=Benchmark.wildbench,
    item_type=WildBenchItem,
    item_id=lambda item: item.session_id,
    messages=conversation,
    grade=grade,
    metrics=metrics,
    headline="wb_score_task_macro",
    judged=True,
    pairwise=True,
    version=version,
    prepare=prepare,
)
