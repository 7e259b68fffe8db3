"""`bolt principles extract ROWS`: RLBFF's principle extraction (free-text feedback to
binary principles, each with its evidence span) on a catalog model, written as the
reusable artifact (one JSONL record a row, raw answer included) and as the `principles`
list of a `kind: principles` reward backend (:mod:`bolt.rewards.principle_extraction`)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
import yaml

from bolt_cli.common import DEFAULT_CONFIG, console, err, load_or_exit

principles_app = typer.Typer(help="RLBFF principles: extract them from free-text feedback.")


@principles_app.command("extract")
def extract(
    rows: Annotated[
        Path, typer.Argument(help="JSONL rows with id, context, response and feedback.")
    ],
    out: Annotated[Path, typer.Option(help="Extraction records (JSONL) to write.")],
    model: Annotated[
        str, typer.Option(help="Catalog model that writes the principles.")
    ] = "smollm2-135m-instruct",
    principles_out: Annotated[
        Path | None,
        typer.Option(help="Also write the distinct principles as a reward backend's list (YAML)."),
    ] = None,
    min_rows: Annotated[
        int, typer.Option(min=1, help="Keep a principle in that list when this many rows have it.")
    ] = 1,
    max_new_tokens: Annotated[int, typer.Option(min=16)] = 512,
    guided: Annotated[
        bool,
        typer.Option(
            help="Constrain each answer to the JSON list's shape (engine.kind vllm or a "
            "vLLM server; a small model's answers then parse)."
        ),
    ] = False,
    config: Annotated[
        Path, typer.Option("--config", help="Config whose models catalog and engine are used.")
    ] = DEFAULT_CONFIG,
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="Dotted config override, e.g. engine.kind=transformers."),
    ] = None,
) -> None:
    """One greedy answer per row from MODEL on the config's engine, parsed: a principle
    whose evidence is not in the feedback, or which the feedback holds only partly, is
    rejected with its reason (kept in the record), never guessed."""
    from bolt.engines.live import engine_for
    from bolt.resources import POOL
    from bolt.rewards.principle_extraction import (
        FeedbackFileError,
        extract_principles,
        read_feedback_rows,
        write_extractions,
    )

    cfg = load_or_exit(config, overrides)
    if model not in cfg.models.catalog:
        err.print(f"[bold red]error:[/] --model {model!r} is not in {config}'s models.catalog")
        raise typer.Exit(2)
    try:
        feedback = read_feedback_rows(rows)
    except (FeedbackFileError, OSError) as e:
        err.print(f"[bold red]error:[/] {e}", markup=True, highlight=False)
        raise typer.Exit(2) from None
    try:
        records = extract_principles(
            feedback,
            engine_for(cfg, model, cfg.engine),
            max_new_tokens=max_new_tokens,
            guided=guided,
        )
    finally:
        POOL.release()
    write_extractions(records, out)
    _report(records, out)
    if principles_out is not None:
        _write_principles(records, principles_out, min_rows, f"{model} from {rows}")


def _report(records: list, out: Path) -> None:
    """Rows kept and set aside, entries rejected: each count with its reason."""
    kept = sum(1 for r in records if r.principles)
    reasons = Counter(r.reject_reason for r in records if not r.principles)
    entries = Counter(reason for r in records for _, reason in r.rejected)
    console.print(
        f"{out}: {len(records)} rows, {kept} with principles "
        f"({sum(len(r.principles) for r in records)} in all)"
    )
    for reason, n in sorted(reasons.items()):
        console.print(f"  row set aside, {reason}: {n}")
    for reason, n in sorted(entries.items()):
        console.print(f"  entry rejected, {reason}: {n}")


def _write_principles(records: list, path: Path, min_rows: int, source: str) -> None:
    from bolt.rewards.principle_extraction import principle_list

    found = principle_list(records, min_rows=min_rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"# {len(found)} principles extracted by {source} (in at least {min_rows} "
        "row(s)); paste under a kind: principles reward.\n"
        + yaml.safe_dump({"principles": found}, sort_keys=False, allow_unicode=True),
        encoding="utf-8",
    )
    console.print(f"{path}: {len(found)} principles")
