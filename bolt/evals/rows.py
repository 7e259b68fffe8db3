"""Rows of an evaluation file wherever it lives: a local JSON list or JSONL file, an
``s3://`` object, a parquet file, or a hub dataset at a pinned revision.

A hub dataset is named ``hf://NAME?config=C&split=S&revision=COMMIT`` (``config`` and
``split`` optional; ``split`` defaults to ``test``, the split every benchmark here is
published as) and read with ``datasets.load_dataset(NAME, C, split=S, revision=COMMIT)``;
the older ``hf://NAME:SPLIT`` form is read too. Local files, S3 and parquet go through
the curation stage's source reader, so S3 access is configured in one place.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bolt.config import QuerySource, S3Options
from bolt.curation.sources import SourceRow, read_source


class EvalDataError(ValueError):
    """A benchmark without data, or a row that is not an item of its official format."""


def hub_id(uri: str) -> tuple[str, str | None, str, str | None]:
    """(dataset, config, split, revision) of an ``hf://`` URI."""
    parts = urlsplit(uri)
    name = parts.netloc + parts.path
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    unknown = set(query) - {"config", "split", "revision"}
    if unknown:
        raise EvalDataError(f"{uri}: unknown hub option(s) {sorted(unknown)}")
    name, _, old_split = name.partition(":")
    return (
        name,
        query.get("config"),
        query.get("split") or old_split or "test",
        query.get("revision"),
    )


def _hub_rows(uri: str) -> list[Any]:
    import datasets

    name, config, split, revision = hub_id(uri)
    return list(datasets.load_dataset(name, config, split=split, revision=revision))


def read_rows(uri: str, s3: S3Options | None = None) -> list[Any]:
    """Every row of ``uri``, as the file holds it."""
    if uri.startswith("hf://"):
        return _hub_rows(uri)
    if uri.endswith(".json") and not uri.startswith("s3://"):
        rows = json.loads(Path(uri).read_text(encoding="utf-8"))
        return rows if isinstance(rows, list) else [rows]
    fmt = "parquet" if uri.endswith(".parquet") else "jsonl"
    rows = []
    for row in read_source(QuerySource(name="eval", uri=uri, format=fmt), s3):
        if not isinstance(row, SourceRow):
            raise EvalDataError(f"{row.source}:{row.line}: {row.reason} ({row.detail})")
        rows.append(row.data)
    return rows
