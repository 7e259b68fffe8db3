import gzip

import pytest

from bolt.records import Generation, Query, RecordError, read_jsonl, write_jsonl


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


@pytest.mark.parametrize("name", ["rows.jsonl", "rows.jsonl.gz"])
def test_round_trip(tmp_path, name):
    path = tmp_path / name
    assert write_jsonl(path, (_gen(i) for i in range(5))) == 5
    assert [g.query_id for g in read_jsonl(path, Generation)] == [f"q{i}" for i in range(5)]


def test_gzip_is_deterministic(tmp_path):
    a, b = tmp_path / "a.jsonl.gz", tmp_path / "b.jsonl.gz"
    write_jsonl(a, [_gen(1)])
    write_jsonl(b, [_gen(1)])
    assert a.read_bytes() == b.read_bytes()
    assert gzip.decompress(a.read_bytes()).endswith(b"\n")


def test_invalid_json_names_file_and_line(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text('{"id": "a", "text": "t", "source": "s"}\n\n{"id": "b", "text": \n')
    rows = read_jsonl(path, Query)
    assert next(rows).id == "a"
    with pytest.raises(RecordError, match=r"q\.jsonl:3: invalid JSON"):
        next(rows)


def test_missing_and_unknown_fields_are_named(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text('{"id": "a", "source": "s", "colour": 1}\n')
    with pytest.raises(
        RecordError, match=r"q\.jsonl:1: not a valid Query: text: Field required; colour: Extra"
    ):
        list(read_jsonl(path, Query))
