"""The Prefect run form and artifacts as a person sees them: a real Prefect server with
its UI on loopback, the pipeline served as a deployment (as tests/integration/
test_deployments.py serves it), and the UI rendered in headless Chromium.

- the run form offers the stage to stop after and the shipped configs as selects, and
  the deployment's parameter schema checks each override's `key=value` shape;
- a malformed override or an unknown stage is refused before a run exists; a wrong key
  fails the run at its first step (validate-config), naming the key, before preflight;
- a run started from the API with overrides completes, and its artifact pages show the
  stage summary's text; screenshots of the form and of the artifact page are not blank;
- an eval (`bolt stage eval`: MATH500 through the stand-in OpenAI-compatible teacher,
  tests/reliability/teacher_server.py) publishes its table, whose page shows each row's
  benchmark and score, and its summary, whose page links the headline plot in the store.

The session's Prefect server (tests/conftest.py) serves no UI (Prefect's test harness
turns it off), so this module starts `prefect server start` with the UI on.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest

from bolt.config import STAGE_SECTIONS
from bolt.config_loader import load_config
from tests.conftest import REPO, TINY_CONFIG, free_port
from tests.reliability.teacher_server import TeacherServer

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("chromium") is None, reason="no chromium (scripts/setup.sh installs it)"
    ),
]

DEPLOYMENT = "bolt-pipeline-from-config/run-form-test"
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--virtual-time-budget=15000",
    "--window-size=1400,1100",
]
SHIPPED = sorted(p.stem for p in (REPO / "configs").glob("*.yaml"))


def _wait(check, what: str, timeout: float, proc: subprocess.Popen, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"{what}: process exited\n{log.read_text()[-3000:]}"
        if (found := check()) is not None:
            return found
        time.sleep(1)
    raise AssertionError(f"{what} not within {timeout} s\n{log.read_text()[-3000:]}")


def _start(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    # The log goes to a file: an unread pipe fills up and stalls the process.
    return subprocess.Popen(
        args,
        cwd=REPO,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, 9)
    proc.wait()


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    """A Prefect server with its UI at http://127.0.0.1:<port>/, and this process's
    client pointed at it; yields (ui root, api url, env for subprocesses)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    tmp = tmp_path_factory.mktemp("prefect-ui")
    port = free_port()
    root, api = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp / "home"),
        "PREFECT_API_URL": api,
        "PREFECT_UI_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        # No "join the community" modal over the pages this test screenshots.
        "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
    }
    env.pop("PREFECT_UI_ENABLED", None)
    log = tmp / "server.log"
    cli = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1"]
    # With its services: task runs are recorded from events by one of them.
    server = _start([*cli, "--port", str(port)], env, log)

    def healthy():
        try:
            return httpx.get(f"{api}/health", timeout=2).status_code == 200 or None
        except httpx.HTTPError:
            return None

    try:
        _wait(healthy, "the Prefect server", 180, server, log)
        with temporary_settings(updates={PREFECT_API_URL: api}):
            yield root, api, env
    finally:
        _stop(server)


@pytest.fixture(scope="module")
def deployment(ui, tmp_path_factory):
    """``pipeline_from_config`` served as a deployment of that server."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    _, _, env = ui
    log = tmp_path_factory.mktemp("runner") / "runner.log"
    serve = "from flows.pipeline import pipeline_from_config as f; f.serve(name='run-form-test')"
    runner = _start([sys.executable, "-c", serve], env, log)

    def registered():
        try:
            with get_client(sync_client=True) as client:
                return client.read_deployment_by_name(DEPLOYMENT)
        except ObjectNotFound:
            return None

    try:
        yield _wait(registered, DEPLOYMENT, 240, runner, log), log
    finally:
        _stop(runner)


def _chromium(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["chromium", *CHROMIUM_FLAGS, *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=180,
    )


def _page(url: str) -> tuple[str, str]:
    """The rendered DOM of a UI page, and its visible text."""
    dom = _chromium("--dump-dom", url).stdout
    body = re.sub(r"<(script|style|svg)\b.*?</\1>", " ", dom, flags=re.DOTALL)
    return dom, html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body)))


def _options(dom: str) -> set[str]:
    return {html.unescape(o).strip() for o in re.findall(r"<option[^>]*>([^<]*)</option>", dom)}


def _assert_not_blank(url: str, png: Path, attempts: int = 3) -> None:
    """A screenshot whose content area (right of the sidebar, top half) is not mostly
    one colour: a blank or unrendered page is one background colour. Taken again when
    it is not: on a loaded machine the shot can land while the form still fades in (the
    text dim, a few dozen colours), which is not a blank page."""
    from PIL import Image

    for _ in range(attempts):
        _chromium(f"--screenshot={png}", url)
        assert png.is_file() and png.stat().st_size > 0, f"no screenshot of {url}"
        with Image.open(png) as image:
            rgb = image.convert("RGB")
            width, height = rgb.size
            area = rgb.crop((int(width * 0.2), 0, width, height // 2))
            colours = Counter(area.getdata())
        share = colours.most_common(1)[0][1] / sum(colours.values())
        if len(colours) > 64 and share < 0.95:
            return
    raise AssertionError(f"{url}: {len(colours)} colours, the commonest {share:.0%}")


def _artifacts(name: str) -> dict:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(like_=name))
        )
    return {a.key: a for a in found}


def _runs_of(deployment_id) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    with get_client(sync_client=True) as client:
        return client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
        )


def test_the_run_form_offers_the_stages_and_the_shipped_configs(ui, deployment, tmp_path):
    from flows.pipeline import OVERRIDE_PATTERN

    root, _, _ = ui
    dep, _ = deployment
    schema = dep.parameter_openapi_schema
    props, defs = schema["properties"], schema["definitions"]
    assert defs[props["until"]["$ref"].rpartition("/")[2]]["enum"] == list(STAGE_SECTIONS)
    shipped_ref = next(a["$ref"] for a in props["config"]["anyOf"] if "$ref" in a)
    assert defs[shipped_ref.rpartition("/")[2]]["enum"] == SHIPPED
    assert props["overrides"]["items"]["pattern"] == OVERRIDE_PATTERN

    url = f"{root}/deployments/deployment/{dep.id}/run"
    dom, text = _page(url)
    assert "Parameters" in text and "overrides" in text, text[:2000]
    options = _options(dom)
    assert set(STAGE_SECTIONS) <= options, options  # until: a select of the stages
    assert {"tiny-cpu", "paper-8b"} <= options, options  # config: a select of the shipped
    assert "The stage to stop after" in text  # the docstring's help under each field
    _assert_not_blank(url, tmp_path / "form.png")


def test_malformed_input_is_refused_before_a_run_exists(deployment):
    from prefect.client.orchestration import get_client
    from prefect.exceptions import PrefectHTTPStatusError

    dep, _ = deployment
    before = len(_runs_of(dep.id))
    for parameters, field in (
        ({"overrides": ["sft.lr 1e-5"]}, "overrides[0]"),
        ({"until": "filtr"}, "until"),
        ({"config": ""}, "config"),
    ):
        with (
            get_client(sync_client=True) as client,
            pytest.raises(PrefectHTTPStatusError) as refused,
        ):
            client.create_flow_run_from_deployment(dep.id, parameters=parameters)
        assert field in str(refused.value), (parameters, str(refused.value))
    assert len(_runs_of(dep.id)) == before


def test_a_wrong_key_fails_the_run_at_its_first_step(deployment):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.deployments import run_deployment

    _, log = deployment
    run = run_deployment(
        DEPLOYMENT, parameters={"config": "tiny-cpu", "overrides": ["sft.lrr=1e-5"]}, timeout=300
    )
    assert run.state.type.value == "FAILED", (run.state, log.read_text()[-3000:])
    assert "sft.lrr" in (run.state.message or ""), run.state.message

    def task_runs():
        # Task runs are recorded from events by a server service: give it a moment.
        with get_client(sync_client=True) as client:
            found = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id]))
            )
        return found or None

    deadline = time.monotonic() + 60
    while (tasks := task_runs()) is None and time.monotonic() < deadline:
        time.sleep(2)
    assert tasks, "no task run of the failed run was recorded"
    # Nothing but the validation ran: no preflight, no stage.
    assert [t.name.rsplit("-", 1)[0] for t in tasks] == ["validate-config"], [t.name for t in tasks]


def test_a_run_with_overrides_completes_and_its_artifacts_render(
    ui, deployment, smollm2_path, tmp_path
):
    from prefect.deployments import run_deployment

    root, _, _ = ui
    _, log = deployment
    name = f"form-{uuid.uuid4().hex[:8]}"
    overrides = [
        f"name={name}",
        f"storage.root=file://{tmp_path}/store",
        "data.difficulty_filter=false",  # topics come from the source: no labeller
        "data.max_queries=4",
        "data.topic_cap=2",
    ]
    parameters = {"config": "tiny-cpu", "overrides": overrides, "until": "data"}
    run = run_deployment(DEPLOYMENT, parameters=parameters, timeout=600)
    assert run.state.type.value == "COMPLETED", (run.state, log.read_text()[-3000:])

    by_key = _artifacts(name)
    assert {f"{name}-data-summary", f"{name}-run", f"{name}-results"} <= set(by_key)
    summary = by_key[f"{name}-data-summary"]
    assert "| kept |" in summary.data and "Stored at" in summary.data

    url = f"{root}/artifacts/artifact/{summary.id}"
    _, text = _page(url)
    fingerprint = re.search(r"`([0-9a-f]{16})`", summary.data).group(1)
    assert fingerprint in text and "Stored at" in text and "kept" in text, text[:2000]
    _assert_not_blank(url, tmp_path / "artifact.png")

    _, run_text = _page(f"{root}/artifacts/artifact/{by_key[f'{name}-run'].id}")
    assert f"{name}: 1 output so far" in run_text and "usd_so_far" in run_text, run_text[:2000]


def test_an_evals_table_and_its_plot_link_render(ui, tmp_path, monkeypatch):
    """Run in this process against the UI's server (no deployment needed): two MATH500
    items, answered by the stand-in teacher and graded by rule, in about 10 s."""
    monkeypatch.setenv("OPENAI_API_KEY", "not-checked")  # the stand-in server ignores it
    from flows.pipeline import STAGE_FLOWS

    root, _, _ = ui
    name = f"form-eval-{uuid.uuid4().hex[:8]}"
    with TeacherServer() as server:
        cfg = load_config(
            TINY_CONFIG,
            [
                f"name={name}",
                f"storage.root=file://{tmp_path}/store",
                "eval.benchmarks=[math500]",
                "eval.max_items=2",
                "eval.baseline_model=null",
                "eval.engine.kind=openai",
                f"eval.engine.base_url={server.base_url}",
                "tracking.backend=none",
            ],
        )
        STAGE_FLOWS["eval"](cfg)  # no SFT model in the store: the base model is evaluated

    by_key = _artifacts(name)
    stats = f"{name}-eval-stats"  # the stage's stats table, beside the eval's own
    (table,) = [
        a
        for k, a in by_key.items()
        if a.type == "table" and k.startswith(f"{name}-eval-") and k != stats
    ]
    rows = json.loads(table.data)
    assert rows and {r["benchmark"] for r in rows} == {"math500"}, rows
    _, text = _page(f"{root}/artifacts/artifact/{table.id}")
    model = list(rows[0])[2]  # bolt.evals.report.table_rows: the model's score column
    assert model in text, (model, text[:2000])
    for row in rows:  # each row as the table artifact shows it
        # The UI prints a number as JavaScript does: 0.0 as "0", 0.25 as "0.25".
        cells = (row["benchmark"], row["metric"], f"{row[model]:g}", row["n_items"])
        assert all(str(c) in text for c in cells), (row, text[:2000])
    _assert_not_blank(f"{root}/artifacts/artifact/{table.id}", tmp_path / "eval-table.png")

    summary = by_key[f"{name}-eval-summary"]
    plot = re.search(r"\[headline\.png\]\(([^)]+)\)", summary.data)
    assert plot, summary.data
    dom, text = _page(f"{root}/artifacts/artifact/{summary.id}")
    assert "Plots" in text and "headline.png" in text, text[:2000]
    assert f'href="{html.escape(plot.group(1))}"' in dom or f'href="{plot.group(1)}"' in dom
