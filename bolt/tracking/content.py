"""What a tracked run holds, whichever backend logs it: pure functions of the config and
the manifests (the store is asked for URIs and, for scores, their records only).

- params: the config, flattened to dotted keys (``sft.lr``), values as text;
- tags: the stage, fingerprint, store URI, code version and upstream fingerprints;
- metrics: records and shards, every count (``count.kept``, ``count.rejects.<reason>``),
  tokens, timings, the numeric stats, the eval scores per benchmark and metric, and the
  rewards of a scores output (mean, min, max; per backend);
- curves: the manifests' ``*_curve`` stats as metric histories by step (what a job
  logged live through the trainer's integration, kept for a run whose stage was cached);
- plots: the output's ``.png``/``.svg`` files and its markdown reports.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

from bolt.records import ScoredGeneration
from bolt.stages import Stage
from bolt.store import ArtifactStore, Manifest

# MLflow's limits (W&B has none this tight): key and value lengths of a param.
MAX_KEY = 250
MAX_VALUE = 6000
PLOT_SUFFIXES = (".png", ".svg")
REPORT_SUFFIXES = (".md",)
# Folders of model weights and checkpoints: never uploaded as tracking artifacts.
SKIPPED_PREFIXES = ("model/", "checkpoints/", "hf_dataset/")
SCORE_STAGES = (Stage.score, Stage.online_scores)
_UNSAFE = re.compile(r"[^0-9A-Za-z_\-. :/]")


def metric_key(key: str) -> str:
    """A key every backend accepts (MLflow: letters, digits, ``_-. :/``)."""
    return _UNSAFE.sub("_", key)[:MAX_KEY]


def flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Dotted keys of nested mappings; lists stay whole (one param, as JSON)."""
    if isinstance(value, Mapping) and value:
        for k, v in value.items():
            yield from flatten(v, f"{prefix}.{k}" if prefix else str(k))
    elif prefix:
        yield prefix, value


def as_param(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 3] + "..."


def params(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """A (resolved) config as flat params: ``{"sft.lr": "1e-05", ...}``."""
    return {metric_key(k): as_param(v) for k, v in flatten(config, prefix)}


def pipeline_params(config: Mapping[str, Any]) -> dict[str, str]:
    """The whole pipeline config, less the tracking section's own bookkeeping."""
    trimmed = {k: v for k, v in config.items() if k != "tracking"}
    return params(trimmed)


def stage_run_name(stage: str, fingerprint: str) -> str:
    return f"{stage}-{fingerprint[:10]}"


def stage_tags(store: ArtifactStore, manifest: Manifest) -> dict[str, str]:
    tags = {
        "bolt.stage": str(manifest.stage),
        "bolt.fingerprint": manifest.fingerprint,
        "bolt.store_uri": store.uri(manifest.stage, manifest.fingerprint),
        "bolt.code_version": manifest.code_version,
        "bolt.version": manifest.bolt_version,
        "bolt.created_at": manifest.created_at,
    }
    tags |= {metric_key(f"bolt.upstream.{k}"): v for k, v in sorted(manifest.upstream.items())}
    if isinstance(manifest.config.get("iteration"), int):
        tags["bolt.iteration"] = str(manifest.config["iteration"])
    return tags


def stage_params(manifest: Manifest) -> dict[str, str]:
    """The stage's resolved config (``config.*``), its fingerprint and upstream ones."""
    found = params(manifest.config, "config")
    found["fingerprint"] = manifest.fingerprint
    found |= {metric_key(f"upstream.{k}"): v for k, v in sorted(manifest.upstream.items())}
    return found


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _is_curve(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(p, list | tuple) and len(p) == 2 for p in value)
    )


def eval_metrics(stats: Mapping[str, Any]) -> dict[str, float]:
    """``eval.<benchmark>.<metric>`` per benchmark summary of an eval output."""
    found = {}
    for summary in stats.get("summaries") or []:
        for metric, value in (summary.get("metrics") or {}).items():
            if (number := _number(value)) is not None:
                found[metric_key(f"eval.{summary['benchmark']}.{metric}")] = number
    return found


def stat_metrics(stats: Mapping[str, Any]) -> dict[str, float]:
    """Numeric stats (nested mappings dotted) as ``stat.*``; curves and tables excluded."""
    found = {}
    for key, value in flatten({k: v for k, v in stats.items() if k != "summaries"}):
        if (number := _number(value)) is not None:
            found[metric_key(f"stat.{key}")] = number
    return found


def reward_metrics(store: ArtifactStore, manifest: Manifest) -> dict[str, float]:
    """The rewards of a scores output (its manifest holds counts only): the weighted
    reward's mean, min and max, and each backend's mean."""
    if manifest.stage not in SCORE_STAGES:
        return {}
    rows = list(store.read_records(manifest, ScoredGeneration))
    if not rows:
        return {}
    rewards = [r.reward for r in rows]
    found = {
        "reward.mean": sum(rewards) / len(rewards),
        "reward.min": min(rewards),
        "reward.max": max(rewards),
        "reward.scored": float(len(rows)),
    }
    backends: dict[str, list[float]] = {}
    for row in rows:
        for name, value in row.rewards.items():
            backends.setdefault(name, []).append(value)
    for name, values in sorted(backends.items()):
        found[metric_key(f"reward.{name}.mean")] = sum(values) / len(values)
    return found


def stage_metrics(store: ArtifactStore, manifest: Manifest) -> dict[str, float]:
    found = {"records": float(manifest.records), "shards": float(len(manifest.shards))}
    for group, values in (
        ("count", manifest.counts),
        ("tokens", manifest.tokens),
        ("seconds", manifest.timings),
    ):
        for key, value in values.items():
            if (number := _number(value)) is not None:
                found[metric_key(f"{group}.{key}")] = number
    found |= stat_metrics(manifest.stats)
    found |= eval_metrics(manifest.stats)
    found |= reward_metrics(store, manifest)
    return found


def stage_curves(manifest: Manifest) -> dict[str, list[tuple[int, float]]]:
    """``loss_curve: [[step, loss], ...]`` and its kind, as ``curve.loss`` by step."""
    curves = {}
    for key, value in manifest.stats.items():
        if key.endswith("_curve") and _is_curve(value):
            points = [(int(s), float(v)) for s, v in value if _number(v) is not None]
            curves[metric_key(f"curve.{key.removesuffix('_curve')}")] = points
    return curves


def parent_metrics(manifest: Manifest) -> dict[str, float]:
    """What the pipeline run shows at a glance: each evaluated model's scores
    (``<model>.<benchmark>.<metric>``)."""
    found = {}
    for summary in manifest.stats.get("summaries") or []:
        for metric, value in (summary.get("metrics") or {}).items():
            if (number := _number(value)) is not None:
                key = f"{summary.get('model', 'model')}.{summary['benchmark']}.{metric}"
                found[metric_key(key)] = number
    return found


def artifact_files(manifest: Manifest) -> list[str]:
    """The output's plots and markdown reports (never weights, checkpoints, data)."""
    return [
        f.path
        for f in manifest.files
        if f.path.endswith(PLOT_SUFFIXES + REPORT_SUFFIXES)
        and not f.path.startswith(SKIPPED_PREFIXES)
    ]
