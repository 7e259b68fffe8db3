"""Read first-turn user queries from JSONL, Parquet or HF datasets, with field mapping.

Rows that cannot be used (invalid JSON, wrong encoding, a missing or empty field, a
conversation without a user turn) become ``Reject`` records naming the file and line;
the stage goes on and counts them.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bolt.config import QuerySource, S3Options
from bolt.records import Query, Reject
from bolt.source_digests import hf_revision
from bolt.stages import Stage
from bolt.store_backends import S3Backend

MAX_RAW_CHARS = 2000


@dataclass(frozen=True)
class SourceRow:
    """One raw row and where it came from (for error messages and rejects)."""

    where: str
    line: int
    data: Any
    raw: str | None = None


def normalize_text(text: str) -> str:
    """What counts as "the same query": NFKC, lower case, collapsed whitespace."""
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


def query_id(source: str, text: str) -> str:
    return f"{source}-{hashlib.sha256(normalize_text(text).encode()).hexdigest()[:12]}"


def first_user_turn(conversation: Any, source: QuerySource) -> str | None:
    """The first user message of a ShareGPT-style conversation, None when there is none."""
    if not isinstance(conversation, list):
        return None
    for turn in conversation:
        if isinstance(turn, dict) and turn.get(source.role_key) in source.user_roles:
            content = turn.get(source.content_key)
            return content if isinstance(content, str) else None
    return None


def row_to_query(row: SourceRow, source: QuerySource) -> Query | Reject:
    """Map a raw row to a Query through the source's field mapping, or say why not."""

    def reject(reason: str, detail: str | None = None) -> Reject:
        raw = (
            row.raw
            if row.raw is not None
            else json.dumps(row.data, ensure_ascii=False, default=str)
        )
        return Reject(
            stage=Stage.curation,
            reason=reason,
            source=row.where,
            line=row.line,
            raw=raw[:MAX_RAW_CHARS],
            detail=detail,
        )

    if not isinstance(row.data, dict):
        return reject("not_an_object", f"expected a JSON object, got {type(row.data).__name__}")
    if source.conversation_field:
        if source.conversation_field not in row.data:
            return reject("missing_field", f"no field {source.conversation_field!r}")
        text = first_user_turn(row.data[source.conversation_field], source)
        if text is None:
            return reject(
                "no_user_turn",
                f"{source.conversation_field!r} has no turn with role in {source.user_roles}",
            )
    else:
        field = source.text_field or "text"
        if field not in row.data:
            return reject("missing_field", f"no field {field!r}")
        text = row.data[field]
        if not isinstance(text, str):
            return reject(
                "wrong_type", f"field {field!r} is {type(text).__name__}, expected a string"
            )
    text = text.strip()
    if not text:
        return reject("empty_query")

    def optional(field: str | None) -> Any:
        return row.data.get(field) if field else None

    topic, reference = optional(source.topic_field), optional(source.reference_field)
    given_id = optional(source.id_field)
    return Query(
        id=f"{source.name}-{given_id}" if given_id is not None else query_id(source.name, text),
        text=text,
        source=source.name,
        topic=str(topic) if topic is not None else None,
        reference_answer=str(reference) if reference is not None else None,
        meta={"where": f"{row.where}:{row.line}"},
    )


def read_source(source: QuerySource, s3: S3Options | None = None) -> Iterator[SourceRow | Reject]:
    """Raw rows of a source (at most ``source.limit``), or Rejects for unreadable ones."""
    count = 0
    for item in _rows(source, s3):
        yield item
        count += isinstance(item, SourceRow)
        if source.limit and count >= source.limit:
            return


def _rows(source: QuerySource, s3: S3Options | None) -> Iterator[SourceRow | Reject]:
    if source.format == "hf":
        yield from _hf_rows(source)
        return
    with _local_copy(source.uri, s3) as path:
        if source.format == "parquet":
            yield from _parquet_rows(path, source.uri)
        else:
            yield from _jsonl_rows(path, source.uri)


def _jsonl_rows(path: Path, where: str) -> Iterator[SourceRow | Reject]:
    with open(path, "rb") as f:
        for lineno, raw_bytes in enumerate(f, start=1):
            try:
                line = raw_bytes.decode("utf-8")
            except UnicodeDecodeError as e:
                yield Reject(
                    stage=Stage.curation,
                    reason="bad_encoding",
                    source=where,
                    line=lineno,
                    raw=raw_bytes[:MAX_RAW_CHARS].decode("utf-8", "replace"),
                    detail=f"not UTF-8 at byte {e.start}",
                )
                continue
            if not line.strip():
                continue
            try:
                yield SourceRow(where, lineno, json.loads(line), raw=line.rstrip("\n"))
            except json.JSONDecodeError as e:
                yield Reject(
                    stage=Stage.curation,
                    reason="invalid_json",
                    source=where,
                    line=lineno,
                    raw=line[:MAX_RAW_CHARS],
                    detail=f"{e.msg} at column {e.colno}",
                )


def _parquet_rows(path: Path, where: str) -> Iterator[SourceRow]:
    import pyarrow.parquet as pq

    lineno = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=4096):
        for row in batch.to_pylist():
            lineno += 1
            yield SourceRow(where, lineno, row)


def _hf_rows(source: QuerySource) -> Iterator[SourceRow]:
    """A dataset saved with save_to_disk (a local folder) or a hub id
    ``hf://name[:split]?revision=REV``."""
    import datasets

    name, split, revision = hf_revision(source.uri)
    if Path(name).is_dir():
        dataset = datasets.load_from_disk(name)
        if isinstance(dataset, datasets.DatasetDict):
            dataset = dataset[next(iter(dataset))]
    else:
        # The revision the fingerprint names (bolt.source_digests): the same rows every run.
        dataset = datasets.load_dataset(name, split=split or "train", revision=revision)
    for i, row in enumerate(dataset, start=1):
        yield SourceRow(source.uri, i, row)


class _local_copy:
    """A local path for a URI: the file itself, or a temporary copy of an s3:// object."""

    def __init__(self, uri: str, s3: S3Options | None):
        self.uri, self.s3, self.tmp = uri, s3, None

    def __enter__(self) -> Path:
        if not self.uri.startswith("s3://"):
            path = Path(self.uri)
            if not path.is_file():
                raise FileNotFoundError(f"query source {self.uri!r} does not exist")
            return path
        bucket, _, key = self.uri.removeprefix("s3://").partition("/")
        self.tmp = tempfile.TemporaryDirectory()
        local = Path(self.tmp.name) / Path(key).name
        S3Backend(bucket, "", self.s3 or S3Options()).get_file(key, local)
        return local

    def __exit__(self, *exc: object) -> None:
        if self.tmp:
            self.tmp.cleanup()
