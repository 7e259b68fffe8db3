"""The optional STICK round of bootstrapping (Cook et al., 2024; ``bootstrap.refinement``).

After a shard's samples are written by the teacher, the teacher checks each against the
query's checklist and revises those that fail items, with the failed items as feedback
(:mod:`bolt.rewards.refinement`). The revision request continues the few-shot
conversation that produced the sample, so a revision is a LongCoT answer in the same
format (stopped at ``</response>``, guided like the originals where guided decoding is
on). The shard holds originals and revisions alike, each a ``Generation`` of its query,
so the filter's selection chooses among them; ``refinement/part-NNNNN.jsonl.gz`` holds
every version's lineage (round, parent, per-item p(Yes), failed items, pass rate).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from bolt.bootstrap.prompting import build_messages, choose_examples, longcot_regex, system_text
from bolt.config import PipelineConfig
from bolt.engines.base import Engine
from bolt.prompts import PROMPTS_DIR, LongCoTExample
from bolt.records import Generation, Query
from bolt.rewards.refinement import refinement_stats
from bolt.rewards.refinement_live import refine_live
from bolt.rewards.verdicts import ENGINE_VERDICTS
from bolt.stages import Stage
from bolt.store import ArtifactStore, FileInfo

TEMPLATES = ("checklist.j2", "checklist_judge.j2", "refinement.j2")


def refinement_payload(cfg: PipelineConfig) -> dict[str, Any]:
    """What the refinement round adds to the bootstrap fingerprint (nothing when off):
    the judge model's catalog entry and the digest of the prompts the round uses."""
    settings = cfg.bootstrap.refinement
    if settings is None:
        return {}
    text = "\n".join((PROMPTS_DIR / name).read_text(encoding="utf-8") for name in TEMPLATES)
    payload: dict[str, Any] = {"refinement_prompts": hashlib.sha256(text.encode()).hexdigest()[:16]}
    if settings.judge_model is not None:
        payload["refinement_judge"] = cfg.models.catalog[settings.judge_model]
    else:  # the stage's engine judges: how its verdicts are read shapes the revisions
        payload["engine_verdicts"] = ENGINE_VERDICTS
    return payload


def refine_shard(
    store: ArtifactStore,
    fp: str,
    index: int,
    queries: list[Query],
    cfg: PipelineConfig,
    examples: list[LongCoTExample],
    engine: Callable[[], Engine],
    records: list[Generation],
    context_length: int | None,
) -> tuple[list[Generation], dict[str, Any]]:
    """The shard's originals and revisions, and its meta (the lineage file, the stats)."""
    boot, settings = cfg.bootstrap, cfg.bootstrap.refinement
    assert settings is not None
    instruction = system_text()
    base = {
        q.id: build_messages(
            q.text, choose_examples(q.id, examples, boot.examples_per_prompt, cfg.seed), instruction
        )
        for q in queries
    }
    versions, judge_counts = refine_live(
        cfg,
        settings,
        records,
        {q.id: q for q in queries},
        engine,
        sampling=boot.sampling,
        base_messages=base,
        stop_at_response_close=True,
        guided_regex=longcot_regex(boot.guided_max_chars) if boot.guided_decoding else None,
        context_length=context_length,
    )
    lineage: FileInfo = store.put_records(
        Stage.bootstrap, fp, f"refinement/part-{index:05d}.jsonl.gz", versions
    )
    generations = sorted(
        (v.generation for v in versions), key=lambda g: (g.query_id, g.sample_index)
    )
    revisions = [v.generation for v in versions if v.round > 0]
    meta = {
        "refinement_file": lineage.model_dump(),
        "refinement": {**refinement_stats(versions), "judge": judge_counts},
        "refinement_output_tokens": sum(g.output_tokens for g in revisions),
    }
    return generations, meta
