import gzip

import pytest

from bolt.records import (
    Generation,
    Query,
    RecordError,
    decode_jsonl_gz,
    encode_jsonl_gz,
    parse_jsonl_lines,
)


def _gen(i: int) -> Generation:
    return Generation(
        query_id=f"q{i}",
        sample_index=0,
        prompt_tokens=10,
        raw_text="x" * i,
        output_tokens=i,
        engine="vllm",
        model="m",
        seed=0,
    )


def test_round_trip():
    data, count = encode_jsonl_gz(_gen(i) for i in range(5))
    assert count == 5
    decoded = decode_jsonl_gz(data, Generation, "rows.jsonl.gz")
    assert [g.query_id for g in decoded] == [f"q{i}" for i in range(5)]


def test_gzip_is_deterministic():
    a, _ = encode_jsonl_gz([_gen(1)])
    b, _ = encode_jsonl_gz([_gen(1)])
    assert a == b
    assert gzip.decompress(a).endswith(b"\n")


def test_invalid_json_names_file_and_line():
    lines = ['{"id": "a", "text": "t", "source": "s"}', "", '{"id": "b", "text": ']
    rows = parse_jsonl_lines(lines, Query, "q.jsonl")
    assert next(rows).id == "a"
    with pytest.raises(RecordError, match=r"q\.jsonl:3: invalid JSON"):
        next(rows)


def test_missing_and_unknown_fields_are_named():
    lines = ['{"id": "a", "source": "s", "colour": 1}']
    with pytest.raises(
        RecordError, match=r"q\.jsonl:1: not a valid Query: text: Field required; colour: Extra"
    ):
        list(parse_jsonl_lines(lines, Query, "q.jsonl"))
