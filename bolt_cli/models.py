"""`bolt models ...`: prepare models from the catalog."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from bolt_cli.common import DEFAULT_CONFIG, ConfigOpt, console, err, load_or_exit

models_app = typer.Typer(help="Prepare models from the catalog.", no_args_is_help=True)


@models_app.command("prepare")
def models_prepare(
    name: Annotated[str, typer.Argument(help="Catalog name, e.g. smollm2-135m-instruct.")],
    config: ConfigOpt = DEFAULT_CONFIG,
    force: Annotated[bool, typer.Option(help="Prepare again even if cached.")] = False,
) -> None:
    """Materialise a catalog model locally (GGUF -> safetensors, S3 -> cache), offline."""
    from bolt.models import ModelError, prepare_model

    cfg = load_or_exit(config, [])
    try:
        with console.status(f"preparing {name}..."):
            folder = prepare_model(cfg.models, name, force=force, s3=cfg.storage.s3)
    except ModelError as e:
        err.print(f"[bold red]error:[/] {e}")
        raise typer.Exit(2) from None
    console.print(f"[green]ready[/] {name} -> {folder}")


@models_app.command("ls")
def models_ls(config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """List the catalog and what is prepared locally."""
    from bolt.models import cache_root, is_prepared

    cfg = load_or_exit(config, [])
    table = Table(title="model catalog")
    for column in ("name", "source", "prepared"):
        table.add_column(column)
    for name, entry in cfg.models.catalog.items():
        source = entry.path or entry.hf_id or entry.s3_uri or f"{entry.gguf_package} (GGUF)"
        table.add_row(name, source, "yes" if is_prepared(cache_root(cfg.models) / name) else "")
    console.print(table)
