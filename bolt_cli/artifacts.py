"""`bolt artifacts ...`: list and inspect stored stage outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bolt.store import ArtifactStore
from bolt_cli.common import DEFAULT_CONFIG, ConfigOpt, console, err, load_or_exit
from bolt_cli.output import Field, Format, FormatOpt, print_rows

artifacts_app = typer.Typer(help="List and inspect stored stage outputs.", no_args_is_help=True)

RootOpt = Annotated[
    str | None, typer.Option(help="Storage root (file://... or s3://...); else the config's.")
]


def _store(root: str | None, config: Path) -> ArtifactStore:
    storage = load_or_exit(config, []).storage
    if root:
        storage = storage.model_copy(update={"root": root})
    return ArtifactStore.from_config(storage)


FIELDS = (
    Field("stage"),
    Field("fingerprint"),
    Field("created"),
    Field("shards", numeric=True),
    Field("records", cell="{:,}".format, numeric=True),
    Field("files", numeric=True),
    # The table shortens upstream fingerprints to 8 characters; TSV and JSON keep them whole.
    Field("upstream", cell=lambda up: ", ".join(f"{k}:{v[:8]}" for k, v in up.items())),
)


@artifacts_app.command("ls")
def artifacts_ls(
    stage_name: Annotated[str | None, typer.Argument(help="Only this stage.")] = None,
    root: RootOpt = None,
    config: ConfigOpt = DEFAULT_CONFIG,
    fmt: FormatOpt = Format.table,
) -> None:
    """List committed stage outputs (TSV fields: stage, fingerprint, created, shards,
    records, files, upstream as stage:fingerprint,...)."""
    store = _store(root, config)
    rows = [
        {
            "stage": str(m.stage),
            "fingerprint": m.fingerprint,
            "created": m.created_at,
            "shards": len(m.shards),
            "records": m.records,
            "files": len(m.files),
            "upstream": {str(k): v for k, v in m.upstream.items()},
        }
        for m in store.list_manifests(stage_name)
    ]
    print_rows(rows, FIELDS, fmt, title=f"artifacts in {store.backend.uri('')}")


@artifacts_app.command("show")
def artifacts_show(
    ref: Annotated[
        str, typer.Argument(help="STAGE/FINGERPRINT (a unique fingerprint prefix is enough).")
    ],
    root: RootOpt = None,
    config: ConfigOpt = DEFAULT_CONFIG,
) -> None:
    """Print one stage output's manifest."""
    store = _store(root, config)
    stage_name, _, prefix = ref.partition("/")
    matches = [m for m in store.list_manifests(stage_name) if m.fingerprint.startswith(prefix)]
    if len(matches) != 1:
        err.print(f"[bold red]error:[/] {ref!r} matches {len(matches)} committed outputs")
        raise typer.Exit(2)
    console.print_json(matches[0].model_dump_json())
