"""How the CLI prints: the consoles, and tabular results as a table, TSV or JSON.

Every command prints through ``console`` / ``err`` from here (re-exported by
``bolt_cli.common``). On a terminal they are the terminal's width, as rich detects it.
Anywhere else (a CI log, a pipe, a file) rich would assume 80 columns and cut table
cells to "1,3…"; these consoles then have no width limit, so a table is as wide as its
widest row and nothing is re-wrapped. Table cells fold rather than ellipsise, so even a
terminal too narrow for a table shows every digit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any

import typer
from rich.console import Console, ConsoleDimensions
from rich.table import Table

from bolt.progress import Progress

# Off a terminal: wide enough for any table we print, small enough for rich to lay out.
UNBOUNDED_WIDTH = 10_000


class CliConsole(Console):
    """A rich Console that squeezes output to the terminal only when there is one.

    Off a terminal only an explicit ``width=`` limits it: $COLUMNS (which rich reads) is
    the size of a terminal, often one left behind by the shell that started a CI job.
    """

    def __init__(self, *args: Any, width: int | None = None, **kwargs: Any):
        super().__init__(*args, width=width, **kwargs)
        self._asked_width = width

    @property
    def size(self) -> ConsoleDimensions:
        dims = super().size
        if self._asked_width is None and not self.is_terminal:
            return ConsoleDimensions(UNBOUNDED_WIDTH, dims.height)
        return dims

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        self._width, self._height = new_size
        self._asked_width = new_size[0]

    @property
    def width(self) -> int:
        return self.size.width

    @width.setter
    def width(self, width: int) -> None:
        self._width = self._asked_width = width


console = CliConsole()
err = CliConsole(stderr=True)


class Format(str, Enum):
    table = "table"
    tsv = "tsv"
    json = "json"


FORMAT_HELP = (
    "table: aligned, for people; never cut (off a terminal it is as wide as its widest row). "
    "tsv: a header line of field names, then one tab-separated line per row with raw "
    "numbers (no thousands separators), for awk, cut, sort or `column -t -s $'\\t'`. "
    "json: a list of objects with the same fields. The default is table on a terminal "
    "and off it, so a CI log reads like the terminal; scripts ask for tsv."
)
FormatOpt = Annotated[
    Format,
    typer.Option("--format", "-f", envvar="BOLT_FORMAT", case_sensitive=False, help=FORMAT_HELP),
]


@dataclass(frozen=True)
class Field:
    """One column: ``key`` in the rows (the TSV header and JSON key), ``header`` in the
    table, ``cell`` how the table shows a value; ``numeric`` columns are right-aligned."""

    key: str
    header: str | None = None
    cell: Callable[[Any], str] = str
    numeric: bool = False


def print_rows(
    rows: Sequence[Mapping[str, Any]],
    fields: Sequence[Field],
    fmt: Format = Format.table,
    title: str | None = None,
    out: Console | None = None,
) -> None:
    """``rows`` (dicts keyed by each field's ``key``) in ``fmt`` on ``out`` (stdout)."""
    out = out or console
    if fmt is Format.json:
        out.print_json(data=[{f.key: row.get(f.key) for f in fields} for row in rows])
    elif fmt is Format.tsv:
        out.file.write(tsv(rows, [f.key for f in fields]))
        out.file.flush()
    else:
        out.print(table(rows, fields, title))


def table(rows: Sequence[Mapping[str, Any]], fields: Sequence[Field], title: str | None) -> Table:
    view = Table(title=title)
    for f in fields:
        view.add_column(
            f.header or f.key, justify="right" if f.numeric else "left", overflow="fold"
        )
    for row in rows:
        view.add_row(*(f.cell(row.get(f.key)) for f in fields))
    return view


def tsv(rows: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> str:
    lines = ["\t".join(keys), *("\t".join(tsv_value(row.get(k)) for k in keys) for row in rows)]
    return "".join(line + "\n" for line in lines)


def tsv_value(value: Any) -> str:
    """One TSV cell: numbers raw (12 significant digits for floats), lists joined by "; ", mappings as "k:v,k:v", no
    tabs or line breaks inside."""
    if value is None:
        text = ""
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = format(value, ".12g")  # all the digits that mean something, no float noise
    elif isinstance(value, Mapping):
        text = ",".join(f"{k}:{v}" for k, v in value.items())
    elif isinstance(value, list | tuple):
        text = "; ".join(map(str, value))
    else:
        text = str(value)
    return " ".join(text.replace("\t", " ").splitlines())


@contextmanager
def long_step(label: str, unit: str = "steps") -> Iterator[None]:
    """One long call with nothing to count: a spinner on stderr when it is a terminal;
    in a log, a line when it starts and one when it ends, with the time it took."""
    if err.is_terminal:
        with err.status(f"{label}..."):
            yield
        return
    progress = Progress(1, label, unit=unit, stream=err.file, interactive=False)
    try:
        yield
    except BaseException:
        progress.note = "failed"
        progress.close()
        raise
    progress.advance()
