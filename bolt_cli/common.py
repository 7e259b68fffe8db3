"""What every command shares: the consoles, the config arguments and loading them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bolt.config import PipelineConfig
from bolt.config_loader import ConfigError, load_config
from bolt_cli.output import console, err

__all__ = [
    "DEFAULT_CONFIG",
    "ConfigArg",
    "ConfigOpt",
    "Overrides",
    "console",
    "err",
    "load_or_exit",
]

ConfigArg = Annotated[
    Path, typer.Argument(help="Pipeline config YAML, e.g. configs/tiny-cpu.yaml.")
]
ConfigOpt = Annotated[Path, typer.Option("--config", help="Config whose storage section is used.")]
Overrides = Annotated[list[str] | None, typer.Argument(help="Dotted overrides, e.g. sft.lr=1e-5.")]
DEFAULT_CONFIG = Path("configs/tiny-cpu.yaml")


def load_or_exit(path: Path, overrides: list[str] | None) -> PipelineConfig:
    """The config, or exit with status 2 after printing its file, line and key."""
    try:
        return load_config(path, overrides or [])
    except ConfigError as e:
        err.print(f"[bold red]error:[/] {e}", markup=True, highlight=False)
        raise typer.Exit(2) from None
