"""The rehearsal's closing table: per config section, its wall time beside the plan's.

Pure functions: ``bolt plan``'s rows for the real config and the pipeline's summary
rows (``section`` and ``seconds`` per output) in, one row per section out.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from bolt.config import STAGE_SECTIONS
from bolt.plan import StagePlan


def section_of(plan_stage: str) -> str:
    """The config section of a plan row (``online.2.dpo`` -> ``online``)."""
    return plan_stage.split(".", 1)[0].split(" ", 1)[0]


def time_rows(
    plan_rows: Sequence[StagePlan],
    summary: Mapping[str, Mapping[str, Any]],
    cached: Collection[str] = (),
) -> list[dict[str, Any]]:
    """Per section the run reached: the rehearsal's seconds (``cached``: the sections
    whose output an earlier run made, so their seconds are a cache check's), and the real
    run's projected wall-clock and device hours and cost (``bolt plan``)."""
    seconds: dict[str, float] = {}
    for row in summary.values():
        seconds[row["section"]] = seconds.get(row["section"], 0.0) + float(row["seconds"])
    projected: dict[str, StagePlan] = {}
    for stage in plan_rows:
        total = projected.setdefault(section_of(stage.stage), StagePlan(stage.stage, 0.0))
        total.wall_hours += stage.wall_hours
        total.device_hours += stage.device_hours
        total.cost_usd += stage.cost_usd
    rows = []
    for section in STAGE_SECTIONS:
        if section not in seconds:
            continue
        plan = projected.get(section)
        rows.append(
            {
                "stage": section,
                "rehearsal_seconds": seconds[section],
                "ran": "cached" if section in cached else "ran",
                "plan_wall_hours": plan.wall_hours if plan else None,
                "plan_device_hours": plan.device_hours if plan else None,
                "plan_cost_usd": plan.cost_usd if plan else None,
            }
        )
    return rows
