"""A real MLflow tracking server on loopback, one per test session:

    mlflow server --host 127.0.0.1 --port <free> --workers 1
        --backend-store-uri sqlite:///<tmp>/mlflow.db --artifacts-destination <tmp>/artifacts

(artifacts are proxied: clients upload them over HTTP, as against a shared server). It is
ready in ~25 s on the 2-core CI class; ``start`` polls ``GET /health`` for at most
``READY_TIMEOUT_S`` and fails with the tail of its log when it exits or never answers.
The ``mlflow_server`` fixture (registered in tests/conftest.py) starts it on first use
and stops its whole process group (uvicorn, its workers, the job runner) at the end.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

READY_TIMEOUT_S = 180


class MlflowServerError(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MlflowServer:
    def __init__(self, root: Path):
        self.root, self.port = Path(root), _free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.log = self.root / "server.log"
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        mlflow = Path(sys.executable).with_name("mlflow")
        return [
            str(mlflow),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{self.root / 'mlflow.db'}",
            "--artifacts-destination",
            str(self.root / "artifacts"),
        ]

    def start(self, timeout_s: float = READY_TIMEOUT_S) -> MlflowServer:
        started = time.monotonic()
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                start_new_session=True,
            )
        while time.monotonic() - started < timeout_s:
            if self.process.poll() is not None:
                raise MlflowServerError(f"mlflow server exited:\n{self.tail()}")
            if self._healthy():
                return self
            time.sleep(1.0)
        self.stop()
        raise MlflowServerError(f"mlflow server not ready after {timeout_s:.0f} s\n{self.tail()}")

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.uri}/health", timeout=5) as answer:
                return answer.status == 200
        except OSError:
            return False

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
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture(scope="session")
def mlflow_server() -> Iterator[MlflowServer]:
    """ONE MLflow tracking server for the session (skips when mlflow is not installed)."""
    pytest.importorskip("mlflow")
    server = MlflowServer(Path(tempfile.mkdtemp(prefix="bolt-mlflow-server-"))).start()
    try:
        yield server
    finally:
        server.stop()
