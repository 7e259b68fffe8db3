"""`bolt config ...`: validate, show and export pipeline configs."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
import yaml

from bolt.config import PipelineConfig
from bolt.config_loader import ConfigError, load_config
from bolt_cli.common import DEFAULT_CONFIG, ConfigArg, Overrides, console, err, load_or_exit

config_app = typer.Typer(help="Validate, show and export pipeline configs.", no_args_is_help=True)


@config_app.command("validate")
def config_validate(paths: Annotated[list[Path], typer.Argument(help="Config files.")]) -> None:
    """Validate config files; report every problem with file, line and key."""
    failed = False
    for path in paths:
        try:
            load_config(path)
            console.print(f"[green]ok[/] {path}")
        except ConfigError as e:
            err.print(f"[bold red]invalid[/] {e}", highlight=False)
            failed = True
    if failed:
        raise typer.Exit(2)


@config_app.command("show")
def config_show(config: ConfigArg = DEFAULT_CONFIG, overrides: Overrides = None) -> None:
    """Print the resolved config (bases merged, overrides and defaults applied) as YAML."""
    cfg = load_or_exit(config, overrides)
    console.print(
        yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False), highlight=False, markup=False
    )


@config_app.command("schema")
def config_schema(
    out: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
) -> None:
    """Export the JSON Schema of PipelineConfig (editors and the Prefect UI use it)."""
    text = json.dumps(PipelineConfig.model_json_schema(), indent=2)
    if out:
        out.write_text(text + "\n")
    else:
        sys.stdout.write(text + "\n")


@config_app.command("reference")
def config_reference_cmd(
    readme: Annotated[
        Path | None, typer.Option(help="Rewrite this file's reference section in place.")
    ] = None,
) -> None:
    """Print the Markdown config reference (or refresh the README's reference section)."""
    from bolt.config_doc import config_reference, replace_reference

    if readme:
        readme.write_text(replace_reference(readme.read_text()))
    else:
        sys.stdout.write(config_reference())
