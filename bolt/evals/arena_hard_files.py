"""Arena-Hard-Auto's own files: model answers and judgments, in both layouts in use.

``data/<bench>/model_answer/<model>.jsonl``, current layout (2025): ``uid``, ``ans_id``,
``model``, ``messages`` (the last one the assistant's, its content ``{"answer": ...}``),
optionally ``metadata`` (what ``utils/add_markdown_info.py`` adds). 2024 layout:
``question_id``, ``answer_id``, ``model_id``, ``choices[0].turns[0]`` (``content``,
``token_len``), optionally ``conv_metadata``. An answer without either metadata gets
its style features computed from its text exactly as ``add_markdown_info.py`` does
(:func:`bolt.evals.style_control.style_of`).

``data/<bench>/model_judgment/<judge>/<model>.jsonl``: one line per question, its two
games' verdict labels read into battles against the baseline
(:func:`battles_from_official_judgment`); the leaderboard's pool of battles
(:func:`load_pool`) is those of every judged model, with the style of their answers.

A path may name a file or a folder (every ``*.jsonl`` in it, sorted).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from bolt.evals.style_control import StyleFeatures, style_of

STRONG_VERDICT_WEIGHT = 3
_VERDICT_PATTERN = re.compile(r"\[\[([AB<>=]+)\]\]")


class Verdict(StrEnum):
    a_much_better = "A>>B"
    a_better = "A>B"
    tie = "A=B"
    b_better = "B>A"
    b_much_better = "B>>A"


# The other spellings show_result.py's label_to_score accepts for the same verdicts.
_LABELS: dict[str, Verdict] = {v.value: v for v in Verdict} | {
    "A<<B": Verdict.b_much_better,
    "A<B": Verdict.b_better,
    "B=A": Verdict.tie,
    "B<<A": Verdict.a_much_better,
    "B<A": Verdict.a_better,
}
_A_SCORE: dict[Verdict, float] = {
    Verdict.a_much_better: 1.0,
    Verdict.a_better: 1.0,
    Verdict.tie: 0.5,
    Verdict.b_better: 0.0,
    Verdict.b_much_better: 0.0,
}


class Side(StrEnum):
    a = "A"
    b = "B"


# gen_judgment.py: game 1 shows the baseline as A; game 2 swaps the answers.
MODEL_SIDE_BY_GAME: dict[int, Side] = {1: Side.b, 2: Side.a}


@dataclass(frozen=True)
class Battle:
    """One judged game from the tested model's side: ``score`` 1 win, 0.5 tie, 0 loss."""

    model: str
    question_id: str
    score: float
    weight: int


@dataclass(frozen=True)
class LeaderboardPool:
    """The official leaderboard's battles against its baseline, with the style of every
    answer in them: what our model's battles are fitted together with."""

    baseline: str
    judge: str | None
    battles: list[Battle]
    model_styles: dict[tuple[str, str], StyleFeatures]
    baseline_styles: dict[str, StyleFeatures]
    models: list[str] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline,
            "judge": self.judge,
            "models": self.models,
            "n_battles": len(self.battles),
        }


def parse_verdict(text: str) -> Verdict | None:
    """The judge's verdict label; None when there is none or when two labels disagree
    (``get_score`` in ``gen_judgment.py``, v0.1). Equivalent spellings (``[[B<A]]`` for
    ``[[A>B]]``) agree; labels outside the accepted set are ignored."""
    verdicts = {_LABELS[label] for label in _VERDICT_PATTERN.findall(text) if label in _LABELS}
    return verdicts.pop() if len(verdicts) == 1 else None


def battle(model: str, question_id: str, verdict: Verdict, model_side: Side) -> Battle:
    """A verdict on the answer shown as A/B, mapped back to model-versus-baseline."""
    a_score = _A_SCORE[verdict]
    strong = verdict in (Verdict.a_much_better, Verdict.b_much_better)
    return Battle(
        model=model,
        question_id=question_id,
        score=a_score if model_side is Side.a else 1.0 - a_score,
        weight=STRONG_VERDICT_WEIGHT if strong else 1,
    )


def battles_from_official_judgment(row: dict[str, Any]) -> list[Battle]:
    """Battles of one line of an official ``model_judgment/<judge>/<model>.jsonl``.

    Current layout ``{"uid", "category", "judge", "model", "baseline", "games": [game, game]}``
    (a game is None where the judge call failed), 2024 layout keyed by ``question_id``;
    each game ``{"score": "A>B", ...}``. A game whose score is null or unknown is dropped,
    as v0.1's ``get_battles_from_row`` gives it weight 0; the other game still counts.
    """
    uid = str(row["uid"] if "uid" in row else row["question_id"])
    model = str(row["model"]).split("/")[-1]  # show_result.py strips a model path
    return [
        battle(model, uid, _LABELS[game["score"]], MODEL_SIDE_BY_GAME[i])
        for i, game in enumerate(row["games"], start=1)
        if game is not None and game.get("score") in _LABELS
    ]


class ArenaHardAnswer(BaseModel):
    """One model's answer to one question, from either layout of ``model_answer``."""

    model_config = ConfigDict(frozen=True)

    uid: str
    model: str
    answer: str
    metadata: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_official(cls, row: Any) -> Any:
        if not isinstance(row, dict) or "answer" in row:
            return row
        if "messages" in row:  # current layout
            content = row["messages"][-1]["content"]
            return {
                "uid": row["uid"],
                "model": row["model"],
                "answer": content["answer"] if isinstance(content, dict) else content,
                "metadata": row.get("metadata") or row.get("conv_metadata"),
            }
        turn = row["choices"][0]["turns"][0]  # 2024 layout
        metadata = row.get("conv_metadata")
        return {
            "uid": str(row["question_id"]),
            "model": row["model_id"],
            "answer": turn["content"],
            "metadata": metadata,
        }

    def style(self) -> StyleFeatures:
        """The file's own metadata where it has some, else measured from the text."""
        if self.metadata is not None:
            return StyleFeatures.from_official(self.metadata)
        return style_of(self.answer)


def jsonl_files(paths: Iterable[str]) -> list[Path]:
    """Each path itself, or the ``*.jsonl`` files in it when it is a folder."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found += sorted(p.glob("*.jsonl"))
        elif p.is_file():
            found.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such file or folder")
    return found


def jsonl_rows(paths: Iterable[str]) -> Iterator[dict[str, Any]]:
    for path in jsonl_files(paths):
        with path.open(encoding="utf-8") as f:
            yield from (json.loads(line) for line in f if line.strip())


def load_answers(paths: Iterable[str]) -> dict[str, dict[str, ArenaHardAnswer]]:
    """Answers by model, then by question uid."""
    out: dict[str, dict[str, ArenaHardAnswer]] = {}
    for row in jsonl_rows(paths):
        answer = ArenaHardAnswer.model_validate(row)
        out.setdefault(answer.model, {})[answer.uid] = answer
    return out


def files_digest(paths: Iterable[str]) -> str:
    """sha256 over the files' names and contents (what enters a fingerprint)."""
    h = hashlib.sha256()
    for path in jsonl_files(paths):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def load_pool(
    judgments: Sequence[str], answers: Sequence[str], baseline: dict[str, ArenaHardAnswer]
) -> LeaderboardPool:
    """The leaderboard's battles from its judgment files, and the style of every answer
    in them from its answer files; ``baseline``: the baseline's answers by uid."""
    rows = list(jsonl_rows(judgments))
    judges = {str(r["judge"]) for r in rows if r.get("judge")}
    if len(judges) > 1:
        raise ValueError(f"{list(judgments)}: judgments of several judges {sorted(judges)}")
    baseline_model = next(iter(baseline.values())).model
    others = {str(r["baseline"]) for r in rows if r.get("baseline")} - {baseline_model}
    if others:
        raise ValueError(
            f"{list(judgments)}: judged against {sorted(others)}, not {baseline_model}"
        )
    # the baseline against itself is 50 by construction (show_result.py adds it so)
    battles = [
        b for row in rows for b in battles_from_official_judgment(row) if b.model != baseline_model
    ]
    by_model = load_answers(answers)
    model_styles = {}
    for b in battles:
        key = (b.model, b.question_id)
        if key not in model_styles:
            if b.question_id not in by_model.get(b.model, {}):
                raise ValueError(f"{list(answers)}: no answer of {b.model} to {b.question_id}")
            model_styles[key] = by_model[b.model][b.question_id].style()
    return LeaderboardPool(
        baseline=baseline_model,
        judge=judges.pop() if judges else None,
        battles=battles,
        model_styles=model_styles,
        baseline_styles={uid: a.style() for uid, a in baseline.items()},
        models=sorted({b.model for b in battles}),
    )
