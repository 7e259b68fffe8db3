"""The `bolt` app: `run` and `stage` hand over to the Prefect flows, the rest is library.

The flows are imported inside those two commands only, so the other commands work where
Prefect is not wanted. Config errors print the file, line and key and exit with status 2.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from bolt.config import STAGE_SECTIONS
from bolt.store import StoreError
from bolt_cli.artifacts import artifacts_app
from bolt_cli.common import DEFAULT_CONFIG, ConfigArg, Overrides, err, load_or_exit
from bolt_cli.config_commands import config_app
from bolt_cli.export import export
from bolt_cli.models import models_app
from bolt_cli.official import eval_app
from bolt_cli.plan import plan
from bolt_cli.preflight import preflight
from bolt_cli.principles import principles_app
from bolt_cli.rehearse import rehearse
from bolt_cli.results import print_results, print_summary, use_prefect

app = typer.Typer(
    help="BOLT: bootstrap long chain-of-thought, as a resumable Prefect workflow.",
    no_args_is_help=True,
)
app.add_typer(config_app, name="config")
app.add_typer(artifacts_app, name="artifacts")
app.add_typer(models_app, name="models")
app.add_typer(eval_app, name="eval")
app.add_typer(principles_app, name="principles")


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
    use_prefect()
    from flows.pipeline import run_pipeline

    summary = run_pipeline(cfg, until)
    print_summary(summary)
    print_results(cfg, summary)


@app.command()
def stage(
    name: Annotated[str, typer.Argument(help=f"One of: {', '.join(STAGE_SECTIONS)}.")],
    config: ConfigArg = DEFAULT_CONFIG,
    overrides: Overrides = None,
) -> None:
    """Run one stage (and, from cache, the stages it needs)."""
    cfg = load_or_exit(config, overrides)
    use_prefect()
    from flows.pipeline import STAGE_FLOWS

    if name not in STAGE_FLOWS:
        err.print(
            f"[bold red]error:[/] unknown stage {name!r}; available: {', '.join(STAGE_FLOWS)}"
        )
        raise typer.Exit(2)
    print_summary(STAGE_FLOWS[name](cfg))


app.command()(plan)
app.command()(preflight)
app.command()(export)
app.command()(rehearse)


def main() -> None:
    try:
        app()
    except StoreError as e:
        err.print(f"[bold red]error:[/] {e}")
        sys.exit(2)
