"""How every sharded stage cuts its work, skips what is done and resumes (ARCHITECTURE.md §3).

A stage plans its shards (:func:`plan_shards` over its items, or :func:`per_shard`, one
shard per shard of its input), then calls :func:`run_sharded` with the ``work`` that
makes and stores one shard (``store.write_shard``: the shard, then its receipt) and a
``runner`` that decides where the pending shards run: :func:`in_process` one after
another (tests, benchmarks), or the flow's, which submits one retried Prefect task per
shard; each such task body is :func:`run_shard`, which returns the receipt when the
shard finished before. ``run_sharded`` lists the receipts once, hands only the shards
without one to the runner and returns every receipt in plan order, for the commit.

A crash therefore loses only the shards in flight, and a rerun (CLI, Prefect UI, the
retry of one shard task) redoes only those.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from bolt.store import ArtifactStore, Manifest, ShardInfo, StoreError

T = TypeVar("T")


@dataclass(frozen=True)
class ShardPlan(Generic[T]):
    """One shard to make: its index in the stage's output and the items it covers.
    ``group`` names what the items belong to where a stage mixes kinds (a benchmark)."""

    index: int
    items: list[T]
    group: str = ""


def plan_shards(
    items: Sequence[T],
    size: int | None,
    *,
    start: int = 0,
    group: str = "",
    empty_shard: bool = False,
) -> list[ShardPlan[T]]:
    """``items`` cut in order into shards of ``size`` (all in one shard when ``size`` is
    None), indexed from ``start``. No items give no shard, or one empty shard where
    ``empty_shard`` (a stage whose output always has one)."""
    if not items:
        return [ShardPlan(start, [], group)] if empty_shard else []
    step = size or len(items)
    return [
        ShardPlan(start + i, list(items[s : s + step]), group)
        for i, s in enumerate(range(0, len(items), step))
    ]


def per_shard(manifest: Manifest, group_key: str | None = None) -> list[ShardPlan[ShardInfo]]:
    """One shard per shard of ``manifest`` (same index; the item is the input shard's
    receipt): scoring and judging follow their input's shards one to one."""
    return [
        ShardPlan(s.index, [s], str(s.meta.get(group_key, "")) if group_key else "")
        for s in manifest.shards
    ]


# Makes and stores one shard, returning its receipt.
ShardWork = Callable[[ShardPlan[T]], ShardInfo]
# Runs the pending shards of one output: (fingerprint, plans, work) -> their receipts,
# in plan order. A Prefect runner submits one task per plan; the task builds the same
# work from its own arguments, so the ``work`` given here runs in-process only.
ShardRunner = Callable[[str, list[ShardPlan[T]], ShardWork[T]], list[ShardInfo]]


def in_process(fp: str, plans: list[ShardPlan[T]], work: ShardWork[T]) -> list[ShardInfo]:
    """Every pending shard here, one after another."""
    return [work(plan) for plan in plans]


def run_shard(
    store: ArtifactStore, stage: str, fp: str, plan: ShardPlan[T], work: ShardWork[T]
) -> ShardInfo:
    """One shard, resumable: its receipt if it finished before, else ``work(plan)``.
    The body of every shard task (a retry after the write costs one receipt read)."""
    if (done := store.receipt(stage, fp, plan.index)) is not None:
        return done
    return work(plan)


def run_sharded(
    store: ArtifactStore,
    stage: str,
    fp: str,
    plans: list[ShardPlan[T]],
    work: ShardWork[T],
    runner: ShardRunner[T] = in_process,
) -> list[ShardInfo]:
    """The receipts of every planned shard, in plan order: those written before (any
    earlier run's), and those of the shards ``runner`` makes now."""
    finished = store.finished_shards(stage, fp)
    pending = [plan for plan in plans if plan.index not in finished]
    if pending:
        made = runner(fp, pending, lambda plan: run_shard(store, stage, fp, plan, work))
        for plan, info in zip(pending, made, strict=True):
            if info.index != plan.index:
                raise StoreError(
                    f"{stage}/{fp}: the runner returned shard {info.index} for shard {plan.index}"
                )
            finished[plan.index] = info
    return [finished[plan.index] for plan in plans]
