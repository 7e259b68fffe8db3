"""WildBench metrics on hand-built items; every expected number is computed by hand in
the comments (scores are on the leaderboard scale: (S - 5) * 2 * 10)."""

from pathlib import Path

import pytest

from bolt.evals import Benchmark
from bolt.evals import wildbench as wb
from bolt.evals import wildbench_results as official
from bolt.evals.data import load_items
from bolt.evals.wildbench import Outcome, PairwiseChoice, TaskGroup

FIXTURES = Path(__file__).parents[1] / "fixtures" / "evals"


@pytest.fixture(scope="module")
def items():
    return load_items(Benchmark.wildbench, str(FIXTURES / "wildbench_items.handmade.jsonl"))


def test_items_load_with_unknown_keys_and_map_to_groups(items):
    assert [i.session_id for i in items] == ["s1", "s2", "s3", "s4", "s5"]
    assert items[0].model_extra == {"avg_score": 7.5}
    assert wb.task_groups(items[0]) == {TaskGroup.coding_debugging, TaskGroup.planning_reasoning}
    assert wb.task_groups(items[1]) == {TaskGroup.creative}  # three creative tags, one group
    assert wb.task_groups(items[4]) == {TaskGroup.planning_reasoning, TaskGroup.information_advice}


def test_official_weights():
    assert wb.TASK_GROUP_WEIGHTS == {
        TaskGroup.creative: 0.5,
        TaskGroup.planning_reasoning: 1.25,
        TaskGroup.math_data_analysis: 1.0,
        TaskGroup.information_advice: 0.75,
        TaskGroup.coding_debugging: 1.25,
    }
    assert set(wb.TAG_TO_GROUP.values()) == set(TaskGroup)


def test_task_macro_weights_all_groups_and_a_subset():
    every = {g: 10.0 for g in TaskGroup}
    assert wb.task_macro(every) == pytest.approx(10.0)
    by_group = {
        TaskGroup.creative: 20.0,
        TaskGroup.planning_reasoning: 70.0,
        TaskGroup.math_data_analysis: -40.0,
        TaskGroup.information_advice: 80.0,
        TaskGroup.coding_debugging: 60.0,
    }
    # (0.5*20 + 1.25*70 + 1*(-40) + 0.75*80 + 1.25*60) / (0.5+1.25+1+0.75+1.25) = 192.5 / 4.75
    assert wb.task_macro(by_group) == pytest.approx(192.5 / 4.75)
    # only the groups present are weighted: (0.5*10 + 1.25*30) / 1.75
    assert wb.task_macro(
        {TaskGroup.creative: 10.0, TaskGroup.coding_debugging: 30.0}
    ) == pytest.approx(42.5 / 1.75)
    assert wb.task_macro({}) is None


def test_rescale():
    assert wb.rescale_score(5) == 0
    assert wb.rescale_score(10) == 10
    assert wb.rescale_score(1) == -8


@pytest.mark.parametrize(
    ("tested", "reference", "k", "expected"),
    [
        (600, 100, 500, Outcome.win),  # exactly K longer: still a win
        (601, 100, 500, Outcome.tie),  # K + 1 longer: a tie
        (5000, 100, -1, Outcome.win),  # -1 disables the rule
        (100, 900, 500, Outcome.win),  # the winner is shorter: untouched
        (300, 300, 0, Outcome.win),  # K = 0, equal lengths: not longer
        (301, 300, 0, Outcome.tie),
    ],
)
def test_length_rule_on_a_slight_win(tested, reference, k, expected):
    assert wb.apply_length_rule(Outcome.win, tested, reference, k) is expected


def test_length_rule_on_losses_and_strong_verdicts():
    # the reference won, and is longer by K + 1
    assert wb.apply_length_rule(Outcome.lose, 100, 601, 500) is Outcome.tie
    assert wb.apply_length_rule(Outcome.lose, 100, 600, 500) is Outcome.lose
    assert wb.apply_length_rule(Outcome.lose, 900, 100, 500) is Outcome.lose  # winner shorter
    assert wb.apply_length_rule(Outcome.win_much, 5000, 1, 500) is Outcome.win_much
    assert wb.apply_length_rule(Outcome.lose_much, 1, 5000, 500) is Outcome.lose_much
    assert wb.apply_length_rule(Outcome.tie, 5000, 1, 500) is Outcome.tie


def test_choice_outcome_follows_the_side_of_the_tested_model():
    assert wb.choice_outcome(PairwiseChoice.a_better, tested_is_a=True) is Outcome.win
    assert wb.choice_outcome(PairwiseChoice.a_better, tested_is_a=False) is Outcome.lose
    assert wb.choice_outcome(PairwiseChoice.b_much_better, tested_is_a=False) is Outcome.win_much
    assert wb.choice_outcome(PairwiseChoice.tie, tested_is_a=False) is Outcome.tie


def test_parse_score_judgement():
    assert (
        wb.parse_score_judgement(
            '```json\n{"strengths": "a {b}", "weaknesses": "c", "score": "7"}\n```'
        )
        == 7
    )
    assert wb.parse_score_judgement('{"strengths": "a", "score": 8.5}') == 8.5
    assert wb.parse_score_judgement('{"score": "[6]"}') == 6
    # broken JSON (trailing comma, as the template itself shows): the field is still read
    assert wb.parse_score_judgement('{"strengths": "a",\n "score": "9",\n}') == 9
    assert wb.parse_score_judgement('{"score": "11"}') is None
    assert wb.parse_score_judgement('{"score": "7/10"}') == 7
    assert wb.parse_score_judgement('{"score": "[1~10]"}') is None  # the placeholder, echoed
    assert wb.parse_score_judgement("The response is good.") is None


def test_parse_pairwise_choice():
    text = '{"analysis of A": "x", "reason of A>B": "y", "choice": "A+",\n}'
    assert wb.parse_pairwise_choice(text) is PairwiseChoice.a_better
    assert (
        wb.parse_pairwise_choice('```json\n{"choice": "B++"}\n```') is PairwiseChoice.b_much_better
    )
    assert wb.parse_pairwise_choice('{"choice": "[A=B]"}') is PairwiseChoice.tie
    assert wb.parse_pairwise_choice('{"choice": "A+++"}') is None
    assert wb.parse_pairwise_choice("A is better.") is None


def test_official_score_file_gives_the_leaderboard_numbers(items):
    results = official.load_official_results(
        FIXTURES / "wildbench_score_results.handmade.json", official.OfficialScoreResult
    )
    report = official.official_score_report(results, items)
    # scores 8, 6, 3, 7, 9 -> 60, 20, -40, 40, 80; all five enter the overall mean
    assert report.score == pytest.approx(160 / 5)
    # s4's output is truncated: it enters no group
    assert report.by_group == pytest.approx(
        {
            TaskGroup.coding_debugging: 60.0,
            TaskGroup.planning_reasoning: 70.0,  # s1, s5
            TaskGroup.creative: 20.0,
            TaskGroup.math_data_analysis: -40.0,
            TaskGroup.information_advice: 80.0,  # s5 only
        }
    )
    assert report.task_macro == pytest.approx(192.5 / 4.75)
    assert (report.n_scored, report.n_unparsable) == (5, 0)


@pytest.mark.parametrize(
    ("k", "reward", "by_group", "macro"),
    [
        # s1 slight win by 600 chars > K -> tie; s2 -100; s3 0; s4 skipped (0, no group); s5 -50
        (
            500,
            -150 / 5,
            {
                "Coding & Debugging": 0.0,
                "Planning & Reasoning": -25.0,
                "Creative Tasks": -100.0,
                "Math & Data Analysis": 0.0,
                "Information/Advice seeking": -50.0,
            },
            -118.75 / 4.75,
        ),
        # without the rule s1 is a +50 win
        (
            -1,
            -100 / 5,
            {
                "Coding & Debugging": 50.0,
                "Planning & Reasoning": 0.0,
                "Creative Tasks": -100.0,
                "Math & Data Analysis": 0.0,
                "Information/Advice seeking": -50.0,
            },
            -25 / 4.75,
        ),
    ],
)
def test_official_pairwise_file_gives_the_leaderboard_reward(items, k, reward, by_group, macro):
    results = official.load_official_results(
        FIXTURES / "wildbench_pairwise_results.handmade.json", official.OfficialPairwiseResult
    )
    report = official.official_reward_report(results, items, reference_model="ref-model", k=k)
    assert report.reward == pytest.approx(reward)
    assert {g.value: v for g, v in report.by_group.items()} == pytest.approx(by_group)
    assert report.task_macro == pytest.approx(macro)
    assert report.k == k


def test_our_score_records_count_unparsable_judgements(items):
    by_id = {i.session_id: i for i in items}
    results = [
        wb.score_result(
            by_id["s1"], "m", "<thoughts>t</thoughts><response>fixed</response>", '{"score": "8"}'
        ),
        wb.score_result(by_id["s2"], "m", "poem", '{"score": "6"}'),
        wb.score_result(by_id["s3"], "m", "2", "I cannot decide."),
    ]
    assert results[0].judged_text == "fixed"
    assert results[2].parse_error == wb.UNPARSABLE_SCORE
    report = wb.summarize_scores(results, items)
    assert (report.n_scored, report.n_unparsable) == (2, 1)
    assert report.score == pytest.approx((60 + 20) / 2)  # the unparsable one is not a zero
    assert report.by_group == pytest.approx(
        {
            TaskGroup.coding_debugging: 60.0,
            TaskGroup.planning_reasoning: 60.0,
            TaskGroup.creative: 20.0,
        }
    )


def test_our_pairwise_records_apply_k_at_summary_time(items):
    by_id = {i.session_id: i for i in items}
    # the tested answer is shown as B and judged slightly better (B+); it is 600 chars longer
    long_win = wb.pairwise_result(
        by_id["s3"], "m", "x" * 700, "ref", "r" * 100, False, '{"choice": "B+"}'
    )
    unparsable = wb.pairwise_result(by_id["s4"], "m", "y", "ref", "r", True, "no json here")
    assert long_win.verdict == "B+" and unparsable.parse_error == wb.UNPARSABLE_CHOICE
    strict = wb.summarize_rewards([long_win, unparsable], items, k=500)
    assert strict.reward == pytest.approx(0.0)
    assert strict.counts[Outcome.tie] == 1 and strict.n_unparsable == 1
    loose = wb.summarize_rewards([long_win, unparsable], items, k=-1)
    assert loose.reward == pytest.approx(50.0)
    assert loose.by_group == {TaskGroup.math_data_analysis: 50.0}
