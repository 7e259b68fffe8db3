"""The OpenAI-compatible engine against a scripted chat-completions server on 127.0.0.1.

The server speaks the wire protocol (JSON over HTTP, status codes, Retry-After) and
answers each request by the script of its user message: a list of steps such as 200,
429, 500, "garbage" or ("slow", seconds), then 200 for ever.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bolt.config import EngineConfig, SamplingConfig
from bolt.engines import make_engine
from bolt.engines.base import ChatRequest, EngineError
from bolt.engines.openai_engine import (
    OpenAIEngine,
    RetryPolicy,
    chat_arguments,
    estimate_tokens,
    is_retryable,
    share_out,
    to_completions,
)

SECRET = "sk-test-0123456789abcdef"
KEY_ENV = "BOLT_TEST_OPENAI_KEY"
FAST = RetryPolicy(max_retries=3, base_s=0.001, cap_s=0.01)


class ScriptedServer:
    def __init__(self) -> None:
        self.scripts: dict[str, list] = {}
        # What GET /v1/models lists (None: the route is missing, 404); POST /tokenize
        # answers 7 tokens a message, as a vLLM server would with its own tokenizer.
        self.listed: list[dict] | None = None
        self.tokenized: list[dict] = []
        self.received: list[dict] = []
        self.authorizations: list[str | None] = []
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/v1"

    def attempts(self, user_text: str) -> int:
        return sum(1 for body in self.received if body["messages"][-1]["content"] == user_text)

    def _next_step(self, body: dict):
        with self.lock:
            self.received.append(body)
            script = self.scripts.get(body["messages"][-1]["content"], [])
            return script.pop(0) if script else 200

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/v1/models" or server.listed is None:
                    self._send(404, b'{"detail": "Not Found"}', "application/json")
                    return
                listing = {"object": "list", "data": server.listed}
                self._send(200, json.dumps(listing).encode(), "application/json")

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                if self.path == "/tokenize":
                    server.tokenized.append(body)
                    count = {"count": 7 * len(body["messages"]), "max_model_len": 4096}
                    self._send(200, json.dumps(count).encode(), "application/json")
                    return
                with server.lock:
                    server.authorizations.append(self.headers.get("Authorization"))
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    self._answer(server._next_step(body), body)
                finally:
                    with server.lock:
                        server.in_flight -= 1

            def _answer(self, step, body: dict) -> None:
                if isinstance(step, tuple):  # ("slow", seconds): answer late, then normally
                    time.sleep(step[1])
                    step = 200
                if step == "garbage":
                    self._send(200, b"{this is not json", "application/json")
                elif step == 200:
                    self._send(200, json.dumps(chat_completion(body)).encode(), "application/json")
                else:
                    message = (  # vLLM's answer for a model it does not serve
                        f"The model `{body['model']}` does not exist."
                        if step == 404
                        else f"scripted {step}"
                    )
                    error = {"error": {"message": message, "type": "server_error"}}
                    self._send(
                        step,
                        json.dumps(error).encode(),
                        "application/json",
                        retry_after=step == 429,
                    )

            def _send(
                self, status: int, payload: bytes, content_type: str, retry_after: bool = False
            ) -> None:
                self.send_response(status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(payload)))
                if retry_after:
                    self.send_header("retry-after", "0")
                self.end_headers()
                try:
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and left, as the timeout test wants

            def log_message(self, *args) -> None:
                pass

        return Handler


def chat_completion(body: dict) -> dict:
    """What a server answers: choice i says "<user text> #i"; prompt = 10 tokens a message."""
    question = body["messages"][-1]["content"]
    texts = [f"{question} #{i}" for i in range(body.get("n", 1))]
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": body["model"],
        "choices": [
            {"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"}
            for i, t in reversed(list(enumerate(texts)))  # out of order on purpose
        ],
        "usage": {
            "prompt_tokens": 10 * len(body["messages"]),
            "completion_tokens": sum(len(t) for t in texts),
            "total_tokens": 10 * len(body["messages"]) + sum(len(t) for t in texts),
            "prompt_tokens_details": {"cached_tokens": 4},
        },
    }


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    yield server
    server.httpd.shutdown()


@pytest.fixture
def engine_for(server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    made = []

    def build(**cfg) -> OpenAIEngine:
        config = EngineConfig(kind="openai", base_url=server.url, api_key_env=KEY_ENV, **cfg)
        made.append(OpenAIEngine(config, "tiny-model", policy=FAST))
        return made[-1]

    yield build
    for engine in made:
        engine.close()


def wait_until_idle(server: ScriptedServer, seconds: float = 5.0) -> None:
    """Let answers to clients that already timed out finish before counting concurrency."""
    deadline = time.monotonic() + seconds
    while server.in_flight and time.monotonic() < deadline:
        time.sleep(0.01)


def ask(engine: OpenAIEngine, *texts: str, n: int = 1, **kwargs):
    requests = [ChatRequest(f"id-{t}", [{"role": "user", "content": t}]) for t in texts]
    return engine.generate(
        requests, SamplingConfig(n=n, temperature=0.5, max_new_tokens=16), **kwargs
    )


# ---------------------------------------------------------------- pure parts


def test_backoff_grows_exponentially_within_jitter_and_cap():
    policy = RetryPolicy(max_retries=5, base_s=1.0, cap_s=8.0)
    rng = random.Random(0)
    for attempt, ceiling in enumerate([1, 2, 4, 8, 8]):
        delays = [policy.delay(attempt, rng) for _ in range(200)]
        assert ceiling / 2 <= min(delays) and max(delays) <= ceiling
        assert max(delays) - min(delays) > ceiling / 4  # jittered, not a constant


def test_backoff_honours_retry_after_up_to_the_cap():
    policy = RetryPolicy(max_retries=1, base_s=0.1, cap_s=5.0)
    assert policy.delay(0, random.Random(0), retry_after=3.0) == 3.0
    assert policy.delay(0, random.Random(0), retry_after=100.0) == 5.0


@pytest.mark.parametrize(
    ("status", "retry"),
    [(429, True), (500, True), (503, True), (408, True), (400, False), (401, False), (404, False)],
)
def test_which_statuses_are_retried(status, retry):
    assert is_retryable(status) is retry


def test_chat_arguments_map_sampling_stop_and_regex_without_a_seed():
    request = ChatRequest("q1", [{"role": "user", "content": "hi"}])
    sampling = SamplingConfig(n=3, temperature=0.9, top_p=0.8, max_new_tokens=7, seed=5)
    args = chat_arguments("m", request, sampling, ["</response>"], "a+")
    assert args == {
        "model": "m",
        "messages": request.messages,
        "n": 3,
        "temperature": 0.9,
        "top_p": 0.8,
        "max_tokens": 7,
        "stop": ["</response>"],
        "extra_body": {"structured_outputs": {"regex": "a+"}},
    }
    assert "stop" not in chat_arguments("m", request, sampling, None, None)


def test_response_maps_to_completions_in_index_order_with_exact_token_totals():
    body = {"model": "m", "n": 3, "messages": [{"role": "user", "content": "abc"}]}
    completions = to_completions("q", chat_completion(body), 3)
    assert [c.index for c in completions] == [0, 1, 2]
    assert [c.text for c in completions] == ["abc #0", "abc #1", "abc #2"]
    assert sum(c.output_tokens for c in completions) == 18
    assert {(c.prompt_tokens, c.cached_prompt_tokens, c.finish_reason) for c in completions} == {
        (10, 4, "stop")
    }


@pytest.mark.parametrize(
    ("total", "weights"), [(10, [1, 1, 1]), (7, [0, 0]), (5, [3, 0, 1]), (0, [2, 2]), (9, [4])]
)
def test_share_out_keeps_the_total(total, weights):
    parts = share_out(total, weights)
    assert sum(parts) == total and len(parts) == len(weights)


def test_estimate_grows_with_the_text():
    short = estimate_tokens([{"role": "user", "content": "hi"}])
    assert estimate_tokens([{"role": "user", "content": "hi " * 100}]) > short > 0


# ---------------------------------------------------------------- over the wire


def test_n_completions_per_request_in_request_order(engine_for, server):
    engine = engine_for()
    out = ask(engine, "alpha", "beta", "gamma", n=2)
    assert [[c.text for c in cs] for cs in out] == [
        [f"{t} #0", f"{t} #1"] for t in ("alpha", "beta", "gamma")
    ]
    assert [cs[0].request_id for cs in out] == ["id-alpha", "id-beta", "id-gamma"]
    assert engine.stats.requests == 3 and engine.stats.prompt_tokens == 30
    assert engine.stats.prefix_cache_hit_rate == pytest.approx(0.4)
    sent = next(b for b in server.received if b["messages"][-1]["content"] == "alpha")
    assert (
        sent["model"] == "tiny-model"
        and sent["n"] == 2
        and sent["max_tokens"] == 16
        and "seed" not in sent
    )


def test_the_key_comes_from_the_named_environment_variable(engine_for, server):
    ask(engine_for(), "keyed")
    assert server.authorizations[-1] == f"Bearer {SECRET}"


@pytest.mark.parametrize("failures", [[429], [500, 502], ["garbage"], [("slow", 1.0)]])
def test_transient_failures_are_retried(engine_for, server, failures):
    text = f"flaky-{len(server.received)}"
    server.scripts[text] = list(failures)
    out = ask(engine_for(request_timeout_s=0.3), text)
    assert out[0][0].text == f"{text} #0"
    assert server.attempts(text) == len(failures) + 1


def test_final_failure_names_request_and_status_but_not_the_key(engine_for, server):
    server.scripts["doomed"] = [500] * 10
    with pytest.raises(EngineError) as caught:
        ask(engine_for(), "doomed")
    message = str(caught.value)
    assert "id-doomed" in message and "HTTP 500" in message and "4 attempt" in message
    assert SECRET not in message and SECRET not in repr(caught.value.__context__)
    assert server.attempts("doomed") == FAST.max_retries + 1


def test_client_errors_are_not_retried(engine_for, server):
    server.scripts["bad-request"] = [400]
    with pytest.raises(EngineError, match="HTTP 400"):
        ask(engine_for(), "bad-request")
    assert server.attempts("bad-request") == 1


def test_no_more_than_concurrency_requests_in_flight(engine_for, server):
    texts = [f"busy-{i}" for i in range(8)]
    for t in texts:
        server.scripts[t] = [("slow", 0.2)]
    wait_until_idle(server)
    server.max_in_flight = 0
    ask(engine_for(concurrency=3), *texts)
    assert server.max_in_flight == 3


def test_make_engine_dispatches_openai_and_counts_prompt_tokens_without_a_tokenizer(server):
    engine = make_engine(EngineConfig(kind="openai", base_url=server.url), "hosted-model", seed=0)
    try:
        assert engine.name == "openai" and engine.model == "hosted-model"
        assert engine.count_prompt_tokens([{"role": "user", "content": "hello there"}]) > 0
        assert engine.generate([], SamplingConfig()) == []
    finally:
        engine.close()


def test_openai_engine_needs_a_base_url():
    with pytest.raises(EngineError, match="base_url"):
        OpenAIEngine(EngineConfig(kind="openai"), "m")
