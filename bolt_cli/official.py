"""`bolt eval import-official FOLDER`: the leaderboard figures of the official result
files a user downloaded (FastChat MT-Bench judgments, Arena-Hard judgments and answers,
WildBench score/pairwise results, ZeroEval ZebraLogic results), computed by the
project's own importers (:mod:`bolt.evals.official`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bolt.evals import Benchmark
from bolt.evals.data import load_items
from bolt.evals.official import DEFAULT_ARENA_BASELINE, import_folder
from bolt.evals.wildbench import DEFAULT_LENGTH_MARGIN
from bolt_cli.common import err
from bolt_cli.output import Field, Format, FormatOpt, print_rows

eval_app = typer.Typer(help="Evaluation files: official results and their figures.")

FIELDS = (
    Field("benchmark"),
    Field("model"),
    Field("metric"),
    Field("value", cell=lambda v: "–" if v is None else f"{v:.2f}", numeric=True),
    Field("published", cell=lambda v: "" if v is None else f"{v:.2f}", numeric=True),
    Field("note"),
    Field("source"),
)


@eval_app.command("import-official")
def import_official(
    folder: Annotated[Path, typer.Argument(help="Folder of downloaded official result files.")],
    wildbench_items: Annotated[
        str | None,
        typer.Option(help="WildBench v2 items (path or hf:// id): task groups of the macros."),
    ] = None,
    zebralogic_puzzles: Annotated[
        str | None, typer.Option(help="ZebraLogic grid puzzles with solutions (path or hf:// id).")
    ] = None,
    k: Annotated[int, typer.Option(help="WB-Reward length rule K (-1: off).")] = (
        DEFAULT_LENGTH_MARGIN
    ),
    arena_baseline: Annotated[
        str, typer.Option(help="Arena-Hard baseline model.")
    ] = DEFAULT_ARENA_BASELINE,
    fmt: FormatOpt = Format.table,
) -> None:
    """Every figure the official files under FOLDER give, one row per (model, metric);
    "published" is the leaderboard's own figure where FOLDER holds its table
    (WildBench's all_stat_wildbench.<K>.json)."""
    if not folder.is_dir():
        err.print(f"[bold red]error:[/] {folder}: not a folder")
        raise typer.Exit(2)
    items = load_items(Benchmark.wildbench, wildbench_items) if wildbench_items else []
    puzzles = load_items(Benchmark.zebralogic, zebralogic_puzzles) if zebralogic_puzzles else []
    figures, skipped = import_folder(folder, items, puzzles, k, arena_baseline)
    rows = [
        {
            "benchmark": f.benchmark.value,
            "model": f.model,
            "metric": f.metric,
            "value": f.value,
            "published": f.published,
            "note": f.note,
            "source": f.source,
        }
        for f in figures
    ]
    print_rows(rows, FIELDS, fmt, title=f"official figures under {folder}")
    for path, why in skipped:
        err.print(f"skipped {path}: {why}")
    if not figures:
        raise typer.Exit(1)
