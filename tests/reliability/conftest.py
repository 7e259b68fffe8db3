"""Counts of injected faults, recovered runs and lost records, written for RELIABILITY.md."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest
from filelock import FileLock

SUMMARY = Path(__file__).resolve().parents[2] / "bench" / "results" / "reliability.json"


class FaultLedger:
    """Per scenario: faults injected, runs that recovered, records lost."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, int]] = defaultdict(
            lambda: {"faults_injected": 0, "runs_recovered": 0, "records_lost": 0}
        )

    def record(self, scenario: str, injected: int, recovered: int, lost: int = 0) -> None:
        row = self.rows[scenario]
        row["faults_injected"] += injected
        row["runs_recovered"] += recovered
        row["records_lost"] += lost


@pytest.fixture(scope="session")
def fault_ledger():
    ledger = FaultLedger()
    yield ledger
    if ledger.rows:
        SUMMARY.parent.mkdir(parents=True, exist_ok=True)
        # Each test worker merges its own scenarios in; one at a time.
        with FileLock(SUMMARY.with_name(SUMMARY.name + ".lock")):
            previous = json.loads(SUMMARY.read_text()) if SUMMARY.exists() else {}
            previous.update(ledger.rows)
            SUMMARY.write_text(json.dumps(dict(sorted(previous.items())), indent=2) + "\n")
