"""`bolt models ...`: prepare models from the catalog."""

from __future__ import annotations

from typing import Annotated

import typer

from bolt_cli.common import DEFAULT_CONFIG, ConfigOpt, console, err, load_or_exit
from bolt_cli.output import Field, Format, FormatOpt, long_step, print_rows

models_app = typer.Typer(help="Prepare models from the catalog.", no_args_is_help=True)

LS_FIELDS = (
    Field("name"),
    Field("source"),
    Field("prepared", cell=lambda ready: "yes" if ready else ""),
)


@models_app.command("prepare")
def models_prepare(
    name: Annotated[str, typer.Argument(help="Catalog name, e.g. smollm2-135m-instruct.")],
    config: ConfigOpt = DEFAULT_CONFIG,
    force: Annotated[bool, typer.Option(help="Prepare again even if cached.")] = False,
) -> None:
    """Materialise a catalog model locally (GGUF -> safetensors, S3 -> cache), offline."""
    from bolt.models import ModelError, catalog_entry, prepare_model

    cfg = load_or_exit(config, [])
    try:
        catalog_entry(cfg.models, name)
    except ModelError as e:
        err.print(f"[bold red]error:[/] {e}")
        raise typer.Exit(2) from None
    try:
        with long_step(f"preparing {name}", unit="models"):
            folder = prepare_model(cfg.models, name, force=force, s3=cfg.storage.s3)
    except ModelError as e:
        err.print(f"[bold red]error:[/] {e}")
        raise typer.Exit(2) from None
    console.print(f"[green]ready[/] {name} -> {folder}")


@models_app.command("ls")
def models_ls(config: ConfigOpt = DEFAULT_CONFIG, fmt: FormatOpt = Format.table) -> None:
    """List the catalog and what is prepared locally (TSV fields: name, source, prepared)."""
    from bolt.models import cache_root, is_prepared

    cfg = load_or_exit(config, [])
    rows = [
        {
            "name": name,
            "source": entry.path or entry.hf_id or entry.s3_uri or f"{entry.gguf_package} (GGUF)",
            "prepared": is_prepared(cache_root(cfg.models) / name),
        }
        for name, entry in cfg.models.catalog.items()
    ]
    print_rows(rows, LS_FIELDS, fmt, title="model catalog")
