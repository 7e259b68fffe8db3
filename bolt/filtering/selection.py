"""Which scored generations become SFT data (BOLT, Pang et al., 2025, §3.1, "filtering").

The paper scores the responses of the format-passing answers with an outcome reward
model, drops everything below the 30th percentile of the scores and keeps the single
best response per query. Each step here returns a :class:`Selection`: the rows kept
and every dropped row with a :class:`DropReason`, so that nothing vanishes silently.
:func:`select` composes the steps and is the one place the selection mode is chosen.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

import numpy as np

from bolt.config import SelectionMode
from bolt.longcot import parse_longcot, render_longcot
from bolt.records import Message, Reject, ScoredGeneration, SftExample, dumps_record
from bolt.stages import Stage

# numpy's default ("linear", type 7 of Hyndman & Fan 1996): the threshold is the one
# `np.percentile(scores, 30)` gives in any notebook, interpolated between the two
# nearest scores.
PERCENTILE_METHOD = "linear"

# Reject.raw holds at most this many characters of the offending row.
MAX_RAW_CHARS = 2000


class DropReason(StrEnum):
    """Why a scored generation did not make it into the SFT data."""

    FAILED_FORMAT = "failed_format"
    ALL_SAMPLES_FAILED_FORMAT = "all_samples_failed_format"
    BELOW_PERCENTILE = "below_percentile"
    NOT_BEST_FOR_QUERY = "not_best_for_query"
    NOT_IN_TOP_K = "not_in_top_k"
    NOT_BEST_PASS_RATE = "not_best_pass_rate"
    NO_VERDICT = "no_verdict"


# How the score stage marks a sample a judge gave no verdict: ``reject_reason`` is
# ``no_verdict: <backend>: <reason>``. Its reward is a placeholder, so it is set aside
# before the percentile cut as a format failure is.
NO_VERDICT_PREFIX = f"{DropReason.NO_VERDICT}: "


class Dropped(NamedTuple):
    row: ScoredGeneration
    reason: DropReason


@dataclass(frozen=True)
class Selection:
    """The rows kept by a step and the rows it dropped, each with its reason."""

    kept: list[ScoredGeneration] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)

    def then(self, step: Callable[[list[ScoredGeneration]], Selection]) -> Selection:
        """Apply ``step`` to the kept rows, accumulating the dropped ones."""
        nxt = step(self.kept)
        return Selection(kept=nxt.kept, dropped=self.dropped + nxt.dropped)

    def drop_counts(self) -> dict[str, int]:
        return dict(Counter(str(d.reason) for d in self.dropped))


def row_id(row: ScoredGeneration) -> str:
    """A stable id for one sample: its query and its sample index."""
    return f"{row.generation.query_id}:{row.generation.sample_index}"


def split_format_failures(scored: Sequence[ScoredGeneration]) -> Selection:
    """Drop the rows the format filter refused or no judge could score (``reject_reason``
    set; the latter as ``NO_VERDICT``).

    A query none of whose samples passed loses all of them with
    ``ALL_SAMPLES_FAILED_FORMAT`` instead of ``FAILED_FORMAT``, so the queries that
    produce no SFT example at all can be counted; each row keeps its own format
    reason in ``reject_reason``.
    """
    passing_queries = {r.generation.query_id for r in scored if r.reject_reason is None}
    kept, dropped = [], []
    for row in scored:
        if row.reject_reason is None:
            kept.append(row)
        elif row.reject_reason.startswith(NO_VERDICT_PREFIX):
            dropped.append(Dropped(row, DropReason.NO_VERDICT))
        elif row.generation.query_id in passing_queries:
            dropped.append(Dropped(row, DropReason.FAILED_FORMAT))
        else:
            dropped.append(Dropped(row, DropReason.ALL_SAMPLES_FAILED_FORMAT))
    return Selection(kept, dropped)


def reward_threshold(rewards: Sequence[float] | np.ndarray, percentile: float) -> float:
    """The ``percentile``-th percentile of ``rewards`` (BOLT §3.1: the 30th).

    Pass the rewards of every format-passing row of the stage at once, across all
    shards: a per-shard percentile would cut a different share of each shard.
    Non-finite rewards raise, since NaN would silently make every comparison false.
    """
    scores = np.asarray(rewards, dtype=np.float64)
    if scores.size == 0:
        raise ValueError("no rewards to take a percentile of")
    if not np.all(np.isfinite(scores)):
        raise ValueError("rewards contain NaN or infinity; fix the reward backend first")
    return float(np.percentile(scores, percentile, method=PERCENTILE_METHOD))


def drop_below(scored: Sequence[ScoredGeneration], threshold: float) -> Selection:
    """Drop rows whose reward is strictly below ``threshold``; ties on it are kept."""
    kept = [r for r in scored if r.reward >= threshold]
    dropped = [Dropped(r, DropReason.BELOW_PERCENTILE) for r in scored if r.reward < threshold]
    return Selection(kept, dropped)


def percentile_cut(scored: Sequence[ScoredGeneration], percentile: float = 30) -> Selection:
    """BOLT §3.1: drop every row below the ``percentile``-th percentile of all rewards.

    ``scored`` must be all format-passing rows of the stage (see
    :func:`reward_threshold`); format failures would distort the threshold, so they
    raise. A row whose reward equals the threshold is kept. A stage too large to hold
    in memory computes :func:`reward_threshold` over the rewards alone and applies
    :func:`drop_below` shard by shard, which gives the same result.
    """
    if any(r.reject_reason is not None for r in scored):
        raise ValueError("percentile_cut got format failures; split_format_failures first")
    if not scored:
        return Selection()
    return drop_below(scored, reward_threshold([r.reward for r in scored], percentile))


def _keep_top_per_query(
    scored: Sequence[ScoredGeneration],
    k: int,
    rank_key: Callable[[ScoredGeneration], tuple],
    reason: DropReason,
) -> Selection:
    """Keep the ``k`` rows of each query that sort first by ``rank_key``; order is kept."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    by_query: dict[str, list[ScoredGeneration]] = {}
    seen: set[str] = set()
    for row in scored:
        if row_id(row) in seen:
            # Two rows for one sample mean a shard was read twice: the ranking would be wrong.
            raise ValueError(f"duplicate sample {row_id(row)}")
        seen.add(row_id(row))
        by_query.setdefault(row.generation.query_id, []).append(row)
    winners = {row_id(r) for rows in by_query.values() for r in sorted(rows, key=rank_key)[:k]}
    kept = [r for r in scored if row_id(r) in winners]
    dropped = [Dropped(r, reason) for r in scored if row_id(r) not in winners]
    return Selection(kept, dropped)


def _by_reward(row: ScoredGeneration) -> tuple[float, int]:
    # Highest reward first; ties go to the lowest sample_index, which is deterministic
    # and independent of the order the shards were read in.
    return (-row.reward, row.generation.sample_index)


def best_per_query(scored: Sequence[ScoredGeneration]) -> Selection:
    """BOLT §3.1: keep the single highest-reward row per query (ties: lowest sample_index)."""
    return _keep_top_per_query(scored, 1, _by_reward, DropReason.NOT_BEST_FOR_QUERY)


def top_k_per_query(scored: Sequence[ScoredGeneration], k: int) -> Selection:
    """Keep the ``k`` highest-reward rows per query (a variant of BOLT §3.1's k=1)."""
    return _keep_top_per_query(scored, k, _by_reward, DropReason.NOT_IN_TOP_K)


def best_of_n_by_pass_rate(
    scored: Sequence[ScoredGeneration], pass_rates: Mapping[str, float]
) -> Selection:
    """Keep, per query, the row with the highest checklist pass rate.

    Best-of-N selection by the share of instruction-specific checklist items a
    response satisfies, as in STICK (TICK, Cook et al., 2024). ``pass_rates`` maps
    :func:`row_id` to the pass rate in [0, 1]; ties go to the higher reward, then to
    the lowest sample_index. A row without a pass rate raises ``KeyError``.
    """
    missing = [row_id(r) for r in scored if row_id(r) not in pass_rates]
    if missing:
        raise KeyError(f"no checklist pass rate for {len(missing)} rows, e.g. {missing[0]}")

    def by_pass_rate(row: ScoredGeneration) -> tuple[float, float, int]:
        return (-pass_rates[row_id(row)], *_by_reward(row))

    return _keep_top_per_query(scored, 1, by_pass_rate, DropReason.NOT_BEST_PASS_RATE)


def select(
    scored: Sequence[ScoredGeneration],
    *,
    mode: SelectionMode,
    percentile: float = 30,
    top_k: int = 1,
    pass_rates: Mapping[str, float] | None = None,
) -> Selection:
    """The filtering stage's selection (BOLT §3.1): format failures out, the
    percentile cut over all passing rows, then one of the per-query rules."""
    selection = split_format_failures(scored).then(lambda rows: percentile_cut(rows, percentile))
    match mode:
        case SelectionMode.best:
            return selection.then(best_per_query)
        case SelectionMode.top_k:
            return selection.then(lambda rows: top_k_per_query(rows, top_k))
        case SelectionMode.best_of_n_pass_rate:
            if pass_rates is None:
                raise ValueError("selection mode best_of_n_pass_rate needs pass_rates")
            return selection.then(lambda rows: best_of_n_by_pass_rate(rows, pass_rates))
    raise ValueError(f"unknown selection mode {mode!r}")


def to_sft_example(
    scored: ScoredGeneration, query_text: str, system_prompt: str | None = None
) -> SftExample:
    """The chat conversation BOLT §3.2 fine-tunes on: the query, then the LongCoT
    answer re-rendered canonically with :func:`bolt.longcot.render_longcot` (debris
    around the tags and stray whitespace are not trained on)."""
    if scored.reject_reason is not None:
        raise ValueError(f"{row_id(scored)} failed the format filter ({scored.reject_reason})")
    # The format filter already decided what it accepts; an unclosed response it let
    # through (stop string) must not fail here.
    parsed = parse_longcot(scored.generation.raw_text, allow_unclosed_response=True)
    if parsed.value is None:
        raise ValueError(f"{row_id(scored)} is not a LongCoT answer ({parsed.error})")
    messages = [Message(role="system", content=system_prompt)] if system_prompt else []
    messages += [
        Message(role="user", content=query_text),
        Message(
            role="assistant", content=render_longcot(parsed.value.thoughts, parsed.value.response)
        ),
    ]
    return SftExample(
        id=row_id(scored),
        messages=messages,
        query_id=scored.generation.query_id,
        reward=scored.reward,
    )


def to_rejects(dropped: Sequence[Dropped]) -> list[Reject]:
    """The dropped rows as :class:`bolt.records.Reject` records for the filter's reject file."""
    return [
        Reject(
            stage=Stage.filter,
            reason=str(d.reason),
            source=row_id(d.row),
            raw=dumps_record(d.row)[:MAX_RAW_CHARS],
            detail=d.row.reject_reason or f"reward={d.row.reward!r}",
        )
        for d in dropped
    ]
