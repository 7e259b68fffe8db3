"""MATH500: boxed-answer extraction and math-verify equivalence, off the main thread too."""

import json
import threading
from pathlib import Path

import pytest

from bolt import math_answers
from bolt.evals import math500

pytest.importorskip("math_verify")

FIXTURES = Path(__file__).parents[1] / "fixtures" / "evals"


@pytest.mark.parametrize(
    ("text", "boxed"),
    [
        (r"First \boxed{1}, finally $\boxed{\frac{\sqrt{3}}{2}}$.", r"\frac{\sqrt{3}}{2}"),
        (r"\boxed{\left( 3, \frac{\pi}{2} \right)}", r"\left( 3, \frac{\pi}{2} \right)"),
        (r"The answer is \fbox{x^{2}}", "x^{2}"),
        (r"so $\boxed 5$", "5"),
        (r"\boxed{never closed", None),
        (r"\boxedx{1}", None),
        ("no box at all: 42", None),
    ],
)
def test_last_boxed(text, boxed):
    assert math_answers.last_boxed(text) == boxed


EQUIVALENCES = [
    (r"\frac{1}{2}", "0.5", True),
    (r"\frac{14}{3}", r"\dfrac{14}{3}", True),
    ("10", "10.0", True),
    ("2", "x=2", True),
    (r"\left( 3, \frac{\pi}{2} \right)", r"(3,\frac{\pi}{2})", True),
    (r"\text{(C)}", "C", True),
    (r"90^\circ", "90", True),
    ("3", "4", False),
    (r"\frac{1}{2}", r"\frac{1}{3}", False),
]


def test_equivalence_with_math_verify():
    verdicts = math_answers.check_answers(
        [(gold, predicted) for gold, predicted, _ in EQUIVALENCES]
    )
    assert verdicts == [expected for _, _, expected in EQUIVALENCES]


def test_checks_work_from_a_worker_thread():
    # math-verify's signal-based timeouts fail outside a main thread; the process pool
    # runs them on its workers' main threads
    out = {}
    worker = threading.Thread(
        target=lambda: out.update(v=math_answers.check_answers([(r"\frac{1}{2}", "0.5")]))
    )
    worker.start()
    worker.join(timeout=120)
    assert out == {"v": [True]}


def test_accuracy_by_level_and_subject():
    problems = [
        math500.MathProblem.model_validate(json.loads(line))
        for line in (FIXTURES / "math500.handmade.jsonl").read_text().splitlines()
    ]
    answers = [
        r"<thoughts>maybe \boxed{7}</thoughts><response>So it is $\boxed{0.5}$.</response>",  # right
        r"Thus $x = \boxed{3}$.",  # wrong
        "The angle is ninety degrees.",  # no boxed answer
        r"\boxed{(3, \frac{\pi}{2})}",  # right
    ]
    results = math500.graded_results(problems, "m", answers)
    assert [r.score for r in results] == [1.0, 0.0, 0.0, 1.0]
    assert results[0].verdict == "0.5"  # the response's box, not the thoughts'
    assert results[2].parse_error == math500.NO_BOXED_ANSWER
    report = math500.summarize(results)
    assert report.accuracy == pytest.approx(50.0)
    assert report.by_level == pytest.approx({1: 100.0, 2: 0.0, 3: 100.0})
    assert report.by_subject == pytest.approx(
        {"Algebra": 50.0, "Geometry": 0.0, "Precalculus": 100.0}
    )
    assert (report.n_problems, report.n_no_answer) == (4, 1)
