"""The evaluated benchmarks' prompts as a decontamination index (:mod:`bolt.decontamination`).

Every benchmark of ``eval.benchmarks`` is read by its own loader from ``eval.data`` (all
items, not only ``eval.max_items``); the text indexed is what each item asks
(:func:`bolt.decontamination.prompt_text`), without BOLT's prompt templates. The tasks
of the curation and online-prompts stages build it once per process and pass it in.
"""

from __future__ import annotations

from typing import Any

from bolt.decontamination import NgramIndex, build_index, fingerprint_payload, prompt_text
from bolt.evals.data import item_id, load_items

_BUILT: dict[str, NgramIndex] = {}


def benchmark_prompts(cfg: Any) -> dict[str, list[tuple[str, str]]]:
    """``{benchmark: [(item id, prompt text), ...]}`` of every configured benchmark, all
    items, each read by its own loader."""
    out = {}
    for benchmark in cfg.eval.benchmarks:
        items = load_items(benchmark, cfg.eval.data.get(benchmark), None, cfg.storage.s3)
        out[benchmark.value] = [(item_id(benchmark, i), prompt_text(i)) for i in items]
    return out


def index_for(cfg: Any) -> NgramIndex | None:
    """The index of the config's benchmarks, built once per process and settings; None
    when decontamination is off."""
    payload = fingerprint_payload(cfg)
    if not payload:
        return None
    key = repr(payload)
    if key not in _BUILT:
        settings = cfg.data.decontamination
        _BUILT[key] = build_index(benchmark_prompts(cfg), settings.ngram, settings.min_overlap)
    return _BUILT[key]
