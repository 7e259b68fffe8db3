"""Finding a judge's or a model's JSON object inside free text."""

from bolt.evals.jsontext import last_json_object


def test_fenced_block_wins_over_later_prose_objects():
    text = 'x {"score": 1}\n```json\n{"score": 7, "note": "a } inside"}\n```\nand then {"score": 3}'
    assert last_json_object(text, "score") == {"score": 7, "note": "a } inside"}


def test_last_bare_object_with_the_key():
    assert last_json_object('{"score": 1} then {"score": 2} and {"other": 3}', "score") == {
        "score": 2
    }


def test_raw_newlines_inside_strings_are_accepted():
    assert last_json_object('{"reasoning": "line one\nline two", "solution": {}}', "solution") == {
        "reasoning": "line one\nline two",
        "solution": {},
    }


def test_an_unclosed_brace_does_not_hide_later_objects():
    assert last_json_object('so \\boxed{3 and then {"solution": {"House 1": {}}}', "solution") == {
        "solution": {"House 1": {}}
    }


def test_nothing_to_find():
    assert last_json_object("no json at all", "score") is None
    assert last_json_object('{"broken": }', "broken") is None
    assert last_json_object("[1, 2]", "score") is None
