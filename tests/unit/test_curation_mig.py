"""MIG selection (Chen et al., 2025, arXiv 2504.13835) on hand-built items."""

from __future__ import annotations

import numpy as np
import pytest

from bolt.config.data import MigConfig, MigLabelKind
from bolt.curation.mig import (
    greedy_select,
    information,
    label_mass,
    mig_select,
    parse_tags,
    propagation_matrix,
    query_labels,
)
from bolt.records import Query

# Labels a, b, c: a and b are one edge (0.95 >= 0.9); c stands alone (0.2, 0.5 < 0.9).
SIMILARITY = np.array([[1.0, 0.95, 0.2], [0.95, 1.0, 0.5], [0.2, 0.5, 1.0]])
# Items: {a} s=2, {b} s=2, {c} s=1, {a, c} s=1.
ITEMS = [[0], [1], [2], [0, 2]]
SCORES = [2.0, 2.0, 1.0, 1.0]


def phi(x: float) -> float:
    return x**0.8


def test_propagation_matrix_by_hand():
    # I + 1.0 * [[0, .95, 0], [.95, 0, 0], [0, 0, 0]], columns summing to 1.
    expected = np.array([[1 / 1.95, 0.95 / 1.95, 0], [0.95 / 1.95, 1 / 1.95, 0], [0, 0, 1]])
    np.testing.assert_allclose(propagation_matrix(SIMILARITY), expected)
    np.testing.assert_allclose(propagation_matrix(SIMILARITY).sum(axis=0), 1.0)


def test_alpha_scales_the_edges():
    a = propagation_matrix(SIMILARITY, alpha=0.5)
    assert a[0, 1] == pytest.approx(0.475 / 1.475)


def test_information_by_hand():
    a = propagation_matrix(np.array([[1.0, 0.9, 0.0], [0.9, 1.0, 0.0], [0.0, 0.0, 1.0]]))
    # With similarity exactly 0.9 (an edge), A = [[1/1.9, .9/1.9, 0], [.9/1.9, 1/1.9, 0], [0, 0, 1]].
    mass = label_mass([[0], [0, 2]], [2.0, 1.0], 3)  # {a} s=2 and {a, c} s=1: [3, 0, 1]
    np.testing.assert_allclose(mass, [3.0, 0.0, 1.0])
    expected = phi(3 / 1.9) + phi(3 * 0.9 / 1.9) + phi(1.0)
    assert information(a, mass) == pytest.approx(expected)


def test_greedy_select_by_hand():
    """Gains computed by hand, with A's entries u = 1/1.95 (diagonal) and w = 0.95/1.95.

    Step 1, from nothing: {a} s=2 spreads (2u, 2w, 0): phi(2u) + phi(2w); {b} the same;
    {c}: phi(1) = 1; {a, c} spreads (u, w, 1): phi(u) + phi(w) + 1 -> largest: item 3.
    Step 2, from v = (u, w, 1): {a} adds (2u, 2w, 0), {b} adds (2w, 2u, 0): b evens out
    what a's item left uneven, and phi is concave, so {b} gains more; {c}: phi(2) - 1.
    Step 3, from v = (u + 2w, w + 2u, 1): {a} gains more than {c}'s phi(2) - 1.
    """
    u, w = 1 / 1.95, 0.95 / 1.95
    a = propagation_matrix(SIMILARITY)
    step1 = [phi(2 * u) + phi(2 * w), phi(2 * w) + phi(2 * u), 1.0, phi(u) + phi(w) + 1]
    assert max(step1) == step1[3]
    step2 = [
        phi(3 * u) - phi(u) + phi(3 * w) - phi(w),
        phi(u + 2 * w) - phi(u) + phi(w + 2 * u) - phi(w),
        phi(2) - 1.0,
    ]
    assert step2[1] > step2[0] > step2[2]
    v = (u + 2 * w, w + 2 * u)
    step3 = [phi(v[0] + 2 * u) - phi(v[0]) + phi(v[1] + 2 * w) - phi(v[1]), phi(2) - 1.0]
    assert step3[0] > step3[1]
    assert greedy_select(a, ITEMS, SCORES, budget=2) == [3, 1]
    assert greedy_select(a, ITEMS, SCORES, budget=4) == [3, 1, 0, 2]
    # The chosen pair carries more information than the two highest-quality items.
    chosen = information(a, label_mass([ITEMS[3], ITEMS[1]], [1.0, 2.0], 3))
    assert chosen == pytest.approx(phi(u + 2 * w) + phi(w + 2 * u) + 1.0)
    assert chosen > information(a, label_mass([ITEMS[0], ITEMS[1]], [2.0, 2.0], 3))


def _plain_greedy(a, items, scores, budget, exponent=0.8):
    chosen, mass = [], np.zeros(len(a))
    for _ in range(budget):
        base = information(a, mass, exponent)
        gains = [
            (
                information(a, mass + label_mass([items[i]], [scores[i]], len(a)), exponent) - base,
                -i,
            )
            if i not in chosen
            else (-np.inf, -i)
            for i in range(len(items))
        ]
        best = -max(gains)[1]
        chosen.append(best)
        mass += label_mass([items[best]], [scores[best]], len(a))
    return chosen


@pytest.mark.parametrize("seed", range(5))
def test_lazy_greedy_picks_what_plain_greedy_picks(seed):
    rng = np.random.default_rng(seed)
    n_labels = 12
    x = rng.normal(size=(n_labels, 4))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    a = propagation_matrix(x @ x.T, threshold=0.6)
    items = [list(rng.choice(n_labels, size=rng.integers(1, 4), replace=False)) for _ in range(40)]
    scores = list(rng.integers(1, 8, size=40).astype(float))
    assert greedy_select(a, items, scores, 15) == _plain_greedy(a, items, scores, 15)


def test_budget_beyond_the_pool_takes_everything_once():
    a = propagation_matrix(SIMILARITY)
    assert sorted(greedy_select(a, ITEMS, SCORES, budget=10)) == [0, 1, 2, 3]


def _q(i, topic, criteria, difficulty, tags=()):
    return Query(
        id=f"q{i}",
        text=f"query {i}",
        source="t",
        topic=topic,
        criteria={c: 1 for c in criteria},
        difficulty=difficulty,
        meta={"tags": list(tags)},
    )


def test_query_labels_and_mig_select_spreads_over_topics():
    queries = [
        _q(0, "math", ["complexity"], 5),
        _q(1, "math", ["complexity"], 5),
        _q(2, "math", ["complexity"], 5),
        _q(3, "coding", ["creativity"], 4),
    ]
    assert query_labels(queries[0], [MigLabelKind.topic, MigLabelKind.criteria]) == [
        "topic:math",
        "criterion:complexity",
    ]

    def embed(texts):  # every label its own direction: no edges
        return np.eye(len(texts))

    result = mig_select(queries, 2, MigConfig(), embed)
    assert [q.id for q in result.chosen] == ["q0", "q3"]
    assert result.covered_labels == 4


def test_parse_tags():
    assert parse_tags("Tags: Python, Debugging , python, unit tests.", 5) == [
        "python",
        "debugging",
        "unit_tests",
    ]
    assert parse_tags("no tags here", 5) is None
    assert parse_tags("Tags: a, b, c", 2) == ["a", "b"]
