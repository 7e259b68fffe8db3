"""Decontamination: training prompts that overlap a benchmark's prompts are set aside.

Curated queries (Stage 1) and online prompts (Stage 3) are checked against the prompts of
every benchmark the config evaluates (``eval.benchmarks``, each read from ``eval.data``
by its own loader, all items, not only ``eval.max_items``). The rule is the word n-gram
overlap of GPT-3's contamination analysis (Brown et al., 2020, Appendix C), which
Llama 2 and 3 follow in spirit:

- text is normalised by lower-casing, replacing every character that is not a letter or
  a digit (punctuation, LaTeX markup, underscores) by a space, and collapsing whitespace;
  the words are what is left;
- a training prompt is contaminated by a benchmark when it shares at least
  ``min_overlap`` (default 1: any collision, as in GPT-3) distinct word ``ngram``-grams
  (default 13, GPT-3's N) with that benchmark's prompts;
- a benchmark prompt shorter than ``ngram`` words counts as one gram of its own length,
  when it has at least ``MIN_SHORT_WORDS`` = 8 words (GPT-3 let N fall to 8 for short
  tasks); shorter prompts ("hi", "Write a haiku") are not checked.

A contaminated prompt becomes a :class:`~bolt.records.Reject` with reason
``contaminated:<benchmark>`` and, as detail, the benchmark item and the matching text;
its stage counts it in the manifest (``contaminated`` and ``contaminated:<benchmark>``).

This module is pure: the index of a config's benchmarks is built from their loaders by
:func:`bolt.evals.contamination.index_for`, and the flows hand it to the stages (the
data stages never import the evaluation package).
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bolt.records import Reject

DEFAULT_NGRAM = 13
MIN_SHORT_WORDS = 8
REASON_PREFIX = "contaminated:"
# The item fields that hold what a model is asked, in each benchmark's official layouts
# (Arena-Hard's prompt/turns, MT-Bench's turns, WildBench's conversation_input,
# ZebraLogic's puzzle, MATH's problem): the prompt text without BOLT's own templates.
PROMPT_FIELDS = ("prompt", "turns", "conversation_input", "puzzle", "problem", "question")

_NOT_WORD = re.compile(r"[\W_]+")
T = TypeVar("T")


def words(text: str) -> list[str]:
    """The normalised words of ``text`` (see the module docstring)."""
    return _NOT_WORD.sub(" ", text.lower()).split()


def _key(gram: Sequence[str]) -> str:
    return " ".join(gram)


@dataclass(frozen=True)
class Match:
    """The benchmark a prompt overlaps, one of its items, the first matching text and the
    number of distinct matching grams."""

    benchmark: str
    item_id: str
    text: str
    overlap: int

    @property
    def reason(self) -> str:
        return f"{REASON_PREFIX}{self.benchmark}"


@dataclass
class NgramIndex:
    """Every word n-gram of the benchmarks' prompts -> the (benchmark, item id) it is in."""

    ngram: int = DEFAULT_NGRAM
    min_overlap: int = 1
    grams: dict[str, set[tuple[str, str]]] = field(default_factory=lambda: defaultdict(set))
    short_lengths: set[int] = field(default_factory=set)
    n_prompts: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, benchmark: str, item_id: str, text: str) -> None:
        tokens = words(text)
        self.n_prompts[benchmark] += 1
        if len(tokens) < self.ngram:
            if len(tokens) >= MIN_SHORT_WORDS:
                self.short_lengths.add(len(tokens))
                self.grams[_key(tokens)].add((benchmark, item_id))
            return
        for i in range(len(tokens) - self.ngram + 1):
            self.grams[_key(tokens[i : i + self.ngram])].add((benchmark, item_id))

    def match(self, text: str) -> Match | None:
        """The benchmark ``text`` overlaps most (ties: by name), when it shares at least
        ``min_overlap`` distinct grams with it; else None."""
        tokens = words(text)
        found: dict[str, dict[str, str]] = defaultdict(dict)  # benchmark -> gram -> item
        for n in sorted({self.ngram, *self.short_lengths}):
            for i in range(len(tokens) - n + 1):
                key = _key(tokens[i : i + n])
                for benchmark, item_id in self.grams.get(key, ()):
                    found[benchmark].setdefault(key, item_id)
        hits = [(b, g) for b, g in found.items() if len(g) >= self.min_overlap]
        if not hits:
            return None
        benchmark, grams = min(hits, key=lambda bg: (-len(bg[1]), bg[0]))
        first = next(iter(grams))
        return Match(benchmark, grams[first], first, len(grams))

    def digest(self) -> str:
        """What the index was built from (its settings and grams), for a manifest."""
        h = hashlib.sha256(f"{self.ngram}:{self.min_overlap}".encode())
        for key in sorted(self.grams):
            h.update(key.encode())
            h.update(repr(sorted(self.grams[key])).encode())
        return h.hexdigest()[:16]


def build_index(
    prompts: Mapping[str, Iterable[tuple[str, str]]],
    ngram: int = DEFAULT_NGRAM,
    min_overlap: int = 1,
) -> NgramIndex:
    """An index of ``{benchmark: [(item id, prompt text), ...]}``."""
    index = NgramIndex(ngram=ngram, min_overlap=min_overlap)
    for benchmark, items in prompts.items():
        for item_id, text in items:
            index.add(benchmark, item_id, text)
    return index


def _texts(value: Any) -> list[str]:
    """The strings of a prompt field: a string, a list of strings, or chat turns (the
    user's contents)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        if value.get("role", "user") != "user":
            return []
        return _texts(value.get("content"))
    if isinstance(value, list | tuple):
        return [t for v in value for t in _texts(v)]
    return []


def prompt_text(item: Any) -> str:
    """What a benchmark item asks, from its :data:`PROMPT_FIELDS` (a pydantic item or a
    mapping); empty when it has none of them."""
    row = item.model_dump() if hasattr(item, "model_dump") else dict(item)
    return "\n".join(t for name in PROMPT_FIELDS for t in _texts(row.get(name)))


def decontaminate(
    records: Sequence[T],
    index: NgramIndex | None,
    *,
    text: Callable[[T], str],
    reject: Callable[[T, Match], Reject],
) -> tuple[list[T], list[Reject]]:
    """The records that overlap no benchmark, and a reject for each one that does (built
    by ``reject`` from the record and its :class:`Match`). ``index`` None: all kept."""
    if index is None:
        return list(records), []
    kept, rejects = [], []
    for record in records:
        found = index.match(text(record))
        if found is None:
            kept.append(record)
        else:
            rejects.append(reject(record, found))
    return kept, rejects


def match_detail(found: Match) -> str:
    """A reject's detail: the benchmark item and the text they share."""
    return (
        f"{found.overlap} shared {found.benchmark} n-gram(s) with item {found.item_id}, "
        f"first: {found.text!r}"
    )


def contamination_counts(rejects: Iterable[Reject]) -> dict[str, int]:
    """``{"contaminated": total, "contaminated:<benchmark>": count, ...}`` of a stage's
    rejects, for its manifest and report."""
    counts: dict[str, int] = defaultdict(int)
    for r in rejects:
        if r.reason.startswith(REASON_PREFIX):
            counts["contaminated"] += 1
            counts[r.reason] += 1
    return dict(counts)


# ---------------------------------------------------------------- from the config


def fingerprint_payload(cfg: Any) -> dict[str, Any]:
    """What decides a stage's decontamination, for its fingerprint: the settings and the
    benchmarks' sources (empty when off)."""
    settings = cfg.data.decontamination
    if not settings.enabled:
        return {}
    return {
        "decontamination": {
            "ngram": settings.ngram,
            "min_overlap": settings.min_overlap,
            "benchmarks": {b.value: cfg.eval.data.get(b) for b in cfg.eval.benchmarks},
        }
    }


def required(cfg: Any, index: NgramIndex | None) -> NgramIndex | None:
    """``index``, checked against the config: on (the default) needs one."""
    if cfg.data.decontamination.enabled and index is None:
        raise ValueError(
            "data.decontamination is on: pass the benchmarks' index "
            "(bolt.evals.contamination.index_for(cfg)), or set data.decontamination.enabled false"
        )
    return index if cfg.data.decontamination.enabled else None
