"""Judges: an OpenAI-compatible API judge and a lightweight local checklist judge.

Both take :class:`JudgeRequest` s and answer in the benchmark's own reply format
(``[[8]]`` for MT-Bench, ``[[A>B]]`` for Arena-Hard, WildBench's JSON), so one parser
per benchmark reads either judge and a reply that cannot be read is counted, never
scored.

- :class:`ApiJudge` sends the benchmark's official judge prompt to any chat server
  through :class:`~bolt.engines.openai_engine.OpenAIEngine` (its retries and
  timeouts), ``concurrency`` requests at a time. Every successful reply is cached on
  disk under the sha256 of the full request (model, messages, sampling), so a rerun
  costs no call; a request that still fails after its retries is returned as a
  failure (and not cached: the next run tries again). Tokens and dollars are counted.
- :class:`LocalChecklistJudge` is RocketEval (Wei et al., 2025): a small LM answers the
  item's checklist (WildBench's own, or one written by
  :class:`~bolt.rewards.checklist.ChecklistMaker`) question by question, and its
  normalised p(Yes) makes the score ``1 + 9 * mean(p)`` on the 1-10 scale, or a learned
  weighting of the p's (RocketEval §3.3) where weights are given. Pairwise verdicts
  come from the two answers' score gap. The p(Yes) computation is
  :class:`~bolt.rewards.lm_checklist.LMChecklistReward`'s.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, assert_never

import numpy as np

from bolt.config import JudgeConfig, JudgeKind, SamplingConfig
from bolt.engines.base import ChatRequest, EngineError, Messages

if TYPE_CHECKING:
    from bolt.config import PipelineConfig
    from bolt.engines.base import Engine
    from bolt.rewards.checklist import ChecklistMaker
    from bolt.rewards.lm_checklist import LMChecklistReward

JUDGE_CALL_FAILED = "judge_call_failed"


class ReplyFormat(StrEnum):
    """What a benchmark's judge prompt asks the judge to write."""

    rating = "rating"  # MT-Bench: "Rating: [[8]]"
    wb_score = "wb_score"  # WildBench score.v2: {"score": "8"}
    wb_choice = "wb_choice"  # WildBench pairwise.v2: {"choice": "A+"}
    verdict = "verdict"  # Arena-Hard: "[[A>B]]"


@dataclass(frozen=True)
class JudgeRequest:
    """One judgement. ``messages`` is the official prompt an API judge reads; the rest is
    what a checklist judge reads: ``answers`` holds one answer (grading) or A and B
    (pairwise) as the prompt shows them."""

    id: str
    messages: Messages
    reply_format: ReplyFormat
    query: str
    answers: tuple[str, ...]
    reference: str | None = None
    checklist: tuple[str, ...] = ()


@dataclass(frozen=True)
class JudgeReply:
    """The judge's text, or ``error`` when it could not be had (after retries)."""

    id: str
    text: str | None
    error: str | None = None
    prompt_tokens: int = 0
    output_tokens: int = 0
    cached: bool = False


@dataclass
class JudgeUsage:
    """Running totals: calls made, replies served from cache, failures, new tokens."""

    calls: int = 0
    cached: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    output_tokens: int = 0
    usd_per_1k_input: float = 0.0
    usd_per_1k_output: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, reply: JudgeReply) -> None:
        with self._lock:
            if reply.cached:
                self.cached += 1
                return
            self.calls += 1
            self.failed += reply.error is not None
            self.prompt_tokens += reply.prompt_tokens
            self.output_tokens += reply.output_tokens

    @property
    def usd(self) -> float:
        return (
            self.prompt_tokens * self.usd_per_1k_input + self.output_tokens * self.usd_per_1k_output
        ) / 1000

    def as_dict(self) -> dict[str, float | int]:
        return {
            "calls": self.calls,
            "cached": self.cached,
            "failed": self.failed,
            "prompt_tokens": self.prompt_tokens,
            "output_tokens": self.output_tokens,
            "usd": round(self.usd, 6),
        }


class Judge(Protocol):
    name: str
    usage: JudgeUsage

    def judge(self, requests: Sequence[JudgeRequest]) -> list[JudgeReply]: ...


# ------------------------------------------------------------------ the API judge


def request_key(model: str, messages: Messages, sampling: SamplingConfig) -> str:
    """sha256 of everything that makes the reply: a new prompt, model or setting is a new key."""
    payload = json.dumps(
        {
            "model": model,
            "messages": messages,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_tokens": sampling.max_new_tokens,
            "n": sampling.n,
        },
        ensure_ascii=False,
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class ReplyCache:
    """Judge replies on disk, one JSON file per request key, written atomically."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict | None:
        path = self._path(key)
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None

    def put(self, key: str, entry: dict) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Temporary file + rename: a crash never leaves half an entry that reads as a reply.
        handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{key}.")
        with os.fdopen(handle, "w", encoding="utf-8") as f:
            json.dump(entry, f, ensure_ascii=False)
        os.replace(tmp, path)


class ApiJudge:
    name = "api"

    def __init__(
        self,
        engine: Engine,
        cache: ReplyCache,
        sampling: SamplingConfig,
        *,
        concurrency: int,
        usage: JudgeUsage | None = None,
    ):
        self.engine, self.cache, self.sampling = engine, cache, sampling
        self.concurrency = concurrency
        self.usage = usage or JudgeUsage()

    def judge(self, requests: Sequence[JudgeRequest]) -> list[JudgeReply]:
        if not requests:
            return []
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(requests))) as pool:
            replies = list(pool.map(self._one, requests))
        for reply in replies:
            self.usage.add(reply)
        return replies

    def _one(self, request: JudgeRequest) -> JudgeReply:
        key = request_key(self.engine.model, request.messages, self.sampling)
        if (entry := self.cache.get(key)) is not None:
            return JudgeReply(
                request.id,
                entry["text"],
                prompt_tokens=entry["prompt_tokens"],
                output_tokens=entry["output_tokens"],
                cached=True,
            )
        try:
            completion = self.engine.generate(
                [ChatRequest(id=request.id, messages=request.messages)], self.sampling
            )[0][0]
        except EngineError as e:
            return JudgeReply(request.id, None, error=f"{JUDGE_CALL_FAILED}: {e}")
        self.cache.put(
            key,
            {
                "model": self.engine.model,
                "messages": request.messages,
                "text": completion.text,
                "prompt_tokens": completion.prompt_tokens,
                "output_tokens": completion.output_tokens,
            },
        )
        return JudgeReply(
            request.id,
            completion.text,
            prompt_tokens=completion.prompt_tokens,
            output_tokens=completion.output_tokens,
        )


# ------------------------------------------------------------ the local checklist judge


@dataclass(frozen=True)
class ChecklistWeights:
    """A learned map from an item's checklist answers to a 1-10 score (RocketEval §3.3)."""

    weights: tuple[float, ...]
    bias: float


def checklist_score(p_yes: Sequence[float], weights: ChecklistWeights | None = None) -> float:
    """RocketEval's score of one answer: ``1 + 9 * mean(p)``, or ``bias + w . p`` with
    learned weights (clipped to 1-10). Weights for another checklist length are refused."""
    if not p_yes:
        raise ValueError("a checklist score needs at least one answered question")
    if weights is None:
        return 1.0 + 9.0 * float(np.mean(p_yes))
    if len(weights.weights) != len(p_yes):
        raise ValueError(f"{len(weights.weights)} weights for {len(p_yes)} checklist answers")
    return float(np.clip(weights.bias + np.dot(weights.weights, p_yes), 1.0, 10.0))


def fit_checklist_weights(
    p_rows: Sequence[Sequence[float]], targets: Sequence[float], l2: float = 1.0
) -> ChecklistWeights:
    """Ridge regression of a reference judge's 1-10 scores on the checklist answers of
    responses to one item (RocketEval's supervised reweighting): the intercept is not
    penalised, so with l2 large the fit falls back to the mean score."""
    x = np.asarray(p_rows, dtype=float)
    y = np.asarray(targets, dtype=float)
    x_mean, y_mean = x.mean(axis=0), y.mean()
    xc = x - x_mean
    w = np.linalg.solve(xc.T @ xc + l2 * np.eye(x.shape[1]), xc.T @ (y - y_mean))
    return ChecklistWeights(tuple(float(v) for v in w), float(y_mean - x_mean @ w))


def pairwise_label(gap: float, tie_margin: float, strong_margin: float) -> int:
    """-2..2 from A's score minus B's: 0 within the tie margin, +-2 from the strong one."""
    if abs(gap) < tie_margin:
        return 0
    strength = 2 if abs(gap) >= strong_margin else 1
    return strength if gap > 0 else -strength


_VERDICT_LABELS = {2: "A>>B", 1: "A>B", 0: "A=B", -1: "B>A", -2: "B>>A"}
_CHOICE_LABELS = {2: "A++", 1: "A+", 0: "A=B", -1: "B+", -2: "B++"}


def render_reply(
    reply_format: ReplyFormat, scores: Sequence[float], tie_margin: float, strong_margin: float
) -> str:
    """The checklist judge's scores written as the benchmark's judge would write them."""
    match reply_format:
        case ReplyFormat.rating:
            return f"Rating: [[{scores[0]:.2f}]]"
        case ReplyFormat.wb_score:
            return json.dumps({"score": f"{scores[0]:.2f}"})
        case ReplyFormat.verdict:
            label = pairwise_label(scores[0] - scores[1], tie_margin, strong_margin)
            return f"My final verdict is [[{_VERDICT_LABELS[label]}]]"
        case ReplyFormat.wb_choice:
            label = pairwise_label(scores[0] - scores[1], tie_margin, strong_margin)
            return json.dumps({"choice": _CHOICE_LABELS[label]})
        case _:
            assert_never(reply_format)


class LocalChecklistJudge:
    name = "local_checklist"

    def __init__(
        self,
        reward: LMChecklistReward,
        maker: ChecklistMaker | None,
        *,
        tie_margin: float,
        strong_margin: float,
        weights: Mapping[str, ChecklistWeights] | None = None,
    ):
        self.reward, self.maker = reward, maker
        self.tie_margin, self.strong_margin = tie_margin, strong_margin
        self.weights = dict(weights or {})
        self.usage = JudgeUsage()

    def questions(self, requests: Sequence[JudgeRequest]) -> list[tuple[str, ...]]:
        """Each request's checklist: its own, else one the maker writes (and caches)."""
        to_write = [r for r in requests if not r.checklist]
        if to_write and self.maker is None:
            raise ValueError("items without a checklist need a ChecklistMaker to write one")
        written = iter(
            self.maker.checklists([(r.query, r.reference) for r in to_write]) if to_write else []
        )
        return [r.checklist or next(written).questions for r in requests]

    def judge(self, requests: Sequence[JudgeRequest]) -> list[JudgeReply]:
        """Every (request, answer, question) prompt scored in one batched pass."""
        checklists = self.questions(requests)
        owners, prompts = [], []
        for r_index, (request, questions) in enumerate(zip(requests, checklists, strict=True)):
            for a_index, answer in enumerate(request.answers):
                for question in questions:
                    owners.append((r_index, a_index))
                    prompts.append(self.reward.judge_prompt_ids(request.query, answer, question))
        p_yes: dict[tuple[int, int], list[float]] = {}
        tokens: dict[int, int] = {}
        for owner, prompt, p in zip(
            owners, prompts, self.reward.yes_probabilities(prompts), strict=True
        ):
            p_yes.setdefault(owner, []).append(p)
            tokens[owner[0]] = tokens.get(owner[0], 0) + len(prompt)
        replies = []
        for r_index, request in enumerate(requests):
            scores = [
                checklist_score(p_yes[(r_index, a)], self.weights.get(request.id))
                for a in range(len(request.answers))
            ]
            text = render_reply(request.reply_format, scores, self.tie_margin, self.strong_margin)
            reply = JudgeReply(
                request.id,
                text,
                prompt_tokens=tokens.get(r_index, 0),
                # one next-token distribution read per (answer, question)
                output_tokens=len(request.answers) * len(checklists[r_index]),
            )
            self.usage.add(reply)
            replies.append(reply)
        return replies


def load_checklist_weights(path: str | Path) -> dict[str, ChecklistWeights]:
    """``{judge request id: {"weights": [...], "bias": b}}`` from a JSON file."""
    rows = json.loads(Path(path).read_text(encoding="utf-8"))
    return {k: ChecklistWeights(tuple(v["weights"]), float(v["bias"])) for k, v in rows.items()}


def judge_sampling(cfg: JudgeConfig) -> SamplingConfig:
    return SamplingConfig(n=1, temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens)


def make_judge(
    cfg: PipelineConfig,
    *,
    checklist_engine: Engine | None = None,
    api_engine: Engine | None = None,
) -> Judge:
    """The judge ``eval.judge.kind`` names; the only dispatch on :class:`JudgeKind`.

    ``api_engine`` (kind=api) defaults to an OpenAI engine on ``eval.judge.engine``;
    ``checklist_engine`` (kind=local_checklist) writes the checklists of items that have
    none (MT-Bench, Arena-Hard): any engine, e.g. one on the judge model.
    """
    from bolt.models import cache_root

    judge = cfg.eval.judge
    cache_base = cache_root(cfg.models).parent
    match judge.kind:
        case JudgeKind.api:
            from bolt.engines import make_engine

            engine = api_engine or make_engine(judge.engine, judge.model, seed=cfg.seed)
            cache_dir = (
                Path(judge.cache_dir).expanduser()
                if judge.cache_dir
                else cache_base / "judge-cache"
            )
            usage = JudgeUsage(
                usd_per_1k_input=judge.usd_per_1k_input, usd_per_1k_output=judge.usd_per_1k_output
            )
            return ApiJudge(
                engine,
                ReplyCache(cache_dir),
                judge_sampling(judge),
                concurrency=judge.engine.concurrency,
                usage=usage,
            )
        case JudgeKind.local_checklist:
            from bolt.rewards.checklist import ChecklistMaker
            from bolt.rewards.lm_checklist import LMChecklistReward

            maker = (
                ChecklistMaker(
                    checklist_engine,
                    cache_base / "checklists",
                    max_new_tokens=judge.checklist_max_new_tokens,
                )
                if checklist_engine is not None
                else None
            )
            reward = LMChecklistReward.from_catalog(
                cfg.models,
                judge.model,
                maker,  # type: ignore[arg-type]  # only its p(Yes) scoring is used here
                batch_size=judge.batch_size,
                device=cfg.compute.device,
                s3=cfg.storage.s3,
            )
            weights = (
                load_checklist_weights(judge.checklist_weights_uri)
                if judge.checklist_weights_uri
                else None
            )
            return LocalChecklistJudge(
                reward,
                maker,
                tie_margin=judge.tie_margin,
                strong_margin=judge.strong_margin,
                weights=weights,
            )
        case _:
            assert_never(judge.kind)
