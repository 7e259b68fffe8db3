"""Principle extraction: free-text feedback -> binary principles with their evidence (RLBFF).

RLBFF (Wang et al., NVIDIA, 2025, arXiv 2509.21319) turns HelpSteer3-style feedback (a
conversation, a response, a person's free-text critique of it) into principles that the
response either satisfies or not ("accuracy of information: no"), each grounded in a
span of the feedback, and keeps only those it can ground: a principle whose evidence is
not in the feedback, or which the feedback is unsure about ("partially"), is dropped.

:func:`parse_principles` is the pure parser of a model's answer to
``prompts/principle_extraction.j2`` (a JSON list of ``{"principle", "satisfied",
"evidence"}``); :func:`extract_principles` runs it over rows with any engine. Nothing
is guessed: an entry that cannot be used is rejected with its reason, and a row left
with no principle is a reject with the reason of the whole answer. The records are the
reusable artifact (:func:`write_extractions`, JSONL); :func:`principle_list` distils
them into the ``principles`` of a ``kind: principles`` reward backend.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bolt.config import SamplingConfig, principle_key
from bolt.prompts import render_template

if TYPE_CHECKING:
    from bolt.engines.base import Engine

MAX_PRINCIPLES = 6
MAX_PRINCIPLE_WORDS = 30

NO_JSON = "no_json_list"
NOT_AN_OBJECT = "entry_not_an_object"
MISSING_FIELD = "missing_field"
PARTIAL = "partially_satisfied"
BAD_SATISFIED = "satisfied_not_yes_or_no"
EVIDENCE_NOT_FOUND = "evidence_not_in_feedback"
TOO_LONG = "principle_too_long"
DUPLICATE = "duplicate_principle"
NO_PRINCIPLE = "no_principle"


@dataclass(frozen=True)
class FeedbackRow:
    """One HelpSteer3-style row: the conversation, the response, the feedback on it."""

    id: str
    context: str
    response: str
    feedback: str


@dataclass(frozen=True)
class ExtractedPrinciple:
    """A principle, whether the response satisfies it, and its evidence span
    (``feedback[start:end]``)."""

    text: str
    satisfied: bool
    evidence: str
    start: int
    end: int


@dataclass(frozen=True)
class Extraction:
    """What one answer yields: its principles, each rejected entry with its reason, and
    the reason of the whole when nothing was kept (None when something was)."""

    principles: tuple[ExtractedPrinciple, ...]
    rejected: tuple[tuple[str, str], ...] = ()
    reject_reason: str | None = None


@dataclass(frozen=True)
class ExtractionRecord:
    """One row's extraction as stored: the row, the model's raw answer, the outcome."""

    row_id: str
    model: str
    raw: str
    principles: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[list[str]] = field(default_factory=list)
    reject_reason: str | None = None


def extraction_messages(row: FeedbackRow, max_principles: int = MAX_PRINCIPLES) -> list[dict]:
    content = render_template(
        "principle_extraction.j2",
        context=row.context,
        response=row.response,
        feedback=row.feedback,
        max_principles=max_principles,
    )
    return [{"role": "user", "content": content}]


def _json_list(text: str) -> list[Any] | None:
    """The first JSON list in ``text`` (fences and prose around it allowed)."""
    start = text.find("[")
    while start != -1:
        end = text.rfind("]")
        while end > start:
            try:
                value = json.loads(text[start : end + 1])
            except json.JSONDecodeError:
                end = text.rfind("]", start, end)
                continue
            return value if isinstance(value, list) else None
        start = text.find("[", start + 1)
    return None


def find_span(evidence: str, feedback: str) -> tuple[int, int] | None:
    """Where ``evidence`` occurs in ``feedback``, case and runs of spaces aside."""
    words = evidence.split()
    if not words:
        return None
    pattern = r"\s+".join(re.escape(w) for w in words)
    match = re.search(pattern, feedback, re.IGNORECASE)
    return (match.start(), match.end()) if match else None


def _entry(raw: Any, feedback: str) -> ExtractedPrinciple | str:
    """The principle of one entry, or the reason it cannot be used."""
    if not isinstance(raw, dict):
        return NOT_AN_OBJECT
    text, satisfied, evidence = raw.get("principle"), raw.get("satisfied"), raw.get("evidence")
    if not all(isinstance(v, str) and v.strip() for v in (text, satisfied, evidence)):
        return MISSING_FIELD
    verdict = satisfied.strip().lower()
    if verdict.startswith("partial"):
        return PARTIAL
    if verdict not in ("yes", "no"):
        return BAD_SATISFIED
    if len(text.split()) > MAX_PRINCIPLE_WORDS:
        return TOO_LONG
    span = find_span(evidence, feedback)
    if span is None:
        return EVIDENCE_NOT_FOUND
    return ExtractedPrinciple(
        text.strip(), verdict == "yes", feedback[span[0] : span[1]], span[0], span[1]
    )


def parse_principles(text: str, feedback: str) -> Extraction:
    """The principles of a model's answer, each grounded in ``feedback`` (see module)."""
    entries = _json_list(text)
    if entries is None:
        return Extraction((), (), NO_JSON)
    kept: list[ExtractedPrinciple] = []
    rejected: list[tuple[str, str]] = []
    seen: set[str] = set()
    for raw in entries:
        outcome = _entry(raw, feedback)
        if isinstance(outcome, ExtractedPrinciple) and principle_key(outcome.text) in seen:
            outcome = DUPLICATE
        if isinstance(outcome, str):
            rejected.append((json.dumps(raw, ensure_ascii=False)[:300], outcome))
            continue
        seen.add(principle_key(outcome.text))
        kept.append(outcome)
    if kept:
        return Extraction(tuple(kept), tuple(rejected))
    reasons = Counter(reason for _, reason in rejected)
    return Extraction(
        (), tuple(rejected), reasons.most_common(1)[0][0] if reasons else NO_PRINCIPLE
    )


def extract_principles(
    rows: Sequence[FeedbackRow], engine: Engine, *, max_new_tokens: int = 512
) -> list[ExtractionRecord]:
    """Every row's principles, written greedily by ``engine`` and parsed."""
    from bolt.engines.base import ChatRequest

    sampling = SamplingConfig(n=1, temperature=0.0, max_new_tokens=max_new_tokens)
    requests = [ChatRequest(id=row.id, messages=extraction_messages(row)) for row in rows]
    outputs = engine.generate(requests, sampling) if requests else []
    records = []
    for row, samples in zip(rows, outputs, strict=True):
        raw = samples[0].text
        result = parse_principles(raw, row.feedback)
        records.append(
            ExtractionRecord(
                row_id=row.id,
                model=engine.model,
                raw=raw,
                principles=[asdict(p) for p in result.principles],
                rejected=[list(r) for r in result.rejected],
                reject_reason=result.reject_reason,
            )
        )
    return records


def write_extractions(records: Sequence[ExtractionRecord], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(asdict(r), ensure_ascii=False) for r in records]
    path.write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")
    return path


def read_extractions(path: Path) -> list[ExtractionRecord]:
    return [
        ExtractionRecord(**json.loads(line))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


def principle_list(records: Sequence[ExtractionRecord], *, min_rows: int = 1) -> list[dict]:
    """Distinct principles found in at least ``min_rows`` rows, most frequent first, as
    the ``principles`` entries of a reward backend (``{"text": ...}``)."""
    counts: Counter[str] = Counter()
    text_of: dict[str, str] = {}
    for record in records:
        for key in {principle_key(p["text"]) for p in record.principles}:
            counts[key] += 1
        for p in record.principles:
            text_of.setdefault(principle_key(p["text"]), p["text"])
    return [{"text": text_of[k]} for k, n in counts.most_common() if n >= min_rows]
