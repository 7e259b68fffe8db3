"""What a training task reports while its job runs: the job's BOLT_PROGRESS lines
(bolt.train.progress) as a Prefect progress artifact and one log line per step."""

from __future__ import annotations

from collections.abc import Mapping

from prefect import get_run_logger
from prefect.artifacts import create_progress_artifact, update_progress_artifact

from bolt.train.progress import parse_progress


class TrainingProgress:
    """Follows one job's log: ``label step 3/8: loss 0.4213, <name> <value>, ...``.

    ``shown`` maps a name for the log line to the progress record's key, for what one
    training reports beside the loss (tokens/s for SFT, the reward margin for DPO).
    """

    def __init__(self, label: str, shown: Mapping[str, str]):
        self.label, self.shown = label, dict(shown)
        self.artifact = create_progress_artifact(0.0, description=f"{label}: steps")
        self.logger = get_run_logger()

    def __call__(self, line: str) -> None:
        record = parse_progress(line)
        if record is None:
            if line.startswith("launch:"):
                self.logger.info(line)
            return
        if record.get("max_steps"):
            update_progress_artifact(self.artifact, 100.0 * record["step"] / record["max_steps"])
        extra = "".join(f", {name} {record.get(key)}" for name, key in self.shown.items())
        self.logger.info(
            "%s step %s/%s: loss %.4f%s",
            self.label,
            record["step"],
            record.get("max_steps"),
            record.get("loss", float("nan")),
            extra,
        )
