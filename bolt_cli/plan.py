"""`bolt plan`: a config's tokens, FLOPs, hours, storage and cost, before it runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from bolt.config import PipelineConfig
from bolt_cli.common import DEFAULT_CONFIG, ConfigArg, Overrides, console, err, load_or_exit

COLUMNS = (
    "stage",
    "params (B)",
    "tokens read",
    "tokens generated",
    "PFLOP",
    "device-h",
    "wall-h",
    "storage GB",
    "cost $",
    "notes",
)


def plan(
    config: ConfigArg = DEFAULT_CONFIG,
    overrides: Overrides = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Per stage: tokens, FLOPs, device-hours, wall-clock, storage and cost of a full run."""
    from bolt.plan import PlanError, as_rows

    cfg = load_or_exit(config, overrides)
    try:
        rows = as_rows(_stage_plans(cfg))
    except PlanError as exc:
        err.print(f"[bold red]error:[/] {config}: {exc}")
        raise typer.Exit(2) from exc
    if as_json:
        console.print_json(json.dumps(rows))
    else:
        console.print(_table(cfg, rows))


def _stage_plans(cfg: PipelineConfig) -> list:
    # Imported here: the examples come through the bootstrap stage, whose imports are
    # more than `bolt --help` should pay for.
    from bolt.bootstrap.stage import examples_dir
    from bolt.plan import count_source_queries, few_shot_prompt_tokens
    from bolt.plan import plan as make_plan
    from bolt.prompts import load_examples

    examples = load_examples(examples_dir(cfg))
    chars = sum(len(e.query) + len(e.assistant_text()) for e in examples)
    return make_plan(
        cfg,
        count_source_queries(cfg, Path.cwd()),
        few_shot_prompt_tokens(chars, len(examples), cfg.bootstrap.examples_per_prompt),
    )


def _table(cfg: PipelineConfig, rows: list[dict]) -> Table:
    devices = max(1, cfg.compute.nodes * cfg.compute.gpus_per_node)
    table = Table(
        title=f"{cfg.name}: {devices} x {cfg.compute.gpu_type or cfg.compute.device}, "
        f"${cfg.compute.gpu_hour_usd}/device-hour"
    )
    for column in COLUMNS:
        table.add_column(column, justify="left" if column in ("stage", "notes") else "right")
    for row in rows:
        table.add_row(
            row["stage"],
            f"{row['model_params_b']:g}",
            f"{row['tokens_read']:,}",
            f"{row['tokens_generated']:,}",
            f"{row['flops'] / 1e15:,.1f}",
            f"{row['device_hours']:,.2f}",
            f"{row['wall_hours']:,.2f}",
            f"{row['storage_gb']:,.2f}",
            f"{row['cost_usd']:,.2f}",
            "; ".join(row["notes"]),
        )
    return table
