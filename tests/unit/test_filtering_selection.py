"""Selection (BOLT §3.1): percentile cut over the stage, best per query, drop reasons."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bolt.config import SelectionMode
from bolt.filtering.selection import (
    best_of_n_by_pass_rate,
    best_per_query,
    drop_below,
    percentile_cut,
    reward_threshold,
    row_id,
    select,
    split_format_failures,
    to_rejects,
    to_sft_example,
    top_k_per_query,
)
from bolt.longcot import render_longcot
from bolt.records import Generation, ScoredGeneration


def row(
    query_id: str, sample_index: int, reward: float, reject_reason: str | None = None
) -> ScoredGeneration:
    text = render_longcot(f"thinking about {query_id}", f"answer {sample_index}")
    generation = Generation(
        query_id=query_id,
        sample_index=sample_index,
        prompt_tokens=10,
        raw_text=text,
        finish_reason="stop",
        output_tokens=20,
        engine="test",
        model="teacher",
    )
    return ScoredGeneration(
        generation=generation, rewards={"rm": reward}, reward=reward, reject_reason=reject_reason
    )


def ids(rows) -> list[str]:
    return [row_id(r) for r in rows]


def reasons(selection) -> dict[str, str]:
    return {row_id(d.row): str(d.reason) for d in selection.dropped}


# The hand-computed example. Format-passing rewards, sorted: [0, 1, 2, 2, 2, 3, 4, 5, 6, 7].
# 30th percentile, linear: position 0.3 * (10 - 1) = 2.7, between sorted[2] = 2 and
# sorted[3] = 2, so the threshold is exactly 2.0 and the three rows at 2 sit on it.
STAGE = [
    row("qA", 1, 2.0),  # on the threshold, tied for best with qA:0 -> not best (higher index)
    row("qA", 0, 2.0),  # on the threshold, tied for best -> kept (lowest sample_index)
    row("qB", 0, 1.0),  # below
    row("qB", 1, 7.0),  # best of qB
    row("qB", 2, 6.0),
    row("qB", 3, -50.0, reject_reason="truncated_at_token_limit"),  # qB has passing samples
    row("qC", 0, 2.0),  # on the threshold: survives the cut, then loses to qC:1
    row("qC", 1, 5.0),  # best of qC
    row("qC", 2, 3.0),
    row("qC", 3, 4.0),
    # Every sample of qD failed; extreme rewards prove failures do not move the threshold.
    row("qD", 0, 100.0, reject_reason="missing_response_tag"),
    row("qD", 1, -100.0, reject_reason="degenerate_repetition"),
    row("qF", 0, 0.0),  # qF's only passing sample is below the cut: the query yields nothing
]


def test_threshold_of_the_hand_example():
    passing = [r.reward for r in STAGE if r.reject_reason is None]
    assert reward_threshold(passing, 30) == 2.0


def test_select_best_matches_the_hand_computed_example():
    result = select(STAGE, mode=SelectionMode.best, percentile=30)
    assert ids(result.kept) == ["qA:0", "qB:1", "qC:1"]
    assert reasons(result) == {
        "qA:1": "not_best_for_query",
        "qB:0": "below_percentile",
        "qB:2": "not_best_for_query",
        "qB:3": "failed_format",
        "qC:0": "not_best_for_query",
        "qC:2": "not_best_for_query",
        "qC:3": "not_best_for_query",
        "qD:0": "all_samples_failed_format",
        "qD:1": "all_samples_failed_format",
        "qF:0": "below_percentile",
    }
    assert len(result.kept) + len(result.dropped) == len(STAGE)  # nothing vanishes
    assert result.drop_counts() == {
        "not_best_for_query": 5,
        "below_percentile": 2,
        "failed_format": 1,
        "all_samples_failed_format": 2,
    }


def test_linear_interpolation_between_scores():
    # position 0.3 * 3 = 0.9: 1 + 0.9 * (2 - 1) = 1.9
    assert reward_threshold([4.0, 1.0, 3.0, 2.0], 30) == pytest.approx(1.9)
    assert reward_threshold([4.0, 1.0, 3.0, 2.0], 30) == pytest.approx(
        float(np.percentile([1, 2, 3, 4], 30))
    )


def test_ties_exactly_on_the_threshold_are_kept():
    rows = [row("q", 0, 1.0), row("q", 1, 2.0), row("q", 2, 2.0), row("q", 3, 3.0)]
    result = percentile_cut(rows, 50)  # position 1.5 between 2 and 2 -> 2.0
    assert ids(result.kept) == ["q:1", "q:2", "q:3"]
    assert reasons(result) == {"q:0": "below_percentile"}


def test_percentile_zero_keeps_everything():
    rows = [row("q", i, float(i)) for i in range(5)]
    assert ids(percentile_cut(rows, 0).kept) == ids(rows)


def test_drop_below_applies_a_stage_wide_threshold_shard_by_shard():
    shard_1, shard_2 = STAGE[:5], STAGE[6:10] + STAGE[12:]
    threshold = reward_threshold([r.reward for r in shard_1 + shard_2], 30)
    by_shard = drop_below(shard_1, threshold).kept + drop_below(shard_2, threshold).kept
    assert ids(by_shard) == ids(percentile_cut(shard_1 + shard_2, 30).kept)


def test_percentile_cut_refuses_format_failures():
    with pytest.raises(ValueError, match="split_format_failures"):
        percentile_cut([row("q", 0, 1.0), row("q", 1, 2.0, reject_reason="empty_response")])


def test_non_finite_rewards_raise():
    with pytest.raises(ValueError, match="NaN"):
        percentile_cut([row("q", 0, 1.0), row("q", 1, math.nan)])


def test_empty_stage_selects_nothing():
    result = select([], mode=SelectionMode.best)
    assert result.kept == [] and result.dropped == []


def test_split_format_failures_names_queries_with_no_passing_sample():
    result = split_format_failures(STAGE)
    assert reasons(result) == {
        "qB:3": "failed_format",
        "qD:0": "all_samples_failed_format",
        "qD:1": "all_samples_failed_format",
    }


def test_best_per_query_breaks_ties_by_lowest_sample_index_whatever_the_order():
    rows = [row("q", 2, 5.0), row("q", 1, 5.0), row("q", 0, 4.0)]
    assert ids(best_per_query(rows).kept) == ["q:1"]
    assert ids(best_per_query(list(reversed(rows))).kept) == ["q:1"]


def test_duplicate_samples_raise():
    with pytest.raises(ValueError, match="duplicate sample q:0"):
        best_per_query([row("q", 0, 1.0), row("q", 0, 2.0)])


def test_top_k_per_query_keeps_input_order_and_names_the_rest():
    rows = [
        row("q", 0, 1.0),
        row("q", 1, 3.0),
        row("q", 2, 3.0),
        row("q", 3, 2.0),
        row("p", 0, 0.0),
    ]
    result = top_k_per_query(rows, 2)
    assert ids(result.kept) == ["q:1", "q:2", "p:0"]
    assert reasons(result) == {"q:0": "not_in_top_k", "q:3": "not_in_top_k"}
    with pytest.raises(ValueError):
        top_k_per_query(rows, 0)


def test_best_of_n_by_pass_rate_with_ties():
    rows = [row("q", 0, 1.0), row("q", 1, 3.0), row("q", 2, 3.0), row("q", 3, 9.0)]
    rates = {"q:0": 0.8, "q:1": 0.8, "q:2": 0.8, "q:3": 0.5}
    # Pass rate first (q:3 loses despite its reward), then reward, then sample_index.
    result = best_of_n_by_pass_rate(rows, rates)
    assert ids(result.kept) == ["q:1"]
    assert set(reasons(result).values()) == {"not_best_pass_rate"}
    with pytest.raises(KeyError, match="q:3"):
        best_of_n_by_pass_rate(rows, {"q:0": 1.0, "q:1": 1.0, "q:2": 1.0})


def test_select_dispatches_each_mode():
    top2 = select(STAGE, mode=SelectionMode.top_k, top_k=2)
    assert ids(top2.kept) == ["qA:1", "qA:0", "qB:1", "qB:2", "qC:1", "qC:3"]
    rates = {row_id(r): 0.5 for r in STAGE}
    rates["qC:2"] = 1.0
    by_rate = select(STAGE, mode=SelectionMode.best_of_n_pass_rate, pass_rates=rates)
    assert ids(by_rate.kept) == ["qA:0", "qB:1", "qC:2"]
    with pytest.raises(ValueError, match="pass_rates"):
        select(STAGE, mode=SelectionMode.best_of_n_pass_rate)


def test_to_sft_example_renders_the_longcot_assistant_turn():
    scored = row("qA", 0, 2.0)
    raw = (
        "debris " + scored.generation.raw_text.replace("<response>\n", "<response>   ") + " <|eot|>"
    )
    scored = scored.model_copy(
        update={"generation": scored.generation.model_copy(update={"raw_text": raw})}
    )
    example = to_sft_example(scored, "What is qA?", system_prompt="Be careful.")
    assert [m.role for m in example.messages] == ["system", "user", "assistant"]
    assert example.messages[1].content == "What is qA?"
    assert example.messages[2].content == render_longcot("thinking about qA", "answer 0")
    assert (example.id, example.query_id, example.reward) == ("qA:0", "qA", 2.0)
    assert [m.role for m in to_sft_example(scored, "What is qA?").messages] == ["user", "assistant"]


def test_to_sft_example_refuses_a_format_failure():
    with pytest.raises(ValueError, match="format filter"):
        to_sft_example(row("q", 0, 1.0, reject_reason="empty_response"), "q?")


def test_to_rejects_keeps_reason_source_and_detail():
    rejects = to_rejects(select(STAGE, mode=SelectionMode.best).dropped)
    by_source = {r.source: r for r in rejects}
    assert by_source["qD:0"].reason == "all_samples_failed_format"
    assert by_source["qD:0"].detail == "missing_response_tag"
    assert by_source["qB:0"].detail == "reward=1.0"
    assert all(r.stage == "filter" and r.raw and len(r.raw) <= 2000 for r in rejects)
