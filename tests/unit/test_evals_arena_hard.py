"""Arena-Hard verdicts, order swap, win rate, bootstrap and style control, by hand."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from bolt.evals import arena_hard as ah
from bolt.evals import arena_hard_files as ahf
from bolt.evals import style_control as sc
from bolt.evals.arena_hard_files import Battle, Side, Verdict
from bolt.evals.style_control import StyleFeatures

FIXTURES = Path(__file__).parents[1] / "fixtures" / "evals"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("My final verdict is: [[A>>B]]", Verdict.a_much_better),
        ("Tie, relatively the same: [[A=B]]", Verdict.tie),
        ("[[B<A]]", Verdict.a_better),  # the other spelling of A>B
        ("[[A<<B]]", Verdict.b_much_better),
        ("First [[A>B]], and to confirm [[B<A]]", Verdict.a_better),  # same verdict twice
        ("First [[A>B]], then on reflection [[B>A]]", None),  # contradictory
        ("Assistant A is better.", None),
        ("[[C]]", None),
        ("[[A>>>B]]", None),
    ],
)
def test_parse_verdict(text, expected):
    assert ah.parse_verdict(text) == expected


def test_order_swap_maps_back_to_the_model():
    # game 1: baseline is A, model is B; game 2: model is A
    assert ah.MODEL_SIDE_BY_GAME == {1: Side.b, 2: Side.a}
    assert ah.battle("m", "q", Verdict.b_better, Side.b) == Battle("m", "q", 1.0, 1)
    assert ah.battle("m", "q", Verdict.a_much_better, Side.b) == Battle("m", "q", 0.0, 3)
    assert ah.battle("m", "q", Verdict.a_better, Side.a) == Battle("m", "q", 1.0, 1)
    assert ah.battle("m", "q", Verdict.b_much_better, Side.a) == Battle("m", "q", 0.0, 3)
    assert ah.battle("m", "q", Verdict.tie, Side.a).score == 0.5


def test_win_rate_weighs_strong_verdicts_three_times():
    rows = [
        json.loads(line)
        for line in (FIXTURES / "arena_hard_judgments.2024-layout.handmade.jsonl")
        .read_text()
        .splitlines()
    ]
    battles = [b for row in rows for b in ahf.battles_from_official_judgment(row)]
    # q1 game 1 B>>A: model (B) wins strongly -> three wins; q1 game 2 A=B -> a tie;
    # q2 game 1 A>B: the baseline (A) wins -> a loss; q2 game 2 has no verdict -> dropped
    assert [(b.question_id, b.score, b.weight) for b in battles] == [
        ("q1", 1.0, 3),
        ("q1", 0.5, 1),
        ("q2", 0.0, 1),
    ]
    rate, low, high = ah.win_rate(battles, rounds=200, seed=1)
    assert rate == pytest.approx(100 * 3.5 / 5)
    assert low <= rate <= high
    assert ah.win_rate(battles, rounds=200, seed=1) == (rate, low, high)  # seeded


def test_bootstrap_of_a_sure_thing_has_no_width():
    battles = [Battle("m", f"q{i}", 1.0, 1) for i in range(10)]
    assert ah.win_rate(battles) == (100.0, 100.0, 100.0)


def test_markdown_style_skips_code_blocks():
    text = (
        "# Title\n## Part\n- one\n* two\n1. three\n**bold** and __also__ and **a\nb**\n"
        "```python\n# a comment, not a header\n- not a list\n**not bold**\n```\n"
    )
    assert sc.markdown_style(text, length=42) == StyleFeatures(
        length=42, headers=2, lists=3, bolds=2
    )


def test_style_features_from_official_answer_metadata():
    meta = {
        "token_len": 321,
        "header_count": {"h1": 1, "h2": 2, "h3": 0, "h4": 0, "h5": 0, "h6": 0},
        "list_count": {"ordered": 3, "unordered": 4},
        "bold_count": {"**": 5, "__": 1},
    }
    assert StyleFeatures.from_official(meta) == StyleFeatures(321, 3, 7, 6)


def test_style_matrix_is_normalized_then_standardized():
    baseline = [StyleFeatures(10, 1, 0, 2), StyleFeatures(10, 1, 0, 2)]
    model = [StyleFeatures(5, 1, 0, 0), StyleFeatures(29, 1, 0, 2)]
    x = sc.style_matrix(model, baseline)
    # length: (10-5)/16 = 0.3125 and (10-29)/40 = -0.475 -> standardized to +1 / -1
    assert x[:, 0] == pytest.approx([1.0, -1.0])
    assert x[:, 1] == pytest.approx([0.0, 0.0])  # never varies: 0, not a division by zero
    assert x[:, 3] == pytest.approx([1.0, -1.0])  # bold: 2/3 against 0/5


def test_fit_logistic_recovers_the_empirical_odds_without_penalty():
    # one column ln(10), soft labels averaging 0.8: 10^w = 0.8 / 0.2
    x = np.full((5, 1), math.log(10))
    y = np.array([1.0, 1.0, 1.0, 0.5, 0.5])
    w = sc.fit_logistic(x, y, np.ones(5), l2=1e-12)
    assert w[0] == pytest.approx(math.log10(4), abs=1e-6)


def test_fit_logistic_solves_the_l2_objective():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4))
    y = (rng.random(200) < 1 / (1 + np.exp(-(x @ np.array([1.0, -2.0, 0.5, 0.0]))))).astype(float)
    weights = np.full(200, 2.0)
    w = sc.fit_logistic(x, y, weights, l2=1.0)
    p = 1 / (1 + np.exp(-(x @ w)))
    gradient = w + x.T @ (weights * (p - y))
    assert np.abs(gradient).max() < 1e-8  # the optimum of a strictly convex objective


def _battles_with_length_bias():
    """Judged answers win whenever they are long and half the time when short.
    "verbose" is long on half its questions, "concise" on a quarter of them."""
    battles, styles = [], {}
    for model, n_long, n_short in [("verbose", 20, 20), ("concise", 10, 30)]:
        for i in range(n_long + n_short):
            long_answer = i < n_long
            score = 1.0 if long_answer or i % 2 == 0 else 0.0
            battles.append(Battle(model, f"q{i}", score, 1))
            styles[(model, f"q{i}")] = StyleFeatures(900 if long_answer else 200, 0, 0, 0)
    return battles, styles, {f"q{i}": StyleFeatures(400, 0, 0, 0) for i in range(40)}


def test_style_control_explains_away_a_length_advantage():
    battles, styles, baseline_styles = _battles_with_length_bias()
    plain = {
        m: ah.win_rate([b for b in battles if b.model == m])[0] for m in ("verbose", "concise")
    }
    assert plain == {"verbose": 75.0, "concise": 62.5}
    controlled, coefficients = ah.style_controlled_win_rates(
        battles, styles, baseline_styles, rounds=20
    )
    gap = controlled["verbose"][0] - controlled["concise"][0]
    assert abs(gap) < 0.5 * (plain["verbose"] - plain["concise"])
    # the feature is (baseline - model) / sum: a longer baseline answer makes the baseline win
    assert coefficients["length"] > 0
    for rate, low, high in controlled.values():
        assert low <= rate <= high


def test_summarize_records_counts_unparsable_games():
    style, base = StyleFeatures(100, 0, 1, 0), StyleFeatures(120, 1, 0, 0)
    results = [
        ah.game_result(
            "q1", 1, "m", "<thoughts>t</thoughts><response>r</response>", "[[B>>A]]", style, base
        ),
        ah.game_result("q1", 2, "m", "r", "[[A=B]]", style, base),
        ah.game_result("q2", 1, "m", "r", "[[A>B]]", StyleFeatures(80, 0, 0, 0), base),
        ah.game_result("q2", 2, "m", "r", "I cannot decide", StyleFeatures(80, 0, 0, 0), base),
    ]
    assert results[0].judged_text == "r" and results[0].meta["model_side"] == "B"
    assert results[3].parse_error == ah.UNPARSABLE_VERDICT
    report = ah.summarize(results, rounds=20)
    assert report.plain["m"].win_rate == pytest.approx(70.0)
    assert (report.plain["m"].n_games, report.plain["m"].n_unparsable) == (3, 1)
    assert set(report.style_coefficients) == {"length", "headers", "lists", "bolds"}
    assert 0 < report.style_controlled["m"].win_rate < 100
