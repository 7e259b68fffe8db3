"""Progress of a long step, with its rate and ETA, for a person at a terminal or a log.

    progress = Progress(len(plans), "bootstrap", unit="shards")
    for shard in run():
        progress.advance(note=f"{tok_s:.0f} tok/s")
    progress.close()

Each update is one line, ``bootstrap: 37/128 shards (29%), 1.9 shards/s, ETA 48s``.
On a terminal (the stream is a TTY) the line is redrawn in place. In a log (a file, a
pipe, a CI job, or ``emit`` such as a logger's ``info``) a line is written when the step
starts, at most once every ``every_s`` seconds while it runs (default 30, or
``$BOLT_PROGRESS_INTERVAL``), and once at the end. Pure: no Prefect, no rich; the clock
is injectable for tests.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Self, TextIO

DEFAULT_EVERY_S = 30.0
INTERVAL_ENV = "BOLT_PROGRESS_INTERVAL"
REDRAW_EVERY_S = 0.2  # a terminal line is redrawn at most this often (the end always)


def format_duration(seconds: float) -> str:
    """48s, 12m05s, 3h07m."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def format_rate(rate: float) -> str:
    return f"{rate:,.0f}" if rate >= 1000 else f"{rate:.3g}"


def _interval(every_s: float | None) -> float:
    if every_s is not None:
        return every_s
    try:
        return float(os.environ.get(INTERVAL_ENV, DEFAULT_EVERY_S))
    except ValueError:
        return DEFAULT_EVERY_S


class Progress:
    """``total`` units of work under ``label``; ``done`` of them already finished (a
    resumed step: they count towards the fraction, not the rate); ``note`` the first
    line's trailing remark."""

    def __init__(
        self,
        total: int,
        label: str,
        *,
        unit: str = "shards",
        done: int = 0,
        clock: Callable[[], float] = time.monotonic,
        stream: TextIO | None = None,
        emit: Callable[[str], object] | None = None,
        interactive: bool | None = None,
        every_s: float | None = None,
        note: str = "",
    ):
        self.total, self.label, self.unit = total, label, unit
        self.done = self._initial = done
        self.clock = clock
        self.stream = stream if stream is not None else sys.stderr
        self.emit = emit
        if interactive is None:
            interactive = emit is None and _isatty(self.stream)
        self.interactive = interactive
        self.every_s = _interval(every_s)
        self.started = self._last = clock()
        self.note = note
        self.closed = False
        self._drawn = 0  # width of the line on the terminal now
        self._show(self.line())

    @property
    def rate(self) -> float | None:
        """Units per second since the start, counting only units done in this session
        (None before a unit is done or a second has passed: too early to mean much)."""
        elapsed = self.clock() - self.started
        finished = self.done - self._initial
        return finished / elapsed if finished > 0 and elapsed >= 1 else None

    @property
    def eta_s(self) -> float | None:
        rate = self.rate
        return max(0, self.total - self.done) / rate if rate else None

    def line(self) -> str:
        """``label: 37/128 shards (29%), 1.9 shards/s, ETA 48s`` (or, at the end,
        ``label: 128/128 shards (100%) in 1m07s, 1.9 shards/s``)."""
        percent = f" ({100 * self.done // self.total}%)" if self.total else ""
        text = f"{self.label}: {self.done}/{self.total} {self.unit}{percent}"
        if self.finished:
            text += f" in {format_duration(self.clock() - self.started)}"
        rate = self.rate
        if rate is not None:
            text += f", {format_rate(rate)} {self.unit}/s"
        eta = self.eta_s
        if eta is not None and not self.finished:
            text += f", ETA {format_duration(eta)}"
        return text + (f", {self.note}" if self.note else "")

    @property
    def finished(self) -> bool:
        return self.done >= self.total

    def advance(self, n: int = 1, note: str | None = None) -> str:
        """Count ``n`` more units done; show the line if it is due; return it.

        ``note`` replaces the line's trailing remark (e.g. ``812 tok/s``)."""
        self.done += n
        if note is not None:
            self.note = note
        line = self.line()
        if self.finished:
            self.close()
            return line
        now = self.clock()
        due = REDRAW_EVERY_S if self.interactive else self.every_s
        if now - self._last >= due:
            self._last = now
            self._show(line)
        return line

    def close(self) -> str:
        """The final line, shown once (also when the step stops before its total)."""
        line = self.line()
        if not self.closed:
            self.closed = True
            self._show(line)
            if self.interactive:
                self.stream.write("\n")
                self.stream.flush()
        return line

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _show(self, line: str) -> None:
        if self.interactive:
            pad = " " * max(0, self._drawn - len(line))
            self.stream.write("\r" + line + pad)
            self.stream.flush()
            self._drawn = len(line)
        else:
            self._write(line)

    def _write(self, line: str) -> None:
        if self.emit is not None:
            self.emit(line)
        else:
            self.stream.write(line + "\n")
            self.stream.flush()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
