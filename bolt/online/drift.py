"""DRIFT's data sub-stages for one iteration (Dissatisfaction-Refined Iterative preFerence
Training: Wang et al., 2025, arXiv 2510.02341; code github.com/cacayaya/DRIFT).

Real deployments hold many turns a user was dissatisfied with and few explicit
positives. DRIFT anchors each pair on one: the *rejected* side is the real dissatisfying
assistant turn; the *chosen* side is sampled from the current policy given the
conversation, that turn, the user's complaint and an instruction to improve
(``gen-drift.py``: "Based on the user's latest feedback, please provide an improved
response that addresses their concerns."); the stored prompt is the original one,
without the feedback, so DPO learns to answer it well the first time. The pairs then
train as BOLT's DPO pairs do (reference pass, ``bolt.train.dpo`` with DRIFT's NLL term).

Rows come in DRIFT's release format of WildFeedback (``data/dsat_data.jsonl``):
``prompt`` (the turns before, a list of ``{role, content}``), ``rejected`` (the
dissatisfying assistant turn: a list of one message, a message, or a string),
``user_preference`` (the feedback: a message or a string), optional ``satisfied``.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Any

from bolt import decontamination
from bolt.config import PipelineConfig, QuerySource, SamplingConfig
from bolt.curation.sources import SourceRow, read_source
from bolt.engines.base import ChatRequest, Engine
from bolt.fingerprint import fingerprint
from bolt.generations import to_generation
from bolt.records import DissatisfactionRow, Generation, Message, PreferencePair, Reject
from bolt.sharding import ShardPlan, ShardRunner, ShardWork, in_process, plan_shards, run_sharded
from bolt.sharding import run_shard as run_one_shard
from bolt.source_digests import SourceDigests
from bolt.stages import Stage
from bolt.store import ArtifactStore, Manifest, ShardInfo

CODE_VERSION = "1"
ROLES = ("system", "user", "assistant")


class RowProblem(StrEnum):
    """Why a source row cannot anchor a DRIFT pair."""

    NOT_AN_OBJECT = "not_an_object"
    MALFORMED_TURN = "malformed_turn"
    NO_USER_TURN = "no_user_turn"  # the prompt does not end with the user's turn
    NO_ASSISTANT_TURN = "no_assistant_turn"  # nothing the user was dissatisfied with
    EMPTY_FEEDBACK = "empty_feedback"


class PairProblem(StrEnum):
    """Why a row's revision yields no pair."""

    EMPTY_REVISION = "empty_revision"
    SAME_AS_REJECTED = "revision_equals_rejected"


def _text(value: Any, role: str) -> str | None:
    """The text of a turn given as a string, a message, or a list holding one message."""
    if isinstance(value, list):
        value = value[-1] if value else None
    if isinstance(value, dict):
        if value.get("role", role) != role:
            return None
        value = value.get("content")
    return value if isinstance(value, str) else None


def _messages(value: Any) -> list[Message] | None:
    if not isinstance(value, list):
        return None
    out = []
    for turn in value:
        if not isinstance(turn, dict) or turn.get("role") not in ROLES:
            return None
        if not isinstance(turn.get("content"), str):
            return None
        out.append(Message(role=turn["role"], content=turn["content"]))
    return out


def row_id(source: str, data: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]
    return f"{source}-{digest}"


def parse_row(data: Any, source: QuerySource) -> DissatisfactionRow | RowProblem:
    """A raw row as a DissatisfactionRow, or the problem that makes it unusable."""
    if not isinstance(data, dict):
        return RowProblem.NOT_AN_OBJECT
    prompt = _messages(data.get("prompt"))
    if prompt is None:
        return RowProblem.MALFORMED_TURN
    if not prompt or prompt[-1].role != "user" or not prompt[-1].content.strip():
        return RowProblem.NO_USER_TURN
    dissatisfying = _text(data.get("rejected"), "assistant")
    if not dissatisfying or not dissatisfying.strip():
        return RowProblem.NO_ASSISTANT_TURN
    feedback = _text(data.get("user_preference"), "user")
    if not feedback or not feedback.strip():
        return RowProblem.EMPTY_FEEDBACK
    satisfied = _text(data.get("satisfied"), "assistant")
    given = data.get(source.id_field) if source.id_field else None
    return DissatisfactionRow(
        id=f"{source.name}-{given}" if given is not None else row_id(source.name, data),
        source=source.name,
        prompt=prompt,
        dissatisfying=dissatisfying,
        feedback=feedback.strip(),
        satisfied=satisfied if satisfied and satisfied.strip() else None,
    )


def revision_request(row: DissatisfactionRow, instruction: str) -> list[Message]:
    """What the policy revises from: the conversation, the dissatisfying turn, and the
    user's feedback with the instruction appended (a final system turn, as gen-drift.py
    writes it, is not something every chat template renders)."""
    return [
        *row.prompt,
        Message(role="assistant", content=row.dissatisfying),
        Message(role="user", content=f"{row.feedback}\n\n{instruction}"),
    ]


def drift_pair(
    row: DissatisfactionRow, revision: str, iteration: int
) -> PreferencePair | PairProblem:
    """DRIFT's pair: the original prompt (no feedback), the policy's revision chosen, the
    real dissatisfying turn rejected. The preference is by construction, not a reward
    model's: the rewards record it as 1 against 0."""
    chosen = revision.strip()
    if not chosen:
        return PairProblem.EMPTY_REVISION
    if chosen == row.dissatisfying.strip():
        return PairProblem.SAME_AS_REJECTED
    return PreferencePair(
        prompt_id=row.id,
        prompt=list(row.prompt),
        chosen=chosen,
        rejected=row.dissatisfying,
        chosen_reward=1.0,
        rejected_reward=0.0,
        iteration=iteration,
    )


def choose_rows(
    rows: Sequence[DissatisfactionRow], per_iteration: int | None, seed: int, iteration: int
) -> list[DissatisfactionRow]:
    """All rows (DRIFT), or iteration k's block of one seeded shuffle, wrapping around."""
    order = sorted(rows, key=lambda r: r.id)
    if per_iteration is None or not order:
        return order
    random.Random(seed).shuffle(order)
    start = (iteration - 1) * per_iteration
    return [order[(start + i) % len(order)] for i in range(min(per_iteration, len(order)))]


def _drift(cfg: PipelineConfig):
    if cfg.online.drift is None:
        raise ValueError("online.drift is unset: the DRIFT stages need its sources")
    return cfg.online.drift


def feedback_fingerprint(
    cfg: PipelineConfig, iteration: int, digests: SourceDigests | None = None
) -> str:
    """``digests`` identify the sources' content (default: ``bolt.source_digests``)."""
    drift = _drift(cfg)
    digests = digests or SourceDigests.of_config(cfg)
    return fingerprint(
        Stage.online_feedback,
        {
            "sources": drift.sources,
            "per_iteration": drift.rows_per_iteration,
            "seed": cfg.seed,
            "iteration": iteration,
            **decontamination.fingerprint_payload(cfg),
        },
        upstream=digests.upstream(drift.sources),
        code_version=CODE_VERSION,
    )


def read_rows(cfg: PipelineConfig) -> tuple[list[DissatisfactionRow], Counter]:
    """Every usable row of the DRIFT sources (first of a duplicate id kept), and the
    unusable ones counted by reason."""
    rows: dict[str, DissatisfactionRow] = {}
    problems: Counter = Counter()
    for source in _drift(cfg).sources:
        for item in read_source(source, cfg.storage.s3):
            if isinstance(item, Reject):
                problems[item.reason] += 1
                continue
            assert isinstance(item, SourceRow)
            parsed = parse_row(item.data, source)
            if isinstance(parsed, RowProblem):
                problems[parsed.value] += 1
            elif parsed.id in rows:
                problems["duplicate_id"] += 1
            else:
                rows[parsed.id] = parsed
    return list(rows.values()), problems


def _user_text(row: DissatisfactionRow) -> str:
    return "\n".join(m.content for m in row.prompt if m.role == "user")


def run_feedback(
    cfg: PipelineConfig,
    store: ArtifactStore,
    iteration: int,
    contamination: decontamination.NgramIndex | None = None,
) -> Manifest:
    """The iteration's dissatisfaction rows; unusable rows are counted by reason, and rows
    whose user turns overlap a benchmark (``contamination``, needed while
    ``data.decontamination`` is on: WildFeedback and WildBench both come from WildChat)
    are rejects stored beside them."""
    contamination = decontamination.required(cfg, contamination)
    fp = feedback_fingerprint(cfg, iteration)
    if (done := store.manifest(Stage.online_feedback, fp)) is not None:
        return done
    drift = _drift(cfg)
    rows, problems = read_rows(cfg)
    rows, contaminated = decontamination.decontaminate(
        rows,
        contamination,
        text=_user_text,
        reject=lambda r, m: Reject(
            stage=Stage.online_feedback,
            reason=m.reason,
            source=r.id,
            raw=_user_text(r)[:2000],
            detail=decontamination.match_detail(m),
        ),
    )
    chosen = choose_rows(rows, drift.rows_per_iteration, cfg.seed, iteration)
    files = [store.put_records(Stage.online_feedback, fp, "rejects.jsonl.gz", contaminated)]
    return store.commit(
        Manifest(
            stage=Stage.online_feedback,
            fingerprint=fp,
            code_version=CODE_VERSION,
            config={"iteration": iteration, "drift": drift.model_dump(mode="json")},
            upstream=SourceDigests.of_config(cfg).upstream(drift.sources),
            shards=[store.write_shard(Stage.online_feedback, fp, 0, chosen)],
            files=files,
            counts={
                "read": len(rows) + len(contaminated) + sum(problems.values()),
                "rows": len(chosen),
                "rejected": sum(problems.values()),
                **{f"rejected.{k}": v for k, v in sorted(problems.items())},
                **decontamination.contamination_counts(contaminated),
            },
        )
    )


def revision_sampling(cfg: PipelineConfig) -> SamplingConfig:
    """One revision per row (DRIFT: temperature 0.7, top-p 0.9, 512 new tokens)."""
    return cfg.online.sampling.model_copy(update={"n": 1})


def drift_samples_fingerprint(cfg: PipelineConfig, feedback_fp: str, policy_id: str) -> str:
    return fingerprint(
        Stage.online_samples,
        {
            "sampling": revision_sampling(cfg),
            "instruction": _drift(cfg).instruction,
            # Where the rows are cut changes what a once-seeded engine samples.
            **({"shard_size": cfg.online.shard_size} if cfg.online.shard_size else {}),
        },
        upstream={"feedback": feedback_fp, "policy": policy_id},
        code_version=CODE_VERSION,
    )


def revision_plans(
    cfg: PipelineConfig, rows: list[DissatisfactionRow]
) -> list[ShardPlan[DissatisfactionRow]]:
    """``online.shard_size`` rows per shard; all in one shard while it is unset."""
    return plan_shards(rows, cfg.online.shard_size, empty_shard=True)


def revisions_work(
    cfg: PipelineConfig, store: ArtifactStore, fp: str, engine: Callable[[], Engine]
) -> ShardWork[DissatisfactionRow]:
    """What makes one revisions shard: the policy revises each row's dissatisfying turn."""
    sampling, instruction = revision_sampling(cfg), _drift(cfg).instruction

    def work(plan: ShardPlan[DissatisfactionRow]) -> ShardInfo:
        live = engine()
        started = time.perf_counter()
        requests = [
            ChatRequest(r.id, [m.model_dump() for m in revision_request(r, instruction)])
            for r in plan.items
        ]
        outputs = live.generate(requests, sampling) if requests else []
        samples = [
            to_generation(row.id, c, live, sampling.seed, prompt_tokens=c.prompt_tokens)
            for row, completions in zip(plan.items, outputs, strict=True)
            for c in completions
        ]
        meta = {
            "seconds": round(time.perf_counter() - started, 3),
            "output_tokens": sum(s.output_tokens for s in samples),
        }
        return store.write_shard(Stage.online_samples, fp, plan.index, samples, meta=meta)

    return work


def run_drift_samples_shard(
    cfg: PipelineConfig,
    store: ArtifactStore,
    fp: str,
    plan: ShardPlan[DissatisfactionRow],
    engine: Callable[[], Engine],
) -> ShardInfo:
    """One revisions shard task's body: its receipt if it finished before, else revise."""
    work = revisions_work(cfg, store, fp, engine)
    return run_one_shard(store, Stage.online_samples, fp, plan, work)


def run_drift_samples(
    cfg: PipelineConfig,
    store: ArtifactStore,
    feedback: Manifest,
    policy_id: str,
    engine: Callable[[], Engine],
    run_shards: ShardRunner[DissatisfactionRow] = in_process,
) -> Manifest:
    """The current policy's revision of every row's dissatisfying turn, ``online.shard_size``
    rows per shard (a rerun revises only the shards without a receipt)."""
    fp = drift_samples_fingerprint(cfg, feedback.fingerprint, policy_id)
    if (done := store.manifest(Stage.online_samples, fp)) is not None:
        return done
    rows = list(store.read_records(feedback, DissatisfactionRow))
    started = time.perf_counter()
    work = revisions_work(cfg, store, fp, engine)
    shards = run_sharded(
        store, Stage.online_samples, fp, revision_plans(cfg, rows), work, run_shards
    )
    sampling = revision_sampling(cfg)
    return store.commit(
        Manifest(
            stage=Stage.online_samples,
            fingerprint=fp,
            code_version=CODE_VERSION,
            config={
                "sampling": sampling.model_dump(mode="json"),
                "instruction": _drift(cfg).instruction,
            },
            upstream={"feedback": feedback.fingerprint, "policy": policy_id},
            shards=shards,
            counts={"rows": len(rows), "samples": sum(s.records for s in shards)},
            timings={"seconds": round(time.perf_counter() - started, 3)},
            tokens={"output": sum(s.meta.get("output_tokens", 0) for s in shards)},
        )
    )


def drift_pairs_fingerprint(cfg: PipelineConfig, samples_fp: str, iteration: int) -> str:
    return fingerprint(
        Stage.online_pairs,
        {"algorithm": "drift", "iteration": iteration},
        upstream={"samples": samples_fp},
        code_version=CODE_VERSION,
    )


def run_drift_pairs(
    cfg: PipelineConfig,
    store: ArtifactStore,
    samples: Manifest,
    feedback: Manifest,
    iteration: int,
) -> Manifest:
    """One pair per row with a usable revision; the others counted by reason."""
    fp = drift_pairs_fingerprint(cfg, samples.fingerprint, iteration)
    if (done := store.manifest(Stage.online_pairs, fp)) is not None:
        return done
    revisions = {g.query_id: g.raw_text for g in store.read_records(samples, Generation)}
    pairs, skips = [], Counter()
    for row in store.read_records(feedback, DissatisfactionRow):
        outcome = drift_pair(row, revisions.get(row.id, ""), iteration)
        if isinstance(outcome, PairProblem):
            skips[outcome.value] += 1
        else:
            pairs.append(outcome)
    return store.commit(
        Manifest(
            stage=Stage.online_pairs,
            fingerprint=fp,
            code_version=CODE_VERSION,
            config={"iteration": iteration, "algorithm": "drift"},
            upstream={"samples": samples.fingerprint, "feedback": feedback.fingerprint},
            shards=[store.write_shard(Stage.online_pairs, fp, 0, pairs)],
            counts={
                "prompts": len(pairs) + sum(skips.values()),
                "pairs": len(pairs),
                "skipped": sum(skips.values()),
                **{f"skipped.{k}": v for k, v in sorted(skips.items())},
            },
        )
    )
