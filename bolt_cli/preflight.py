"""`bolt preflight`: check everything a config names before a run spends anything."""

from __future__ import annotations

import time

import typer
from rich.markup import escape
from rich.table import Table

from bolt.config import PipelineConfig
from bolt_cli.common import DEFAULT_CONFIG, ConfigArg, Overrides, console, err, load_or_exit


def _needs_prefect(cfg: PipelineConfig) -> bool:
    """The work pool and Secret block checks ask the Prefect server; without either,
    Prefect is not imported at all."""
    return bool(cfg.compute.work_pool or cfg.eval.judge.api_key_secret_block)


def preflight(config: ConfigArg = DEFAULT_CONFIG, overrides: Overrides = None) -> None:
    """Check the models, datasets, credentials, work pool, cluster and memory plan a
    config names; exit 1 naming each config key at fault."""
    cfg = load_or_exit(config, overrides)
    start = time.monotonic()
    if _needs_prefect(cfg):
        from tasks.preflight import run_preflight

        problems = run_preflight(cfg)
    else:
        from bolt.preflight import preflight as run_checks

        problems = run_checks(cfg)
    elapsed = time.monotonic() - start
    if not problems:
        console.print(f"[bold green]preflight passed[/] ({config}, {elapsed:.1f} s)")
        return
    table = Table(title=f"preflight: {len(problems)} problem(s) in {config}")
    table.add_column("config key", style="bold", overflow="fold")
    table.add_column("problem", overflow="fold")
    for problem in problems:
        table.add_row(escape(problem.key), escape(problem.message))
    err.print(table)
    err.print(f"[bold red]preflight failed[/] ({elapsed:.1f} s)")
    raise typer.Exit(1)
