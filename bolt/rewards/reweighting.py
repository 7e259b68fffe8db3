"""RocketEval's supervised reweighting of checklist answers (Wei et al., ICLR 2025, §3.3).

A lightweight judge's checklist answers (the p(Yes) of each item) say more than their
mean once they are weighed against a reference judge: per query, RocketEval fits a small
ExtraTrees regressor (10 trees of depth 2) from the item answers of the training
responses to the reference judge's scores, and blends its prediction with the unweighted
mean by a weight that grows with how spread the training scores are,

    w = (KL_max - KL(hist(scores) || uniform)) / KL_max,   KL_max = log K,

i.e. the normalised entropy of the score histogram over the K points of the scale: a
query whose training answers all got the same score teaches nothing (w = 0, the mean
is used) and one whose scores cover the scale evenly is trusted fully (w = 1).

Here scores are mapped to [0, 1] (``score_range``), so a reweighted item scores in the
same range as the mean. The fit (``fit_weights``, scikit-learn) writes one JSON artifact:
per query id its checklist, the trees (sklearn's arrays, so scoring needs no sklearn and
reproduces ``predict``), the normalised feature importances as readable item weights,
the blend weight and the number of training rows. A query without its own entry uses the
``pooled`` entry when the artifact has one (a BOLT addition, not in the paper: one model
over item positions of all training queries, for data with one answer per query such as
a single run of MT-Bench), else the mean. Weights fitted on another checklist than the
one an item is scored with are not applied (``stale``): the mean is used and counted.

    python -m bolt.rewards.reweighting --table rows.jsonl --out weights.json [--pooled]

where each row of ``rows.jsonl`` is ``{"query_id", "questions", "p_yes", "score"}``.
"""

from __future__ import annotations

import argparse
import json
import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "bolt.checklist_weights/1"
N_ESTIMATORS, MAX_DEPTH = 10, 2  # RocketEval's ExtraTreesRegressor
POOLED_WIDTH = 8  # items of a pooled row: bolt.rewards.checklist.MAX_QUESTIONS


@dataclass(frozen=True)
class FitRow:
    """One training response: its query, the checklist it was judged on, the judge's
    p(Yes) per item and the reference judge's score (on ``score_range``)."""

    query_id: str
    questions: tuple[str, ...]
    p_yes: tuple[float, ...]
    score: float


@dataclass(frozen=True)
class Tree:
    """One fitted regression tree as sklearn stores it (``tree_``); leaves have left == -1."""

    feature: tuple[int, ...]
    threshold: tuple[float, ...]
    left: tuple[int, ...]
    right: tuple[int, ...]
    value: tuple[float, ...]

    def predict(self, x: Sequence[float]) -> float:
        node = 0
        while self.left[node] != -1:
            # sklearn compares float32 inputs against its thresholds.
            below = float(np.float32(x[self.feature[node]])) <= self.threshold[node]
            node = self.left[node] if below else self.right[node]
        return self.value[node]


@dataclass(frozen=True)
class QueryWeights:
    """The reweighting of one query's checklist (``questions`` is None when pooled)."""

    questions: tuple[str, ...] | None
    weights: tuple[float, ...]
    blend: float
    trees: tuple[Tree, ...]
    n_train: int

    def predict(self, features: Sequence[float]) -> float:
        """The forest's score in [0, 1]: the mean of its trees, as ``predict`` gives."""
        value = sum(tree.predict(features) for tree in self.trees) / len(self.trees)
        return min(1.0, max(0.0, value))

    def score(self, features: Sequence[float], p_yes: Sequence[float]) -> float:
        return blend(self.predict(features), mean(p_yes), self.blend)


@dataclass(frozen=True)
class ChecklistWeights:
    """The artifact: reweightings by query id, an optional pooled one, the score scale."""

    score_range: tuple[float, float]
    queries: dict[str, QueryWeights]
    pooled: QueryWeights | None = None

    def score(
        self, query_id: str | None, questions: Sequence[str], p_yes: Sequence[float]
    ) -> tuple[float, str]:
        """(score in [0, 1], which weights gave it: query, pooled, stale or mean)."""
        entry = self.queries.get(query_id) if query_id is not None else None
        if entry is not None:
            if entry.questions != tuple(questions):
                return mean(p_yes), "stale"
            return entry.score(p_yes, p_yes), "query"
        if self.pooled is not None:
            return self.pooled.score(pooled_features(p_yes), p_yes), "pooled"
        return mean(p_yes), "mean"


def mean(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("a checklist score needs at least one answered item")
    return sum(values) / len(values)


def blend(supervised: float, unweighted: float, weight: float) -> float:
    """RocketEval's final score: ``weight * supervised + (1 - weight) * unweighted``."""
    return weight * supervised + (1.0 - weight) * unweighted


def kl_blend_weight(scores: Sequence[float], num_classes: int) -> float:
    """``(KL_max - KL(hist || uniform)) / KL_max`` over ``num_classes`` bins (see above)."""
    if num_classes < 2 or not scores:
        return 0.0
    counts = Counter(scores).values()
    if len(counts) > num_classes:
        raise ValueError(f"{len(counts)} distinct scores on a scale of {num_classes} points")
    total = sum(counts)
    kl = sum(c / total * math.log(c / total * num_classes) for c in counts)
    kl_max = math.log(num_classes)
    return max(0.0, min(1.0, (kl_max - kl) / kl_max))


def pooled_features(p_yes: Sequence[float], width: int = POOLED_WIDTH) -> list[float]:
    """A fixed-width row of item answers: the first ``width``, padded with their mean."""
    row = list(p_yes[:width])
    return row + [mean(p_yes)] * (width - len(row))


def fit_query(
    rows: Sequence[Sequence[float]],
    scores: Sequence[float],
    *,
    questions: tuple[str, ...] | None,
    num_classes: int,
    seed: int = 42,
) -> QueryWeights:
    """ExtraTrees from item answers to scores already in [0, 1], and its blend weight.

    ``num_classes`` is the number of points of the reference scale (10 for 1-10); the
    blend weight reads the histogram of the scores on it.
    """
    from sklearn.ensemble import ExtraTreesRegressor

    x, y = np.asarray(rows, dtype=float), np.asarray(scores, dtype=float)
    model = ExtraTreesRegressor(n_estimators=N_ESTIMATORS, max_depth=MAX_DEPTH, random_state=seed)
    model.fit(x, y)
    importances = np.nan_to_num(model.feature_importances_)
    total = float(importances.sum())
    weights = importances / total if total > 0 else np.full(x.shape[1], 1.0 / x.shape[1])
    trees = tuple(_tree(estimator.tree_) for estimator in model.estimators_)
    return QueryWeights(
        questions=questions,
        weights=tuple(round(float(w), 6) for w in weights),
        blend=kl_blend_weight([round(s * (num_classes - 1)) for s in scores], num_classes),
        trees=trees,
        n_train=len(scores),
    )


def _tree(tree: Any) -> Tree:
    return Tree(
        feature=tuple(int(f) for f in tree.feature),
        threshold=tuple(float(t) for t in tree.threshold),
        left=tuple(int(c) for c in tree.children_left),
        right=tuple(int(c) for c in tree.children_right),
        value=tuple(float(v) for v in tree.value[:, 0, 0]),
    )


def fit_weights(
    rows: Sequence[FitRow],
    score_range: tuple[float, float] = (1.0, 10.0),
    *,
    pooled: bool = False,
    min_rows: int = 2,
    seed: int = 42,
) -> ChecklistWeights:
    """The ``fit`` step: one reweighting per query with at least ``min_rows`` training
    rows (RocketEval), and with ``pooled`` one more over every row's item positions."""
    low, high = score_range
    if high <= low:
        raise ValueError(f"score_range {score_range} must rise")
    num_classes = round(high - low) + 1
    bad = [r for r in rows if not low <= r.score <= high or len(r.p_yes) != len(r.questions)]
    if bad:
        raise ValueError(
            f"{len(bad)} row(s) with a score outside {score_range} or answers that do not "
            f"match their questions, e.g. query {bad[0].query_id!r}"
        )
    by_query: dict[str, list[FitRow]] = defaultdict(list)
    for row in rows:
        by_query[row.query_id].append(row)
    queries = {}
    for query_id, group in sorted(by_query.items()):
        if len({r.questions for r in group}) > 1:
            raise ValueError(f"query {query_id!r}: its training rows use different checklists")
        if len(group) >= min_rows:
            queries[query_id] = fit_query(
                [r.p_yes for r in group],
                [(r.score - low) / (high - low) for r in group],
                questions=group[0].questions,
                num_classes=num_classes,
                seed=seed,
            )
    pooled_entry = None
    if pooled and len(rows) >= min_rows:
        pooled_entry = fit_query(
            [pooled_features(r.p_yes) for r in rows],
            [(r.score - low) / (high - low) for r in rows],
            questions=None,
            num_classes=num_classes,
            seed=seed,
        )
    return ChecklistWeights(score_range=(low, high), queries=queries, pooled=pooled_entry)


# ------------------------------------------------------------------ the artifact


def to_json(weights: ChecklistWeights) -> dict[str, Any]:
    def entry(q: QueryWeights) -> dict[str, Any]:
        return {
            "questions": list(q.questions) if q.questions is not None else None,
            "weights": list(q.weights),
            "blend": q.blend,
            "n_train": q.n_train,
            "trees": [
                {
                    "feature": list(t.feature),
                    "threshold": list(t.threshold),
                    "left": list(t.left),
                    "right": list(t.right),
                    "value": list(t.value),
                }
                for t in q.trees
            ],
        }

    return {
        "format": FORMAT,
        "method": "rocketeval_extra_trees",
        "score_range": list(weights.score_range),
        "queries": {k: entry(v) for k, v in sorted(weights.queries.items())},
        "pooled": entry(weights.pooled) if weights.pooled is not None else None,
    }


def from_json(data: dict[str, Any]) -> ChecklistWeights:
    if data.get("format") != FORMAT:
        raise ValueError(f"not a checklist weights file (format {data.get('format')!r})")

    def entry(raw: dict[str, Any]) -> QueryWeights:
        questions = raw["questions"]
        return QueryWeights(
            questions=tuple(questions) if questions is not None else None,
            weights=tuple(raw["weights"]),
            blend=float(raw["blend"]),
            trees=tuple(Tree(**{k: tuple(v) for k, v in t.items()}) for t in raw["trees"]),
            n_train=int(raw["n_train"]),
        )

    low, high = data["score_range"]
    return ChecklistWeights(
        score_range=(float(low), float(high)),
        queries={k: entry(v) for k, v in data["queries"].items()},
        pooled=entry(data["pooled"]) if data.get("pooled") else None,
    )


def write_weights(weights: ChecklistWeights, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_json(weights), indent=1) + "\n", encoding="utf-8")
    return path


def load_weights(uri: str, s3: Any = None) -> ChecklistWeights:
    """The artifact at a local path, ``file://`` path or ``s3://bucket/key``."""
    if uri.startswith("s3://"):
        from bolt.store_backends import backend_for

        folder, _, name = uri.rpartition("/")
        raw = backend_for(folder, s3).get_bytes(name).decode("utf-8")
    else:
        raw = Path(uri.removeprefix("file://")).expanduser().read_text(encoding="utf-8")
    try:
        return from_json(json.loads(raw))
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{uri}: not a valid checklist weights file: {err}") from err


def read_fit_rows(path: Path) -> list[FitRow]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            raw = json.loads(line)
            rows.append(
                FitRow(
                    query_id=str(raw["query_id"]),
                    questions=tuple(raw["questions"]),
                    p_yes=tuple(float(p) for p in raw["p_yes"]),
                    score=float(raw["score"]),
                )
            )
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fit RocketEval checklist item weights.")
    parser.add_argument("--table", type=Path, required=True, help="JSONL of fit rows")
    parser.add_argument("--out", type=Path, required=True, help="weights JSON to write")
    parser.add_argument("--score-range", type=float, nargs=2, default=(1.0, 10.0))
    parser.add_argument("--pooled", action="store_true", help="also fit the pooled entry")
    parser.add_argument("--min-rows", type=int, default=2)
    args = parser.parse_args(argv)
    weights = fit_weights(
        read_fit_rows(args.table),
        tuple(args.score_range),
        pooled=args.pooled,
        min_rows=args.min_rows,
    )
    write_weights(weights, args.out)
    print(f"{args.out}: {len(weights.queries)} queries, pooled={weights.pooled is not None}")


if __name__ == "__main__":
    main()
