"""The one line a training job prints per logged step, and the callback that prints it.

Whoever launched the job (a local subprocess, a Kubernetes pod's log stream, a Slurm
output file) follows progress by reading these lines; nothing else of the training log
is an interface. One line: ``BOLT_PROGRESS {"step": 3, "max_steps": 8, ...}``.
``StepProgress`` is the launcher's side: the records as step k/N with a rate and ETA.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bolt.progress import Progress

PREFIX = "BOLT_PROGRESS "


def format_progress(record: dict[str, Any]) -> str:
    return PREFIX + json.dumps(record, sort_keys=True)


def parse_progress(line: str) -> dict[str, Any] | None:
    """The record of a progress line, or None for any other log line."""
    _, marker, payload = line.partition(PREFIX)
    if not marker:
        return None
    try:
        record = json.loads(payload)
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) and "step" in record else None


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return "-" if value is None else str(value)


class StepProgress:
    """A job's progress records as ``label: 3/8 steps (37%), 0.5 steps/s, ETA 10s, loss
    0.4213, tokens/s 812``, through ``bolt.progress.Progress`` (redrawn on a terminal; in
    a log a line at the first step, every interval and at the last). ``shown`` maps a
    name on the line to a record key (tokens/s for SFT, the reward margin for DPO);
    ``display`` is Progress's ``clock``, ``stream``, ``emit``, ``interactive``, ``every_s``.

    N is the job's planned steps (the record's ``max_steps``). The clock starts at the
    first record, so the rate and ETA measure training steps, not the job's start-up
    (loading the model, compiling kernels); the first record's steps (a resumed job's
    earlier ones too) count towards the fraction, not the rate.
    """

    def __init__(self, label: str, shown: Mapping[str, str], **display: Any):
        self.label, self.shown, self.display = label, dict(shown), display
        self.progress: Progress | None = None

    def note(self, record: Mapping[str, Any]) -> str:
        loss = record.get("loss")
        parts = [f"loss {loss:.4f}" if isinstance(loss, int | float) else f"loss {_shown(loss)}"]
        parts += [f"{name} {_shown(record.get(key))}" for name, key in self.shown.items()]
        return ", ".join(parts)

    def update(self, record: Mapping[str, Any]) -> str:
        """Count the record's step; return the line (shown when it is due)."""
        step = int(record["step"])
        note = self.note(record)
        if self.progress is None:
            total = max(int(record.get("max_steps") or 0), step)
            self.progress = Progress(
                total, self.label, unit="steps", done=step, note=note, **self.display
            )
            return self.progress.line()
        return self.progress.advance(max(0, step - self.progress.done), note=note)


@dataclass
class TokenMeter:
    """Counts the tokens the data collator hands to this rank (non-pad input tokens and
    tokens that carry loss), so throughput is measured on what was really trained."""

    input_tokens: int = 0
    trained_tokens: int = 0
    started: float = field(default_factory=time.perf_counter)

    def restart(self) -> None:
        self.input_tokens = self.trained_tokens = 0
        self.started = time.perf_counter()

    def rate(self, world_size: int) -> float:
        """Input tokens/s over all ranks (every rank sees the same share of a global batch)."""
        elapsed = time.perf_counter() - self.started
        return self.input_tokens * world_size / elapsed if elapsed > 0 else 0.0


class StepMeans:
    """Values a trainer collects per batch (DPO's reward margins, GRPO's KL) and reports
    as their means in its next log line, then forgets."""

    def __init__(self) -> None:
        self.values: dict[str, list[float]] = {}

    def add(self, name: str, values: list[float]) -> None:
        self.values.setdefault(name, []).extend(values)

    def drain_into(self, logs: dict[str, float]) -> None:
        for name, values in self.values.items():
            if values:
                logs[name] = sum(values) / len(values)
        self.values = {}


def logged_fields(*names: str) -> Callable[[Any, dict[str, float]], dict[str, Any]]:
    """A ``progress_callback`` fields function: the loss, ``names`` and the learning rate."""

    def fields(state, logs: dict[str, float]) -> dict[str, Any]:
        return {"loss": logs["loss"], **{n: logs.get(n) for n in (*names, "learning_rate")}}

    return fields


def progress_callback(
    fields: Callable[[Any, dict[str, float]], dict[str, Any]],
    on_train_begin: Callable[[], None] = lambda: None,
):
    """A transformers TrainerCallback recording the loss curve and printing progress lines
    (world rank 0 only); built lazily so importing this module needs no transformers.

    Each record is the step, the step count and ``fields(state, logs)``: what one trainer
    reports (SFT: loss and tokens/s, DPO: loss and the implicit-reward margin).
    ``on_train_begin`` runs when training (re)starts, e.g. to restart a token meter.
    """
    from transformers import TrainerCallback

    class ProgressCallback(TrainerCallback):
        def __init__(self) -> None:
            self.history: list[dict[str, Any]] = []
            self.resumed_from_step = 0

        def on_train_begin(self, args, state, control, **kwargs):
            self.resumed_from_step = state.global_step
            on_train_begin()

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_world_process_zero or not logs or "loss" not in logs:
                return
            record = {"step": state.global_step, "max_steps": state.max_steps}
            record |= fields(state, logs)
            self.history.append(record)
            print(format_progress(record), file=sys.stdout, flush=True)

    return ProgressCallback()
