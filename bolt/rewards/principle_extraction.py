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
them into the ``principles`` of a ``kind: principles`` reward backend. ``bolt principles
extract`` (bolt_cli/principles.py) runs all of it on a file of rows
(:func:`read_feedback_rows`).
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


class FeedbackFileError(ValueError):
    """A feedback rows file that cannot be read, naming its line and what was expected."""


def _text(value: Any, key: str, where: str) -> str:
    """A field as text: a string; for ``context``, also a list of ``{"role", "content"}``
    turns (written ``role: content``, one a paragraph); for ``feedback``, also a list of
    strings (several annotators' critiques, one a paragraph)."""
    if isinstance(value, str) and value.strip():
        return value
    non_empty_list = isinstance(value, list) and value
    if (
        key == "context"
        and non_empty_list
        and all(isinstance(t, dict) and {"role", "content"} <= set(t) for t in value)
    ):
        return "\n\n".join(f"{t['role']}: {t['content']}" for t in value)
    if (
        key == "feedback"
        and non_empty_list
        and all(isinstance(f, str) and f.strip() for f in value)
    ):
        return "\n\n".join(value)
    expected = {
        "context": "a non-empty string or a list of {role, content} turns",
        "feedback": "a non-empty string or a list of non-empty strings",
    }.get(key, "a non-empty string")
    raise FeedbackFileError(f"{where}: {key!r} must be {expected}, got {value!r:.80}")


def read_feedback_rows(path: Path) -> list[FeedbackRow]:
    """The rows of a JSONL file, one object a line with ``id``, ``context``, ``response``
    and ``feedback``. A line that is not such an object fails the read, naming
    ``file:line`` and the key: these are a user's hand-picked rows, not a corpus to filter."""
    rows, seen = [], set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as err:
            raise FeedbackFileError(f"{where}: not JSON ({err.msg})") from None
        if not isinstance(raw, dict):
            raise FeedbackFileError(f"{where}: expected a JSON object, got {type(raw).__name__}")
        missing = [k for k in ("id", "context", "response", "feedback") if k not in raw]
        if missing:
            raise FeedbackFileError(f"{where}: missing {', '.join(map(repr, missing))}")
        row_id = str(raw["id"])
        if row_id in seen:
            raise FeedbackFileError(f"{where}: id {row_id!r} is used by an earlier row")
        seen.add(row_id)
        rows.append(
            FeedbackRow(
                id=row_id,
                **{k: _text(raw[k], k, where) for k in ("context", "response", "feedback")},
            )
        )
    if not rows:
        raise FeedbackFileError(f"{path}: no rows")
    return rows


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


def answer_regex(max_principles: int = MAX_PRINCIPLES) -> str:
    """The answer's shape for guided decoding: a JSON list of 1 to ``max_principles``
    objects with the three keys in the prompt's order, strings without quotes or
    newlines. It makes a small model's answer parse; whether its evidence is really in the
    feedback is still checked (:func:`parse_principles`)."""
    text = r'"[^"\\\n]{1,300}"'
    entry = rf'\{{"principle": {text}, "satisfied": "(yes|no)", "evidence": {text}\}}'
    return rf"\[{entry}(, {entry}){{0,{max_principles - 1}}}\]"


def extract_principles(
    rows: Sequence[FeedbackRow],
    engine: Engine,
    *,
    max_new_tokens: int = 512,
    guided: bool = False,
) -> list[ExtractionRecord]:
    """Every row's principles, written greedily by ``engine`` and parsed; ``guided``
    constrains the answer to :func:`answer_regex` (engines with guided decoding: vLLM,
    an OpenAI-compatible vLLM server)."""
    from bolt.engines.base import ChatRequest

    sampling = SamplingConfig(n=1, temperature=0.0, max_new_tokens=max_new_tokens)
    requests = [ChatRequest(id=row.id, messages=extraction_messages(row)) for row in rows]
    regex = answer_regex() if guided else None
    outputs = engine.generate(requests, sampling, guided_regex=regex) if requests else []
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
