"""`bolt plan`: a config's tokens, FLOPs, hours, storage and cost, before it runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from bolt.config import PipelineConfig
from bolt_cli.common import DEFAULT_CONFIG, ConfigArg, Overrides, err, load_or_exit
from bolt_cli.output import Field, Format, FormatOpt, print_rows


def _number(spec: str, scale: float | None = None) -> Callable[[Any], str]:
    return lambda value: format(value / scale if scale else value, spec)


FIELDS = (
    Field("stage"),
    Field("model_params_b", "params (B)", _number("g"), numeric=True),
    Field("tokens_read", "tokens read", _number(",.0f"), numeric=True),
    Field("tokens_generated", "tokens generated", _number(",.0f"), numeric=True),
    Field("flops", "PFLOP", _number(",.1f", 1e15), numeric=True),
    Field("device_hours", "device-h", _number(",.2f"), numeric=True),
    Field("wall_hours", "wall-h", _number(",.2f"), numeric=True),
    Field("storage_gb", "storage GB", _number(",.2f"), numeric=True),
    Field("cost_usd", "cost $", _number(",.2f"), numeric=True),
    Field("api_hours", "of it API-h", _number(",.2f"), numeric=True),
    Field("notes", cell="; ".join),
)


def plan(
    config: ConfigArg = DEFAULT_CONFIG,
    overrides: Overrides = None,
    fmt: FormatOpt = Format.table,
    as_json: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
) -> None:
    """Per stage: tokens, FLOPs, device-hours, wall-clock, storage and cost of a full run.

    TSV and JSON: raw figures named as in bolt.plan.StagePlan (flops, not PFLOP).
    """
    from bolt.plan import PlanError, as_rows

    cfg = load_or_exit(config, overrides)
    try:
        rows = as_rows(stage_plans(cfg))
    except PlanError as exc:
        err.print(f"[bold red]error:[/] {config}: {exc}")
        raise typer.Exit(2) from exc
    print_rows(rows, FIELDS, Format.json if as_json else fmt, title=_title(cfg))


def stage_plans(cfg: PipelineConfig) -> list:
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


def _title(cfg: PipelineConfig) -> str:
    devices = max(1, cfg.compute.nodes * cfg.compute.gpus_per_node)
    return (
        f"{cfg.name}: {devices} x {cfg.compute.gpu_type or cfg.compute.device}, "
        f"${cfg.compute.gpu_hour_usd}/device-hour"
    )
