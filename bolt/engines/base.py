"""What every generation engine speaks: chat requests in, n completions per request out.

Stages see only this module; whether the tokens come from vLLM in-process, an
OpenAI-compatible server or transformers' ``generate`` is decided once, in
``bolt.engines.make_engine``. The engines share :class:`EngineBase` (the stats of
every call) and, those holding their model's tokenizer, :class:`LocalEngine` (the
prompt as the model sees it, rendered once here).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from bolt.config import SamplingConfig

Messages = list[dict[str, str]]
# The most top log-probabilities per position a caller may ask for: vLLM's default
# ``max_logprobs`` and the OpenAI API's limit on ``top_logprobs``.
MAX_TOP_LOGPROBS = 20


class EngineError(RuntimeError):
    """A generation that could not be completed (after retries, where an engine retries)."""


class EngineDead(EngineError):
    """The engine's own process is gone: this engine will never answer again, and the
    engine reports ``dead`` so that a retry starts a new one."""


class EngineTimeout(EngineError):
    """A generation ran past a time limit of its engine config: ``request_timeout_s`` (one
    request, or a vLLM engine core, without progress) or ``shard_timeout_s`` (one
    ``generate`` call, i.e. one stage shard)."""


class EngineHung(EngineDead, EngineTimeout):
    """The engine's process is alive but stopped making progress (or ran past the shard's
    time): it was shut down, it reports ``dead``, and the pool starts a new one."""


@dataclass(frozen=True)
class Deadline:
    """When one ``generate`` call must be done: ``limit_s`` after it began (None: never)."""

    limit_s: float | None
    started: float = field(default_factory=time.monotonic)

    def left(self) -> float:
        if self.limit_s is None:
            return math.inf
        return self.limit_s - (time.monotonic() - self.started)

    def expired(self) -> bool:
        return self.left() <= 0

    def message(self, model: str) -> str:
        elapsed = time.monotonic() - self.started
        return (
            f"generation on {model} ran {elapsed:.1f} s, past engine.shard_timeout_s = "
            f"{self.limit_s:g} s"
        )


@dataclass(frozen=True)
class ChatRequest:
    id: str
    messages: Messages


@dataclass(frozen=True)
class TokenLogprobs:
    """One generated position: the token chosen there (as text) and the natural
    log-probabilities of the most likely tokens at it (token text -> log-probability)."""

    token: str
    top: dict[str, float]


def add_candidate(top: dict[str, float], text: str, logprob: float) -> None:
    """Put one candidate token in a position's ``top``; two token ids that decode to the
    same text (rare: byte fallbacks, duplicated pieces) share one entry, their
    probabilities summed."""
    top[text] = logprob if text not in top else math.log(math.exp(top[text]) + math.exp(logprob))


@dataclass(frozen=True)
class Completion:
    """One sampled answer; ``index`` is its position among the request's n samples."""

    request_id: str
    index: int
    text: str
    finish_reason: str | None
    prompt_tokens: int
    output_tokens: int
    # None where the engine cannot tell (transformers, servers without usage details).
    cached_prompt_tokens: int | None
    # One entry per generated position, only when ``generate`` was asked for them
    # (``logprobs=k``) and the engine gave them; None otherwise.
    logprobs: tuple[TokenLogprobs, ...] | None = None


@dataclass(frozen=True)
class EngineStats:
    """Running totals of one engine. Prompts count once per request, outputs once per sample."""

    requests: int = 0
    prompt_tokens: int = 0
    output_tokens: int = 0
    cached_prompt_tokens: int = 0
    seconds: float = 0.0

    @property
    def prefix_cache_hit_rate(self) -> float:
        return self.cached_prompt_tokens / self.prompt_tokens if self.prompt_tokens else 0.0

    @property
    def output_tokens_per_s(self) -> float:
        return self.output_tokens / self.seconds if self.seconds else 0.0

    def __add__(self, other: EngineStats) -> EngineStats:
        return EngineStats(
            requests=self.requests + other.requests,
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cached_prompt_tokens=self.cached_prompt_tokens + other.cached_prompt_tokens,
            seconds=self.seconds + other.seconds,
        )


def tally(outputs: list[list[Completion]], seconds: float) -> EngineStats:
    """The stats of one ``generate`` call (every sample of a request shares its prompt)."""
    firsts = [samples[0] for samples in outputs if samples]
    return EngineStats(
        requests=len(outputs),
        prompt_tokens=sum(c.prompt_tokens for c in firsts),
        output_tokens=sum(c.output_tokens for samples in outputs for c in samples),
        cached_prompt_tokens=sum(c.cached_prompt_tokens or 0 for c in firsts),
        seconds=seconds,
    )


@runtime_checkable
class Engine(Protocol):
    """A text generator. ``generate`` returns, for each request in order, its n completions."""

    name: str
    model: str
    model_path: str

    def generate(
        self,
        requests: list[ChatRequest],
        sampling: SamplingConfig,
        *,
        stop: list[str] | None = None,
        guided_regex: str | None = None,
        logprobs: int | None = None,
    ) -> list[list[Completion]]:
        """``logprobs=k`` (1 to :data:`MAX_TOP_LOGPROBS`) asks for the top ``k``
        log-probabilities of every generated position (``Completion.logprobs``)."""
        ...

    def count_prompt_tokens(self, messages: Messages) -> int:
        """Tokens of ``messages`` rendered with the chat template and the assistant header."""
        ...

    @property
    def stats(self) -> EngineStats: ...

    def close(self) -> None: ...


def chat_template_ids(tokenizer: Any, messages: Messages) -> list[int]:
    """Token ids of ``messages`` in the model's chat template, ending in the assistant header."""
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    # The template already holds any special tokens; adding them again would double a BOS.
    return tokenizer.encode(text, add_special_tokens=False)


class EngineBase:
    """What the engines share: ``generate`` and the running stats of its calls. A
    subclass generates a non-empty list of requests in ``_generate`` before ``deadline``
    (``shard_timeout_s`` after the call began), raising ``EngineTimeout`` past it."""

    _stats = EngineStats()
    shard_timeout_s: float | None = None

    @property
    def stats(self) -> EngineStats:
        return self._stats

    def generate(
        self,
        requests: list[ChatRequest],
        sampling: SamplingConfig,
        *,
        stop: list[str] | None = None,
        guided_regex: str | None = None,
        logprobs: int | None = None,
    ) -> list[list[Completion]]:
        if logprobs is not None and not 1 <= logprobs <= MAX_TOP_LOGPROBS:
            raise EngineError(f"logprobs must be 1 to {MAX_TOP_LOGPROBS}, got {logprobs}")
        if not requests:
            return []
        started = time.perf_counter()
        deadline = Deadline(self.shard_timeout_s)
        completions = self._generate(requests, sampling, stop, guided_regex, deadline, logprobs)
        self._stats = self._stats + tally(completions, time.perf_counter() - started)
        return completions

    def _generate(
        self,
        requests: list[ChatRequest],
        sampling: SamplingConfig,
        stop: list[str] | None,
        guided_regex: str | None,
        deadline: Deadline,
        logprobs: int | None,
    ) -> list[list[Completion]]:
        raise NotImplementedError


class LocalEngine(EngineBase):
    """An engine that holds its model's tokenizer (``_tokenizer``) and sees each prompt
    as :func:`chat_template_ids` renders it."""

    _tokenizer: Any

    def render_prompt(self, messages: Messages) -> list[int]:
        return chat_template_ids(self._tokenizer, messages)

    def count_prompt_tokens(self, messages: Messages) -> int:
        return len(self.render_prompt(messages))
