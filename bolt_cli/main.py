"""The `bolt` app: `run` and `stage` hand over to the Prefect flows, the rest is library.

The flows are imported inside those two commands only, so the other commands work where
Prefect is not wanted. Config errors print the file, line and key and exit with status 2.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from bolt.config import STAGE_SECTIONS, PipelineConfig
from bolt.stages import Stage
from bolt.store import ArtifactStore, StoreError
from bolt.summary import collect, file_rows, iteration_rows, score_rows
from bolt_cli.artifacts import artifacts_app
from bolt_cli.common import DEFAULT_CONFIG, ConfigArg, Overrides, err, load_or_exit
from bolt_cli.config_commands import config_app
from bolt_cli.export import export
from bolt_cli.models import models_app
from bolt_cli.official import eval_app
from bolt_cli.output import Field, print_rows
from bolt_cli.plan import plan
from bolt_cli.preflight import preflight

app = typer.Typer(
    help="BOLT: bootstrap long chain-of-thought, as a resumable Prefect workflow.",
    no_args_is_help=True,
)
app.add_typer(config_app, name="config")
app.add_typer(artifacts_app, name="artifacts")
app.add_typer(models_app, name="models")
app.add_typer(eval_app, name="eval")


@app.command()
def run(
    config: ConfigArg = DEFAULT_CONFIG,
    overrides: Overrides = None,
    until: Annotated[
        str | None,
        typer.Option(help=f"Stop after this stage, one of: {', '.join(STAGE_SECTIONS)}."),
    ] = None,
) -> None:
    """Run the whole pipeline as a Prefect flow (on Prefect's embedded server if none is set)."""
    if until is not None and until not in STAGE_SECTIONS:
        err.print(
            f"[bold red]error:[/] --until {until!r}: expected one of {', '.join(STAGE_SECTIONS)}"
        )
        raise typer.Exit(2)
    cfg = load_or_exit(config, overrides)
    _use_prefect()
    from flows.pipeline import run_pipeline

    summary = run_pipeline(cfg, until)
    _print_summary(summary)
    _print_results(cfg, summary)


@app.command()
def stage(
    name: Annotated[str, typer.Argument(help=f"One of: {', '.join(STAGE_SECTIONS)}.")],
    config: ConfigArg = DEFAULT_CONFIG,
    overrides: Overrides = None,
) -> None:
    """Run one stage (and, from cache, the stages it needs)."""
    cfg = load_or_exit(config, overrides)
    _use_prefect()
    from flows.pipeline import STAGE_FLOWS

    if name not in STAGE_FLOWS:
        err.print(
            f"[bold red]error:[/] unknown stage {name!r}; available: {', '.join(STAGE_FLOWS)}"
        )
        raise typer.Exit(2)
    _print_summary(STAGE_FLOWS[name](cfg))


app.command()(plan)
app.command()(preflight)
app.command()(export)


def _use_prefect() -> None:
    """Before Prefect is imported: its embedded server gets 20 s to start by default,
    which a busy 2-core machine (vLLM loading beside it) can exceed. The user's own
    setting wins."""
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    # Batch jobs on machines that often have no route out: no telemetry from that server.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


SUMMARY_FIELDS = (
    Field("stage"),
    Field("fingerprint"),
    Field("records", cell="{:,}".format, numeric=True),
    Field("uri", "where"),
)


def _print_summary(summary: dict[str, dict]) -> None:
    rows = [{"stage": name, **info} for name, info in summary.items()]
    print_rows(rows, SUMMARY_FIELDS, title="stage outputs")


def _number(value: object) -> str:
    if value is None:
        return "—"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _by_backend(rewards: dict[str, float | None]) -> str:
    return ", ".join(f"{name} {_number(v)}" for name, v in rewards.items()) or "—"


def _loss(row: dict) -> str:
    return f"{_number(row['first_loss'])} → {_number(row['final_loss'])}"


SCORE_FIELDS = (
    Field("model"),
    Field("benchmark"),
    Field("metric"),
    Field("score", cell=_number, numeric=True),
    Field("judge", "graded by"),
    Field("items", cell=_number, numeric=True),
)
ITERATION_FIELDS = (
    Field("iteration", numeric=True),
    Field("sampled_from", "samples of"),
    Field("samples", numeric=True),
    Field("mean_reward", "mean reward", cell=_number, numeric=True),
    Field("backend_rewards", "per reward", cell=_by_backend),
    Field("pairs", cell=_number, numeric=True),
    Field("loss", "DPO loss first → last"),
    Field("reward_margin", "reward margin", cell=_number, numeric=True),
    Field("policy", "policy"),
)
FILE_FIELDS = (Field("model"), Field("what"), Field("path", "where"))


def _print_results(cfg: PipelineConfig, summary: dict[str, dict]) -> None:
    """What the run came for: each model's headline scores and their judge, the reward
    of each online iteration's samples, and where the reports and plots are."""
    store = ArtifactStore.from_config(cfg.storage)

    def stored(stage: Stage):
        info = summary.get(stage)
        return store.manifest(stage, str(info["fingerprint"])) if info else None

    results = collect(store, stored(Stage.online_policy), stored(Stage.eval_trajectory))
    if results.evals:
        title = "scores: each model's headline number per benchmark, and who graded it"
        print_rows(score_rows(results.evals), SCORE_FIELDS, title=title)
    if results.iterations:
        rows = [r | {"loss": _loss(r)} for r in iteration_rows(results.iterations, store.uri)]
        title = "online DPO: the reward of the samples each iteration trained on"
        print_rows(rows, ITERATION_FIELDS, title=title)
    if files := file_rows(results.evals, results.trajectory, store.uri):
        print_rows(files, FILE_FIELDS, title="reports and plots")


def main() -> None:
    try:
        app()
    except StoreError as e:
        err.print(f"[bold red]error:[/] {e}")
        sys.exit(2)
