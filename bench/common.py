"""What every bench script shares: where results go and the BENCHMARKS.md line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
HEADER = (
    "# Benchmarks\n\nLatest result of each `bench/` script; full figures in "
    "`bench/results/<name>.json`.\n\n| benchmark | date | result | command |\n|---|---|---|---|"
)


def write_result(name: str, result: dict[str, Any], summary: str, command: str) -> None:
    """Write bench/results/<name>.json and replace <name>'s line in BENCHMARKS.md."""
    (REPO / "bench/results").mkdir(parents=True, exist_ok=True)
    (REPO / f"bench/results/{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    path = REPO / "BENCHMARKS.md"
    lines = path.read_text().splitlines() if path.exists() else HEADER.splitlines()
    line = f"| {name} | {str(result.get('date', ''))[:10]} | {summary} | `{command}` |"
    lines = [existing for existing in lines if not existing.startswith(f"| {name} |")] + [line]
    path.write_text("\n".join(lines) + "\n")
