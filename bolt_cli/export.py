"""`bolt export CONFIG --out DIR`: the SFT set, the pairs, the SFT model and the policies
as Hugging Face folders with cards; `--push-to ORG/PREFIX` pushes each to the Hub."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bolt.store import ArtifactStore
from bolt_cli.common import DEFAULT_CONFIG, ConfigArg, console, err, load_or_exit
from bolt_cli.output import Field, Format, FormatOpt, long_step, print_rows

FIELDS = (
    Field("kind"),
    Field("name"),
    Field("source"),
    Field("rows", cell=lambda n: "" if n is None else f"{n:,}", numeric=True),
    Field("folder"),
    Field("repo"),
)


def export(
    config: ConfigArg = DEFAULT_CONFIG,
    out: Annotated[
        Path, typer.Option(help="Folder to write one sub-folder per export into.")
    ] = Path("export"),
    sft: Annotated[
        str | None, typer.Option(help="SFT model fingerprint (a unique prefix); else the newest.")
    ] = None,
    sft_set: Annotated[
        str | None,
        typer.Option("--filter", help="SFT set (filter) fingerprint prefix, when no --sft."),
    ] = None,
    push_to: Annotated[
        str | None,
        typer.Option(
            help="ORG/NAME-PREFIX: push each folder to <prefix>-<folder name> on the Hub."
        ),
    ] = None,
    private: Annotated[bool, typer.Option(help="Create the Hub repositories private.")] = False,
    license: Annotated[str, typer.Option(help="License id written in every card.")] = "other",
    root: Annotated[
        str | None, typer.Option(help="Storage root (file://... or s3://...); else the config's.")
    ] = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Export the SFT set, each iteration's preference pairs, the SFT model and each
    policy as Hugging Face datasets (Parquet) and model folders, with cards made from the
    manifests (TSV fields: kind, name, source, rows, folder, repo)."""
    from bolt.export.bundle import export as run_export
    from bolt.export.lineage import ExportError
    from bolt.export.push import PushError, check_prefix, push_all, repo_id_for

    cfg = load_or_exit(config, [])
    storage = cfg.storage.model_copy(update={"root": root}) if root else cfg.storage
    store = ArtifactStore.from_config(storage)
    try:
        if push_to:
            check_prefix(push_to)
        with long_step(f"exporting from {store.backend.uri('')}", unit="outputs"):
            _, exported = run_export(store, cfg, out, sft, sft_set, license, push_to)
        repos: dict[Path, str] = {}
        if push_to:
            with long_step(f"pushing {len(exported)} folders to {push_to}-*", unit="repos"):
                repos = {p.exported.folder: p.url for p in push_all(exported, push_to, private)}
    except (ExportError, PushError) as e:
        err.print(f"[bold red]error:[/] {e}")
        raise typer.Exit(2) from None
    rows = [
        {
            "kind": e.kind,
            "name": e.name,
            "source": e.source,
            "rows": e.rows,
            "folder": str(e.folder),
            "repo": repos.get(
                e.folder, repo_id_for(push_to, e) + " (not pushed)" if push_to else ""
            ),
        }
        for e in exported
    ]
    print_rows(rows, FIELDS, fmt, title=f"exported to {out}")
    first = next((e for e in exported if e.kind == "dataset"), None)
    if fmt == Format.table and first is not None:
        console.print(f"load one: datasets.load_dataset({str(first.folder)!r})")
