"""A deterministic OpenAI-compatible teacher on 127.0.0.1, with faults on demand.

Each answer is a well-formed LongCoT text derived from a hash of the request's messages
and the choice index, so a rerun gets the same bytes; ``delay_s`` slows every request
(so a crash can land mid-stage). ``faults`` is a queue consumed one per request:
429 (with Retry-After), 500, ``"garbage"`` (a 200 whose body is not JSON),
``"malformed"`` (JSON without choices) or ``("slow", seconds)`` (answers late).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


def teacher_text(messages: list[dict[str, Any]], index: int) -> str:
    digest = hashlib.sha256(json.dumps([messages, index], sort_keys=True).encode()).hexdigest()
    return (
        f"<thoughts>Plan {digest[:8]}: look at the question, weigh two branches, check."
        f"</thoughts><response>The answer, by route {digest[8:16]}, is {int(digest[16:20], 16)}."
        "</response>"
    )


def completion(body: dict[str, Any]) -> dict[str, Any]:
    texts = [teacher_text(body["messages"], i) for i in range(body.get("n", 1))]
    prompt_tokens = sum(len(str(m["content"])) // 4 for m in body["messages"])
    return {
        "id": "chatcmpl-teacher",
        "object": "chat.completion",
        "created": 0,
        "model": body["model"],
        "choices": [
            {"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"}
            for i, t in enumerate(texts)
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": sum(len(t) // 4 for t in texts),
            "total_tokens": prompt_tokens + sum(len(t) // 4 for t in texts),
        },
    }


class TeacherServer:
    def __init__(self, delay_s: float = 0.0):
        self.delay_s = delay_s
        self.faults: deque[Any] = deque()
        self.injected: list[Any] = []
        self.requests = 0
        self.authorizations: list[str | None] = []  # each request's Authorization header
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_port}/v1"

    def _next_fault(self) -> Any:
        with self.lock:
            self.requests += 1
            if self.faults:
                self.injected.append(self.faults[0])
                return self.faults.popleft()
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        teacher = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                teacher.authorizations.append(self.headers.get("authorization"))
                fault = teacher._next_fault()
                time.sleep(teacher.delay_s)
                if isinstance(fault, tuple):
                    time.sleep(fault[1])
                    fault = None
                if fault in (429, 500):
                    error = {"error": {"message": f"injected {fault}", "type": "server_error"}}
                    self._send(fault, json.dumps(error).encode())
                elif fault == "garbage":
                    self._send(200, b"{this is not json")
                elif fault == "malformed":
                    self._send(200, json.dumps({"id": "x", "object": "chat.completion"}).encode())
                else:
                    self._send(200, json.dumps(completion(body)).encode())

            def _send(self, status: int, payload: bytes) -> None:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                if status == 429:
                    self.send_header("retry-after", "0")
                self.end_headers()
                try:
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and left

        return Handler

    def __enter__(self) -> Self:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
