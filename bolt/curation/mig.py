"""MIG: data selection by maximising information gain in a label graph.

Chen et al., 2025, "MIG: Automatic Data Selection for Instruction Tuning by Maximizing
Information Gain in Semantic Space", arXiv 2504.13835 (code: yichengchen24/MIG).

Each item i has a set of labels (here the labeller's topic and the difficulty criteria
it meets, optionally free-form tags) and a quality score s_i (here its difficulty
score); its information is s_i e_i, e_i the 0/1 vector of its labels. Labels form a
graph: an edge joins two labels whose embeddings have cosine similarity >= 0.9, and
information spreads along it through A = I + alpha * S (S the thresholded off-diagonal
similarities, alpha = 1.0), column-normalised so a label hands out what it holds. The
information of a set D is

    E(D) = sum over labels l of phi((A @ sum_{i in D} s_i e_i)_l),   phi(x) = x ** 0.8,

concave in each label's mass, so a label already well covered gains less from one more
item: quality and diversity in one number. E is monotone submodular, so the greedy
choice of the item of largest gain E(D + i) - E(D) is the classical (1 - 1/e)
approximation, and the *lazy* greedy (Minoux, 1978: a stale gain is an upper bound of
the fresh one, so only the heap's top is re-evaluated) picks the same items in near
linear time. Ties go to the earlier item (the stage's seeded order).
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from bolt.config.data import MigConfig, MigLabelKind
from bolt.prompts import render_template
from bolt.records import Query


def propagation_matrix(similarity: np.ndarray, threshold: float = 0.9, alpha: float = 1.0):
    """A = I + alpha * (off-diagonal similarities >= threshold), each column summing to 1."""
    s = np.array(similarity, dtype=np.float64)
    if s.ndim != 2 or s.shape[0] != s.shape[1]:
        raise ValueError(f"label similarity must be square, got shape {s.shape}")
    np.fill_diagonal(s, 0.0)
    s[s < threshold] = 0.0
    a = np.eye(len(s)) + alpha * s
    return a / a.sum(axis=0, keepdims=True)


def label_mass(item_labels: Sequence[Sequence[int]], scores: Sequence[float], n_labels: int):
    """sum_i s_i e_i over the given items: the label vector of a set before propagation."""
    mass = np.zeros(n_labels)
    for labels, score in zip(item_labels, scores, strict=True):
        mass[list(set(labels))] += score
    return mass


def information(propagation: np.ndarray, mass: np.ndarray, exponent: float = 0.8) -> float:
    """E(D) = sum_l phi((A @ mass)_l) with phi(x) = x ** exponent."""
    return float(np.sum(np.power(propagation @ mass, exponent)))


def greedy_select(
    propagation: np.ndarray,
    item_labels: Sequence[Sequence[int]],
    scores: Sequence[float],
    budget: int,
    exponent: float = 0.8,
) -> list[int]:
    """Indices of ``budget`` items chosen greedily on the gain of E, in the order chosen.

    Lazy greedy with a max-heap of upper bounds: an item's gain only shrinks as the set
    grows (submodularity), so a popped entry whose gain is fresh for the current set is
    the best one; stale entries are re-evaluated (``REFRESH`` at a time, in one numpy
    pass) and pushed back. Items with the same label set share one heap entry, their best
    remaining item: for one label set the gain grows with the score, so no other item of
    the set can beat it (equal scores go by index, as do equal gains).
    """
    if len(item_labels) != len(scores):
        raise ValueError(f"{len(item_labels)} label sets but {len(scores)} scores")
    sets = _LabelSets(propagation, item_labels, scores, exponent)
    current = np.zeros(len(propagation) + 1)  # the last entry: padding, always 0
    initial = sets.gains(current, range(len(sets))).tolist()
    heap = [(-g, sets.top(i), i) for i, g in enumerate(initial)]
    heapq.heapify(heap)
    fresh_at = np.zeros(len(sets), dtype=np.int64)  # the step each entry's gain is from
    chosen: list[int] = []
    while heap and len(chosen) < budget:
        neg_gain, _, g = heap[0]
        if fresh_at[g] == len(chosen):
            heapq.heappop(heap)
            chosen.append(sets.take(g, current))
            if sets.top(g) is not None:  # its next item scores no higher: this bounds it
                heapq.heappush(heap, (neg_gain, sets.top(g), g))
            continue
        stale = [heapq.heappop(heap) for _ in range(min(REFRESH, len(heap)))]
        groups = [entry[2] for entry in stale]
        for entry, gain in zip(stale, sets.gains(current, groups).tolist(), strict=True):
            heapq.heappush(heap, (-gain, entry[1], entry[2]))
        fresh_at[groups] = len(chosen)
    return chosen


# Stale heap entries re-evaluated together (one vectorised pass instead of one each).
REFRESH = 32


class _LabelSets:
    """The distinct label sets of the items: each set's A @ e (padded rows of label
    indices and values) and its remaining items, best first."""

    def __init__(self, propagation: np.ndarray, item_labels, scores, exponent: float):
        self.exponent = exponent
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, labels in enumerate(item_labels):
            groups.setdefault(tuple(sorted(set(labels))), []).append(i)
        self.scores = np.asarray(scores, dtype=np.float64)
        # Each set's items as a stack popped from the end: score down, index up.
        self.stacks = [
            sorted(items, key=lambda i: (self.scores[i], -i)) for items in groups.values()
        ]
        pad = len(propagation)
        columns = [propagation[:, list(key)].sum(axis=1) if key else None for key in groups]
        supports = [np.flatnonzero(c) if c is not None else np.zeros(0, int) for c in columns]
        width = max((len(s) for s in supports), default=0) or 1
        self.idx = np.full((len(columns), width), pad, dtype=np.int64)
        self.values = np.zeros((len(columns), width))
        for g, (column, support) in enumerate(zip(columns, supports, strict=True)):
            self.idx[g, : len(support)] = support
            if column is not None:
                self.values[g, : len(support)] = column[support]

    def __len__(self) -> int:
        return len(self.stacks)

    def top(self, g: int) -> int | None:
        return self.stacks[g][-1] if self.stacks[g] else None

    def gains(self, current: np.ndarray, groups) -> np.ndarray:
        """The gain of each group's best remaining item on top of ``current``."""
        rows = np.asarray(list(groups), dtype=np.int64)
        tops = np.array([self.stacks[g][-1] for g in rows], dtype=np.int64)
        base = current[self.idx[rows]]
        added = self.values[rows] * self.scores[tops][:, None]
        return (np.power(base + added, self.exponent) - np.power(base, self.exponent)).sum(axis=1)

    def take(self, g: int, current: np.ndarray) -> int:
        item = self.stacks[g].pop()
        np.add.at(current, self.idx[g], self.values[g] * self.scores[item])
        current[-1] = 0.0
        return item


# --- from queries: labels, label graph, selection ------------------------------------


def query_labels(query: Query, kinds: Sequence[MigLabelKind]) -> list[str]:
    """The labels of a query: ``topic:<t>``, ``criterion:<name>`` (met), ``tag:<tag>``."""
    labels = []
    if MigLabelKind.topic in kinds and query.topic:
        labels.append(f"topic:{query.topic}")
    if MigLabelKind.criteria in kinds and query.criteria:
        labels += [f"criterion:{c}" for c, met in sorted(query.criteria.items()) if met]
    if MigLabelKind.tags in kinds:
        labels += [f"tag:{t}" for t in query.meta.get("tags", [])]
    return labels


def label_text(label: str) -> str:
    """What is embedded for a label: its name in words (``criterion:domain_knowledge`` ->
    ``domain knowledge``)."""
    return label.partition(":")[2].replace("_", " ").strip() or label


def quality(query: Query) -> float:
    """MIG's quality score: the difficulty score (criteria met); 1 when unlabelled."""
    return float(query.difficulty) if query.difficulty is not None else 1.0


@dataclass(frozen=True)
class MigResult:
    chosen: list[Query]  # in the order chosen
    labels: list[str]  # the label vocabulary
    information: float  # E of the chosen set
    covered_labels: int  # labels of the vocabulary some chosen query carries


def mig_select(
    queries: list[Query],
    budget: int,
    settings: MigConfig,
    embed: Callable[[list[str]], np.ndarray],
) -> MigResult:
    """Choose ``budget`` queries by MIG; ``embed`` maps texts to unit-length rows."""
    per_query = [query_labels(q, settings.labels) for q in queries]
    vocabulary = sorted({label for labels in per_query for label in labels})
    index = {label: i for i, label in enumerate(vocabulary)}
    vectors = embed([label_text(label) for label in vocabulary]) if vocabulary else None
    similarity = vectors @ vectors.T if vectors is not None else np.zeros((0, 0))
    propagation = propagation_matrix(similarity, settings.label_similarity, settings.alpha)
    item_labels = [[index[label] for label in labels] for labels in per_query]
    scores = [quality(q) for q in queries]
    chosen = greedy_select(propagation, item_labels, scores, budget, settings.phi_exponent)
    mass = label_mass([item_labels[i] for i in chosen], [scores[i] for i in chosen], len(index))
    covered = {label for i in chosen for label in item_labels[i]}
    return MigResult(
        chosen=[queries[i] for i in chosen],
        labels=vocabulary,
        information=information(propagation, mass, settings.phi_exponent),
        covered_labels=len(covered),
    )


# --- free-form tags (labels: tags) ---------------------------------------------------

_TAG_LINE = re.compile(r"^\s*tags\s*[:=]\s*(.+)$", re.IGNORECASE | re.MULTILINE)


def tags_prompt(query: str, max_tags: int) -> list[dict[str, str]]:
    text = render_template("mig_tags.j2", query=query, max_tags=max_tags)
    return [{"role": "user", "content": text}]


def parse_tags(text: str, max_tags: int) -> list[str] | None:
    """Up to ``max_tags`` normalised tags from a ``Tags: a, b, c`` line; None if absent."""
    match = _TAG_LINE.search(text)
    if not match:
        return None
    tags = []
    for raw in match.group(1).split(","):
        tag = re.sub(r"[^a-z0-9]+", "_", raw.strip().strip(".*`'\"").lower()).strip("_")
        if tag and tag not in tags:
            tags.append(tag)
    return tags[:max_tags] or None
