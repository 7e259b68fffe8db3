"""The `bolt` command: a thin shell over the library and the flows.

`run` and `stage` hand over to the Prefect flows (imported only there, so the rest of
the CLI, like the library, works where Prefect is not wanted). Config errors print
the file, line and key and exit with status 2.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.console import Console
from rich.table import Table

from bolt.config import STAGE_SECTIONS, PipelineConfig
from bolt.config_loader import ConfigError, load_config
from bolt.store import ArtifactStore, StoreError

app = typer.Typer(
    help="BOLT: bootstrap long chain-of-thought, as a resumable Prefect workflow.",
    no_args_is_help=True,
)
config_app = typer.Typer(help="Validate, show and export pipeline configs.", no_args_is_help=True)
artifacts_app = typer.Typer(help="List and inspect stored stage outputs.", no_args_is_help=True)
models_app = typer.Typer(help="Prepare models from the catalog.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(artifacts_app, name="artifacts")
app.add_typer(models_app, name="models")

console = Console()
err = Console(stderr=True)

ConfigArg = Annotated[
    Path, typer.Argument(help="Pipeline config YAML, e.g. configs/tiny-cpu.yaml.")
]
Overrides = Annotated[list[str] | None, typer.Argument(help="Dotted overrides, e.g. sft.lr=1e-5.")]
DEFAULT_CONFIG = Path("configs/tiny-cpu.yaml")


def _load(path: Path, overrides: list[str] | None) -> PipelineConfig:
    try:
        return load_config(path, overrides or [])
    except ConfigError as e:
        err.print(f"[bold red]error:[/] {e}", markup=True, highlight=False)
        raise typer.Exit(2) from None


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
    cfg = _load(config, overrides)
    _use_prefect()
    from flows.pipeline import run_pipeline

    summary = run_pipeline(cfg, until)
    _print_summary(summary)


@app.command()
def stage(
    name: Annotated[str, typer.Argument(help=f"One of: {', '.join(STAGE_SECTIONS)}.")],
    config: ConfigArg = DEFAULT_CONFIG,
    overrides: Overrides = None,
) -> None:
    """Run one stage (and, from cache, the stages it needs)."""
    cfg = _load(config, overrides)
    _use_prefect()
    from flows.pipeline import STAGE_FLOWS

    if name not in STAGE_FLOWS:
        err.print(
            f"[bold red]error:[/] unknown stage {name!r}; available: {', '.join(STAGE_FLOWS)}"
        )
        raise typer.Exit(2)
    _print_summary(STAGE_FLOWS[name](cfg))


@app.command()
def plan(
    config: ConfigArg = DEFAULT_CONFIG,
    overrides: Overrides = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Per stage: tokens, FLOPs, device-hours, wall-clock, storage and cost of a full run."""
    from bolt.bootstrap.stage import examples_dir
    from bolt.plan import PlanError, as_rows, count_source_queries, few_shot_prompt_tokens
    from bolt.plan import plan as make_plan
    from bolt.prompts import load_examples

    cfg = _load(config, overrides)
    examples = load_examples(examples_dir(cfg))
    chars = sum(len(e.query) + len(e.assistant_text()) for e in examples)
    try:
        stages = make_plan(
            cfg,
            count_source_queries(cfg, Path.cwd()),
            few_shot_prompt_tokens(chars, len(examples), cfg.bootstrap.examples_per_prompt),
        )
    except PlanError as exc:
        err.print(f"[bold red]error:[/] {config}: {exc}")
        raise typer.Exit(2) from exc
    rows = as_rows(stages)
    if as_json:
        console.print_json(json.dumps(rows))
        return
    devices = max(1, cfg.compute.nodes * cfg.compute.gpus_per_node)
    table = Table(
        title=f"{cfg.name}: {devices} x {cfg.compute.gpu_type or cfg.compute.device}, "
        f"${cfg.compute.gpu_hour_usd}/device-hour"
    )
    for column in (
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
    ):
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
    console.print(table)


def _use_prefect() -> None:
    """Before Prefect is imported: its embedded server gets 20 s to start by default,
    which a busy 2-core machine (vLLM loading beside it) can exceed. The user's own
    setting wins."""
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    # Batch jobs on machines that often have no route out: no telemetry from that server.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def _print_summary(summary: dict[str, dict]) -> None:
    table = Table(title="stage outputs")
    for column in ("stage", "fingerprint", "records", "where"):
        table.add_column(column, no_wrap=column == "fingerprint", overflow="fold")
    for stage_name, info in summary.items():
        table.add_row(stage_name, info["fingerprint"], str(info["records"]), info["uri"])
    console.print(table)


# ---------------------------------------------------------------- config


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
    cfg = _load(config, overrides)
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


# ---------------------------------------------------------------- artifacts

RootOpt = Annotated[
    str | None, typer.Option(help="Storage root (file://... or s3://...); else the config's.")
]
ConfigOpt = Annotated[Path, typer.Option("--config", help="Config whose storage section is used.")]


def _store(root: str | None, config: Path) -> ArtifactStore:
    storage = _load(config, []).storage
    if root:
        storage = storage.model_copy(update={"root": root})
    return ArtifactStore.from_config(storage)


@artifacts_app.command("ls")
def artifacts_ls(
    stage_name: Annotated[str | None, typer.Argument(help="Only this stage.")] = None,
    root: RootOpt = None,
    config: ConfigOpt = DEFAULT_CONFIG,
) -> None:
    """List committed stage outputs."""
    store = _store(root, config)
    table = Table(title=f"artifacts in {store.backend.uri('')}")
    for column in ("stage", "fingerprint", "created", "shards", "records", "files", "upstream"):
        table.add_column(column, no_wrap=column == "fingerprint", overflow="fold")
    for m in store.list_manifests(stage_name):
        upstream = ", ".join(f"{k}:{v[:8]}" for k, v in m.upstream.items())
        table.add_row(
            m.stage,
            m.fingerprint,
            m.created_at,
            str(len(m.shards)),
            str(m.records),
            str(len(m.files)),
            upstream,
        )
    console.print(table)


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


# ---------------------------------------------------------------- models


@models_app.command("prepare")
def models_prepare(
    name: Annotated[str, typer.Argument(help="Catalog name, e.g. smollm2-135m-instruct.")],
    config: ConfigOpt = DEFAULT_CONFIG,
    force: Annotated[bool, typer.Option(help="Prepare again even if cached.")] = False,
) -> None:
    """Materialise a catalog model locally (GGUF -> safetensors, S3 -> cache), offline."""
    from bolt.models import ModelError, prepare_model

    cfg = _load(config, [])
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

    cfg = _load(config, [])
    table = Table(title="model catalog")
    for column in ("name", "source", "prepared"):
        table.add_column(column)
    for name, entry in cfg.models.catalog.items():
        source = entry.path or entry.hf_id or entry.s3_uri or f"{entry.gguf_package} (GGUF)"
        table.add_row(name, source, "yes" if is_prepared(cache_root(cfg.models) / name) else "")
    console.print(table)


def main() -> None:
    try:
        app()
    except StoreError as e:
        err.print(f"[bold red]error:[/] {e}")
        sys.exit(2)


if __name__ == "__main__":
    main()
