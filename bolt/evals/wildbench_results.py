"""WildBench's own eval-results files, read as the official leaderboard scripts read them:
``eval_results/v2.0522/score.v2/eval=<judge>/<model>.json`` (WB-Score) and
``pairwise.v2/eval=<judge>/ref=<reference>/<model>.json`` (WB-Reward), with the rules of
``leaderboard/data_dir/_create_tables.py``; :mod:`bolt.evals.wildbench` holds the
metrics they feed. What ``bolt eval import-official`` reads WildBench files with.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from bolt.evals.wildbench import (
    DEFAULT_LENGTH_MARGIN,
    Outcome,
    RewardRow,
    ScoredRow,
    WBRewardReport,
    WBScoreReport,
    apply_length_rule,
    score_value,
    task_groups,
    wb_reward,
    wb_score,
)
from bolt.evals.wildbench_files import WildBenchItem

# Markers the official pipeline writes for outputs it cut or found empty.
TRUNCATED_SUFFIX = "... (truncated)"
EMPTY_PLACEHOLDER = "[This model response is empty.]"


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
            ScoredRow(
                frozenset() if cut_or_empty else groups.get(r.session_id, frozenset()),
                score_value(raw),
            )
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
        rows.append(RewardRow(groups.get(r.session_id, frozenset()), outcome))
    return wb_reward(rows, k)
