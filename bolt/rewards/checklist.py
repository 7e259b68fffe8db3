"""Checklists of yes/no questions, one per query, written once by an LLM and cached.

TICK (Cook et al., 2024) shows that an LLM decomposes an instruction into a checklist
of YES/NO questions, each asking whether a response meets one requirement of it;
RocketEval (Wei et al., 2025) has a lightweight judge answer such a checklist and
reads the probability of "Yes". This module writes the checklists
(``prompts/checklist.j2``) with any :class:`~bolt.engines.base.Engine`, parses the
model's list tolerantly, and caches each on disk under the sha256 of the writing
model's name and the exact prompt, so a rerun, the other samples of a query and the
next online iteration never pay for the same checklist twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bolt.config import SamplingConfig
from bolt.prompts import render_template

if TYPE_CHECKING:
    from bolt.engines.base import Engine

log = logging.getLogger(__name__)

MIN_QUESTIONS, MAX_QUESTIONS = 3, 8

# Used when the writer's answer holds no question at all (a weak model on CPU does
# that): a checklist that is generic is better than an item nobody can score, and the
# cache entry says it was used (``"fallback": true``).
FALLBACK_CHECKLIST = (
    "Does the answer address what the request asks for?",
    "Is the answer correct, without factual or logical errors?",
    "Does the answer cover every part of the request?",
)

# A list marker a model may put before a question: "1.", "2)", "(3)", "-", "*", "•",
# "Q4:", "[ ]", markdown bold.
_MARKER_RE = re.compile(
    r"^(?:\s*(?:\d+[.)]|\(\d+\)|[-*•]|q\d+\s*[:.)]|\[\s?\])\s*)+", re.IGNORECASE
)


@dataclass(frozen=True)
class Checklist:
    questions: tuple[str, ...]
    fallback: bool


def checklist_messages(query: str, reference: str | None) -> list[dict[str, str]]:
    """The chat that asks a model for the checklist of ``query``."""
    content = render_template(
        "checklist.j2",
        query=query,
        reference=reference,
        min_questions=MIN_QUESTIONS,
        max_questions=MAX_QUESTIONS,
    )
    return [{"role": "user", "content": content}]


def parse_checklist(text: str, max_questions: int = MAX_QUESTIONS) -> list[str]:
    """The questions of a model's checklist, in order, without duplicates.

    A question is a line ending in "?" (after list markers and markdown emphasis are
    removed) of at least three words; anything else (a preamble, a closing remark, a
    heading) is ignored. At most ``max_questions`` are kept.
    """
    questions: list[str] = []
    for line in text.splitlines():
        question = _MARKER_RE.sub("", line.replace("**", "").replace("__", "")).strip()
        if question.endswith("?") and len(question.split()) >= 3 and question not in questions:
            questions.append(question)
    return questions[:max_questions]


def cache_key(model: str, messages: list[dict[str, str]]) -> str:
    """sha256 of (writer model, prompt): a new model or a new template makes new checklists."""
    payload = json.dumps([model, messages], ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class ChecklistMaker:
    """Writes (greedily) and caches the checklists of queries with ``engine``."""

    def __init__(self, engine: Engine, cache_dir: Path, *, max_new_tokens: int = 384):
        self.engine = engine
        self.cache_dir = Path(cache_dir)
        self.sampling = SamplingConfig(n=1, temperature=0.0, max_new_tokens=max_new_tokens)

    def checklists(self, queries: Sequence[tuple[str, str | None]]) -> list[Checklist]:
        """The checklist of each (query, reference), writing only those not cached yet.

        Each distinct prompt is written once however often it occurs (every sample of
        a query shares its checklist).
        """
        from bolt.engines.base import ChatRequest

        prompts = [checklist_messages(query, reference) for query, reference in queries]
        keys = [cache_key(self.engine.model, messages) for messages in prompts]
        by_key = dict(zip(keys, prompts, strict=True))
        missing = [key for key in by_key if not self._path(key).is_file()]
        if missing:
            requests = [ChatRequest(id=key, messages=by_key[key]) for key in missing]
            answers = self.engine.generate(requests, self.sampling)
            for key, samples in zip(missing, answers, strict=True):
                self._store(key, by_key[key], samples[0].text)
        loaded = {key: self._load(key) for key in by_key}
        return [loaded[key] for key in keys]

    def _path(self, key: str) -> Path:
        return self.cache_dir / f"{key}.json"

    def _load(self, key: str) -> Checklist:
        entry = json.loads(self._path(key).read_text(encoding="utf-8"))
        return Checklist(questions=tuple(entry["questions"]), fallback=entry["fallback"])

    def _store(self, key: str, messages: list[dict[str, str]], raw: str) -> None:
        questions = parse_checklist(raw)
        if not questions:
            log.warning("checklist %s: no question in the model's answer; using the fallback", key)
        entry = {
            "model": self.engine.model,
            "messages": messages,
            "raw": raw,
            "questions": questions or list(FALLBACK_CHECKLIST),
            "fallback": not questions,
        }
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        # Written to a temporary file and renamed: a crash never leaves half an entry
        # that the next run would take for a cached checklist.
        handle, tmp = tempfile.mkstemp(dir=self.cache_dir, prefix=f".{key}.")
        with os.fdopen(handle, "w", encoding="utf-8") as f:
            json.dump(entry, f, ensure_ascii=False, indent=1)
        os.replace(tmp, self._path(key))
