"""WildBench's files: its items (``allenai/WildBench``, v1 and v2 fields) and the reference
outputs WB-Reward compares a model with.

The official references of the v2 leaderboard are gpt-4-turbo-2024-04-09,
claude-3-haiku-20240307 and Llama-2-70b-chat-hf, whose outputs the WildBench scripts
read from ``allenai/WildBench-V2-Model-Outputs`` (one config per model, split
``train``; ``src/eval.py``) or from a local ``result_dirs/wild_bench_v2/<model>.json``:
a JSON list of ``{"session_id", "output", "generator", ...}`` where ``output`` is the
answer text or a one-element list of it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bolt.config import S3Options
from bolt.config.enums import BenchmarkName
from bolt.evals.rows import EvalDataError, read_rows
from bolt.evals.spec import BenchmarkContext
from bolt.records import EvalAnswer


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


OFFICIAL_REFERENCES = ("gpt-4-turbo-2024-04-09", "claude-3-haiku-20240307", "Llama-2-70b-chat-hf")


class WildBenchOutput(BaseModel):
    """One line of a model's WildBench outputs."""

    model_config = ConfigDict(extra="allow", frozen=True)

    session_id: str
    output: str | list[str]
    generator: str | None = None

    @property
    def text(self) -> str:
        return self.output[0] if isinstance(self.output, list) else self.output


def load_reference(
    model: str, uri: str, session_ids: Sequence[str], s3: S3Options | None = None
) -> dict[str, EvalAnswer]:
    """``model``'s outputs to ``session_ids`` as answers; every one must be there."""
    by_id = {o.session_id: o for o in map(WildBenchOutput.model_validate, read_rows(uri, s3))}
    missing = [s for s in session_ids if s not in by_id]
    if missing:
        raise EvalDataError(f"{uri}: no {model} output for {missing[:3]} ({len(missing)} missing)")
    return {
        s: EvalAnswer(
            benchmark=BenchmarkName.wildbench.value,
            item_id=s,
            model=model,
            turns=[by_id[s].text],
            finish_reasons=[None],
            prompt_tokens=0,
            output_tokens=0,
        )
        for s in session_ids
    }


def references_digest(references: dict[str, dict[str, EvalAnswer]]) -> str:
    payload = {m: {s: a.turns[0] for s, a in sorted(r.items())} for m, r in references.items()}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def version(items: Sequence[Any]) -> str:
    """ "v1" for the legacy release (whose items carry ``appropriate``), else "v2"."""
    return "v1" if any(item.appropriate is not None for item in items) else "v2"


def prepare(eval_cfg: Any, s3: Any, items: Sequence[Any]) -> BenchmarkContext:
    """The reference models' outputs that ``eval.wildbench.references`` names."""
    named = eval_cfg.wildbench.references
    ids = [item.session_id for item in items]
    references = {m: load_reference(m, uri, ids, s3) for m, uri in named.items()}
    return BenchmarkContext(
        references=references,
        digest=references_digest(references) if references else "",
        describe={"references": dict(named)},
    )
