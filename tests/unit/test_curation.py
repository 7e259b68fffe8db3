import json

import pytest

from bolt.config import BalanceMode, QuerySource
from bolt.curation.balance import balance, share_limits, topic_counts
from bolt.curation.dedup import deduplicate
from bolt.curation.labels import CRITERIA, parse_criteria, parse_topic
from bolt.curation.sources import SourceRow, read_source, row_to_query
from bolt.records import Query, Reject

ALL_ONES = "\n".join(f"{c}: 1" for c in CRITERIA)


def test_parse_criteria_plain():
    assert parse_criteria(ALL_ONES) == {c: 1 for c in CRITERIA}


def test_parse_criteria_tolerates_markdown_and_words():
    text = "Sure!\n" + "\n".join(
        f"- **{c.replace('_', ' ').title()}**: {'Yes' if i % 2 else 'No'}"
        for i, c in enumerate(CRITERIA)
    )
    assert parse_criteria(text) == {c: i % 2 for i, c in enumerate(CRITERIA)}


@pytest.mark.parametrize(
    "text",
    [
        "\n".join(f"{c}: 1" for c in CRITERIA[:-1]),  # one missing
        ALL_ONES + "\ncreativity: 0",  # contradiction
        "specificity: maybe\n" + "\n".join(f"{c}: 1" for c in CRITERIA[1:]),
        "",
    ],
)
def test_parse_criteria_refuses_to_guess(text):
    assert parse_criteria(text) is None


def test_parse_topic():
    topics = ["math", "data_analysis", "advice"]
    assert parse_topic("Topic: Data Analysis", topics) == "data_analysis"
    assert parse_topic("**Topic:** math.", topics) == "math"
    assert parse_topic("advice", topics) == "advice"
    assert parse_topic("Topic: cooking", topics) is None
    assert parse_topic("", topics) is None


def _q(i, text, topic=None):
    return Query(id=f"q{i}", text=text, source="t", topic=topic)


def test_dedup_exact_and_near():
    base = "Explain how a hash map handles collisions with open addressing and chaining in detail please"
    queries = [
        _q(0, base),
        _q(1, base.upper() + "  "),
        _q(2, base + " thanks"),
        _q(3, "Write a haiku about rain on a tin roof"),
    ]
    result = deduplicate(queries, threshold=0.7)
    assert [q.id for q in result.kept] == ["q0", "q3"]
    assert [(q.id, k) for q, k in result.exact_duplicates] == [("q1", "q0")]
    assert [(q.id, k) for q, k in result.near_duplicates] == [("q2", "q0")]


def test_balance_caps_and_shares():
    qs = [_q(i, f"t{i}", "math" if i < 6 else "code") for i in range(9)]
    assert topic_counts(balance(qs, BalanceMode.caps, cap=2)) == {"code": 2, "math": 2}
    assert [q.id for q in balance(qs, BalanceMode.caps, cap=2)] == ["q0", "q1", "q6", "q7"]
    assert share_limits({"math": 3, "code": 1}, 8) == {"math": 6, "code": 2}
    assert topic_counts(
        balance(qs, BalanceMode.shares, shares={"math": 0.5, "code": 0.5}, total=4)
    ) == {"code": 2, "math": 2}
    assert balance(qs, BalanceMode.none) == qs


def test_sharegpt_first_human_turn():
    source = QuerySource(name="sg", uri="x", text_field=None, conversation_field="conversations")
    row = SourceRow(
        "f.jsonl",
        3,
        {
            "conversations": [
                {"from": "system", "value": "s"},
                {"from": "human", "value": " hi there "},
                {"from": "gpt", "value": "x"},
            ]
        },
    )
    query = row_to_query(row, source)
    assert (
        isinstance(query, Query) and query.text == "hi there" and query.meta["where"] == "f.jsonl:3"
    )
    no_user = row_to_query(
        SourceRow("f.jsonl", 4, {"conversations": [{"from": "gpt", "value": "x"}]}), source
    )
    assert isinstance(no_user, Reject) and no_user.reason == "no_user_turn" and no_user.line == 4


def test_bad_rows_become_rejects_with_file_and_line(tmp_path):
    path = tmp_path / "q.jsonl"
    rows = [
        json.dumps({"id": "a", "text": "fine"}),
        "{not json",
        json.dumps({"id": "b"}),
        json.dumps({"id": "c", "text": "   "}),
        json.dumps({"id": "d", "text": 5}),
    ]
    path.write_bytes(("\n".join(rows) + "\n").encode() + b'{"id": "e", "text": "\xff\xfe"}\n')
    source = QuerySource(name="s", uri=str(path), id_field="id")
    out = [row_to_query(r, source) if isinstance(r, SourceRow) else r for r in read_source(source)]
    assert isinstance(out[0], Query) and out[0].id == "s-a"
    assert [(r.reason, r.line) for r in out[1:]] == [
        ("invalid_json", 2),
        ("missing_field", 3),
        ("empty_query", 4),
        ("wrong_type", 5),
        ("bad_encoding", 6),
    ]
    assert all(str(path) == r.source for r in out[1:])


def test_missing_source_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        list(read_source(QuerySource(name="s", uri=str(tmp_path / "nope.jsonl"))))


def test_parquet_source(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "q.parquet"
    pq.write_table(pa.table({"instruction": ["a b c", "d e f"], "output": ["1", "2"]}), path)
    source = QuerySource(
        name="p",
        uri=str(path),
        format="parquet",
        text_field="instruction",
        reference_field="output",
    )
    queries = [row_to_query(r, source) for r in read_source(source)]
    assert [(q.text, q.reference_answer) for q in queries] == [("a b c", "1"), ("d e f", "2")]
