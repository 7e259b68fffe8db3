"""GRPO's data (RLMT): strict-mode reward text and group-relative advantages, by hand."""

from __future__ import annotations

import math

import pytest

from bolt.longcot import render_longcot
from bolt.online.grpo_data import MALFORMED, build_groups, group_advantages, reward_text
from bolt.records import Generation, Query, ScoredGeneration

EPS = 1e-4


def test_advantages_by_hand():
    # mean 2, centred (-1, 0, 1), sample std sqrt(2 / 2) = 1
    assert group_advantages([1.0, 2.0, 3.0], eps=EPS) == pytest.approx(
        [-1 / (1 + EPS), 0.0, 1 / (1 + EPS)], rel=1e-12
    )
    # mean 0.5, centred +-0.5, sample std sqrt(4 * 0.25 / 3) = 1 / sqrt(3)
    s = 1 / math.sqrt(3)
    assert group_advantages([0.0, 0.0, 1.0, 1.0], eps=0.0) == pytest.approx(
        [-0.5 / s, -0.5 / s, 0.5 / s, 0.5 / s], rel=1e-12
    )


def test_dr_grpo_centres_without_scaling():
    assert group_advantages([0.0, 0.0, 1.0, 1.0], scale_by_std=False) == [-0.5, -0.5, 0.5, 0.5]
    assert group_advantages([2.0, 4.0], scale_by_std=False) == [-1.0, 1.0]


def test_equal_rewards_and_single_samples_have_no_advantage():
    assert group_advantages([0.7, 0.7, 0.7]) == [0.0, 0.0, 0.0]
    assert group_advantages([3.0]) == [0.0]
    assert group_advantages([]) == []
    with pytest.raises(ValueError):
        group_advantages([1.0, math.nan])


WELL_FORMED = render_longcot("Plan the answer.", "Salt preserves food.")


@pytest.mark.parametrize(
    "text",
    [
        "Salt preserves food.",  # no thinking block at all
        "<thoughts>\nPlan.\n\n<response>\nSalt.\n</response>",  # thoughts never close
        "<thoughts>\n\n</thoughts>\n<response>\nSalt.\n</response>",  # empty thoughts
        WELL_FORMED + "\n<thoughts>again</thoughts>",  # repeated tag
        "<thoughts>\nPlan.\n</thoughts>\n",  # no response after the thinking
    ],
)
def test_strict_mode_blanks_a_malformed_thinking_block(text):
    assert reward_text(text, strict=True) == ("", True)
    assert reward_text(text, strict=False) == (text, False)


def test_strict_mode_keeps_well_formed_and_cut_responses():
    assert reward_text(WELL_FORMED, strict=True) == (WELL_FORMED, False)
    cut = "<thoughts>\nPlan.\n</thoughts>\n\n<response>\nSalt preserves fo"
    assert reward_text(cut, strict=True) == (cut, False)


def _scored(index: int, reward: float, malformed: bool = False) -> ScoredGeneration:
    g = Generation(
        query_id="q1",
        sample_index=index,
        prompt_tokens=5,
        raw_text=f"answer {index}",
        output_tokens=3,
        engine="test",
        model="m",
    )
    return ScoredGeneration(
        generation=g,
        rewards={"rm": reward},
        reward=reward,
        reject_reason=MALFORMED if malformed else None,
    )


def test_groups_are_in_sample_order_with_their_advantages():
    query = Query(id="q1", text="Name one use of salt.", source="demo")
    rows = build_groups(
        query,
        [_scored(2, 3.0), _scored(0, 1.0, malformed=True), _scored(1, 2.0)],
        scale_by_std=False,
        eps=EPS,
        iteration=2,
    )
    assert [r.sample_index for r in rows] == [0, 1, 2]
    assert [r.advantage for r in rows] == [-1.0, 0.0, 1.0]
    assert [r.malformed for r in rows] == [True, False, False]
    assert rows[0].prompt[0].content == "Name one use of salt." and rows[0].iteration == 2
    assert rows[2].completion == "answer 2"
