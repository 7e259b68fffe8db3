"""Arena-Hard-Auto's own files: model answers and judgments, in both layouts in use.

``data/<bench>/model_answer/<model>.jsonl``, current layout (2025): ``uid``, ``ans_id``,
``model``, ``messages`` (the last one the assistant's, its content ``{"answer": ...}``),
optionally ``metadata`` (what ``utils/add_markdown_info.py`` adds). 2024 layout:
``question_id``, ``answer_id``, ``model_id``, ``choices[0].turns[0]`` (``content``,
``token_len``), optionally ``conv_metadata``. An answer without either metadata gets
its style features computed from its text exactly as ``add_markdown_info.py`` does
(:func:`bolt.evals.style_control.style_of`).

``data/<bench>/model_judgment/<judge>/<model>.jsonl``: one line per question, read by
:func:`bolt.evals.arena_hard.battles_from_official_judgment`.

A path may name a file or a folder (every ``*.jsonl`` in it, sorted).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from bolt.evals.style_control import StyleFeatures, style_of


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
