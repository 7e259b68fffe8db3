"""The data contracts between stages, and their gzip'd JSONL encoding.

Every stage reads and writes these records and nothing else, so the implicit
``{prompt, responses, rewards}`` contracts of research scripts become explicit, typed
and validated at each boundary. Records ignore no field silently: an unknown key is a
validation error naming the file and line.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Message(Record):
    role: Literal["system", "user", "assistant"]
    content: str


class Query(Record):
    """A first-turn user query after curation (stage ``data``)."""

    id: str = Field(description="Stable id: source name + a hash of the normalised text.")
    text: str
    source: str = Field(description="Which configured source the query came from.")
    topic: str | None = None
    difficulty: int | None = Field(None, description="Number of the 7 criteria met (0-7).")
    criteria: dict[str, int] | None = None
    reference_answer: str | None = Field(
        None, description="Gold answer when known (math), or Instruct-SkillMix's written response."
    )
    meta: dict[str, Any] = Field(default_factory=dict)


class Generation(Record):
    """One sampled answer to one query (stages ``bootstrap`` and online sampling)."""

    query_id: str
    sample_index: int
    example_ids: list[str] = Field(default_factory=list, description="In-context examples used.")
    prompt_tokens: int
    raw_text: str
    thoughts: str | None = None
    response: str | None = None
    parse_error: str | None = None
    finish_reason: str | None = Field(None, description="'stop', 'length', ... from the engine.")
    output_tokens: int
    cached_prompt_tokens: int | None = None
    engine: str
    model: str
    seed: int | None = None


class ScoredGeneration(Record):
    """A generation with the rewards of every configured backend and their weighted sum."""

    generation: Generation
    rewards: dict[str, float] = Field(description="Backend name -> score.")
    reward: float = Field(description="The weighted combination used for selection.")
    reject_reason: str | None = Field(
        None,
        description="Why the format filter refused it, or why no judge could score it "
        "(`no_verdict: <backend>: <reason>`).",
    )


class SftExample(Record):
    """A chat conversation to train on; the assistant turn is a LongCoT answer."""

    id: str
    messages: list[Message]
    query_id: str
    reward: float | None = None


class PreferencePair(Record):
    """A DPO pair for one prompt: the highest- against the lowest-reward sample (default)."""

    prompt_id: str
    prompt: list[Message]
    chosen: str
    rejected: str
    chosen_reward: float
    rejected_reward: float
    iteration: int


class GroupSample(Record):
    """One GRPO sample with its group-relative advantage (RLMT's online RL): the prompt
    it answers, the sampled text, its reward and ``(r - mean) / (std + eps)`` of its group."""

    prompt_id: str
    prompt: list[Message]
    completion: str
    sample_index: int
    reward: float
    advantage: float
    malformed: bool = Field(False, description="Strict mode scored it as an empty response.")
    iteration: int


class DissatisfactionRow(Record):
    """A real conversation turn the user was dissatisfied with (DRIFT, WildFeedback-style)."""

    id: str
    source: str
    prompt: list[Message] = Field(description="The turns before, ending with the user's turn.")
    dissatisfying: str = Field(description="The assistant turn the user complained about.")
    feedback: str = Field(description="The user's complaint or correction that followed.")
    satisfied: str | None = Field(None, description="The follow-up the user accepted, if any.")


class EvalAnswer(Record):
    """A model's answer to one benchmark item, before any judge: one text per user turn
    (MT-Bench has two), each everything the model wrote, thoughts included."""

    benchmark: str
    item_id: str
    model: str
    turns: list[str]
    finish_reasons: list[str | None]
    prompt_tokens: int = Field(description="Prompt tokens over all turns.")
    output_tokens: int = Field(description="Output tokens over all turns.")


class EvalItemResult(Record):
    """One benchmark item, answered by one model and judged."""

    benchmark: str
    item_id: str
    model: str
    answer: str = Field(description="Everything the model wrote, thoughts included.")
    judged_text: str = Field(
        description="What the judge saw (the response without thoughts by default)."
    )
    score: float | None = None
    verdict: str | None = None
    parse_error: str | None = None
    judge_raw: str | None = None
    meta: dict[str, Any] = Field(default_factory=dict)


class Reject(Record):
    """A row that could not be used, kept with the reason so nothing vanishes silently."""

    stage: str
    reason: str
    source: str | None = Field(None, description="File (and line) or record id it came from.")
    line: int | None = None
    raw: str | None = Field(None, description="The offending row, truncated to 2,000 characters.")
    detail: str | None = None


R = TypeVar("R", bound=BaseModel)


class RecordError(ValueError):
    """A row of a records file that is not valid JSON or not a valid record."""

    def __init__(self, path: str, line: int, message: str):
        super().__init__(f"{path}:{line}: {message}")
        self.path, self.line, self.message = path, line, message


def dumps_record(record: BaseModel) -> str:
    return json.dumps(record.model_dump(mode="json"), ensure_ascii=False, sort_keys=True)


def encode_jsonl_gz(records: Iterable[BaseModel]) -> tuple[bytes, int]:
    """Records as deterministic gzip'd JSONL bytes, and their count."""
    buf = io.BytesIO()
    n = 0
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0) as gz:
        for record in records:
            gz.write(dumps_record(record).encode("utf-8"))
            gz.write(b"\n")
            n += 1
    return buf.getvalue(), n


def parse_jsonl_lines(lines: Iterable[str], model: type[R], source: str) -> Iterator[R]:
    """Validate each non-blank line as ``model``; errors name ``source`` and the line."""
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise RecordError(
                source, lineno, f"invalid JSON ({e.msg} at column {e.colno})"
            ) from None
        try:
            yield model.model_validate(obj)
        except ValidationError as e:
            raise RecordError(
                source, lineno, f"not a valid {model.__name__}: {_brief(e)}"
            ) from None


def decode_jsonl_gz(data: bytes, model: type[R], source: str) -> Iterator[R]:
    with gzip.GzipFile(fileobj=io.BytesIO(data), mode="rb") as gz:
        text = io.TextIOWrapper(gz, encoding="utf-8")
        yield from parse_jsonl_lines(text, model, source)


def _brief(e: ValidationError) -> str:
    parts = []
    for err in e.errors()[:3]:
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        parts.append(f"{loc}: {err['msg']}")
    more = f" (+{e.error_count() - 3} more)" if e.error_count() > 3 else ""
    return "; ".join(parts) + more
