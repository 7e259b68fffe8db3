"""The optional STICK round of online sampling (Cook et al., 2024; ``online.refinement``).

The policy's samples that fail checklist items are revised by the policy itself with
the failed items as feedback (:mod:`bolt.rewards.refinement`), before scoring: the
revisions join the samples of their prompt, so the pair strategy chooses among
originals and revisions alike. ``refinement/part-NNNNN.jsonl.gz`` beside the samples
holds every version's lineage (round, parent, per-item p(Yes), failed items, pass rate),
one file per samples shard.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bolt.config import PipelineConfig, output_value
from bolt.engines.base import Engine
from bolt.records import Generation, Query
from bolt.rewards.refinement import refinement_stats
from bolt.rewards.refinement_live import refine_live
from bolt.rewards.verdicts import ENGINE_VERDICTS
from bolt.stages import Stage
from bolt.store import ArtifactStore, FileInfo


def refinement_payload(cfg: PipelineConfig) -> dict[str, Any]:
    """What the round adds to the samples fingerprint: nothing while it is off."""
    settings = cfg.online.refinement
    if settings is None:
        return {}
    payload: dict[str, Any] = {"refinement": output_value(settings)}
    if settings.judge_model is not None:
        payload["refinement_judge"] = cfg.models.catalog[settings.judge_model]
    else:  # the stage's engine judges: how its verdicts are read shapes the revisions
        payload["engine_verdicts"] = ENGINE_VERDICTS
    return payload


def refine_samples(
    cfg: PipelineConfig,
    store: ArtifactStore,
    fp: str,
    index: int,
    rows: list[Generation],
    queries: list[Query],
    engine: Callable[[], Engine],
) -> tuple[list[Generation], list[FileInfo], dict[str, Any]]:
    """(originals and revisions, the lineage file, the round's stats) of shard ``index``."""
    settings = cfg.online.refinement
    assert settings is not None
    versions, judge_counts = refine_live(
        cfg, settings, rows, {q.id: q for q in queries}, engine, sampling=cfg.online.sampling
    )
    lineage = store.put_records(
        Stage.online_samples, fp, f"refinement/part-{index:05d}.jsonl.gz", versions
    )
    generations = sorted(
        (v.generation for v in versions), key=lambda g: (g.query_id, g.sample_index)
    )
    return generations, [lineage], {**refinement_stats(versions), "judge": judge_counts}
