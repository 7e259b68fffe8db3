"""What a training task reports while its job runs: the job's BOLT_PROGRESS lines
(bolt.train.progress) as a Prefect progress artifact, and as step k/N with the rate and
ETA (``StepProgress``): redrawn in place when stderr is a terminal, else a line in the
run's log at the first step, every ``$BOLT_PROGRESS_INTERVAL`` seconds (30) and at the
last, so a long job's log shows where it is without a line per step."""

from __future__ import annotations

import sys
from collections.abc import Mapping

from prefect import get_run_logger
from prefect.artifacts import create_progress_artifact, update_progress_artifact

from bolt.train.progress import StepProgress, parse_progress


class TrainingProgress:
    """Follows one job's log: ``label: 3/8 steps (37%), 0.5 steps/s, ETA 10s, loss
    0.4213, <name> <value>, ...``.

    ``shown`` maps a name for the line to the progress record's key, for what one
    training reports beside the loss (tokens/s for SFT, the reward margin for DPO).
    """

    def __init__(self, label: str, shown: Mapping[str, str]):
        self.artifact = create_progress_artifact(0.0, description=f"{label}: steps")
        self.logger = get_run_logger()
        emit = None if sys.stderr.isatty() else self.logger.info
        self.steps = StepProgress(label, shown, emit=emit)

    def __call__(self, line: str) -> None:
        record = parse_progress(line)
        if record is None:
            if line.startswith("launch:"):
                self.logger.info(line)
            return
        if record.get("max_steps"):
            update_progress_artifact(self.artifact, 100.0 * record["step"] / record["max_steps"])
        self.steps.update(record)
