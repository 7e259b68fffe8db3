"""The curation stage: sources -> dedup -> difficulty -> topics -> balance -> queries.

Resumable in three steps (four with synthetic sources, whose queries are generated
first, shard by shard, as ``data-generated``: ``bolt.curation.generation``): the
candidates (every source read, deduplicated, shuffled) are committed once as
``data-candidates``; their labels are made shard by shard
(``bolt.curation.labelling``, ``data.shard_size`` queries each) as ``data-labels``;
then balancing and selection commit the output. Sources enter the fingerprint by
content (``bolt.source_digests``).

Sources are files and, when configured, models (Magpie, Instruct-SkillMix); dedup is
MinHash and, when configured, semantic near-duplicates; the kept set is the first
``max_queries`` of the seeded shuffle or MIG's choice (``bolt.curation.methods``).

Output (``data/<fingerprint>/``): the kept queries as shards, ``rejects.jsonl.gz``
with every row set aside and why (bad rows, duplicates, unparsable labels, too easy,
over a topic cap), ``topics.png`` (the mix before and after balancing), the skills
lists SkillMix extracted (``skills/<source>.jsonl``) and counts.
"""

from __future__ import annotations

import random
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from bolt import decontamination
from bolt.config import PipelineConfig, QuerySource
from bolt.curation import generation, labelling, methods
from bolt.curation.balance import balance, topic_counts
from bolt.curation.dedup import deduplicate
from bolt.curation.embeddings import Embedder
from bolt.curation.sources import SourceRow, read_source, row_to_query
from bolt.engines.base import Engine
from bolt.fingerprint import fingerprint
from bolt.plots import grouped_bars
from bolt.records import Query, Reject
from bolt.sharding import ShardPlan, ShardRunner, in_process, plan_shards, run_sharded
from bolt.sharding import run_shard as run_one_shard
from bolt.source_digests import SourceDigests
from bolt.stages import Stage
from bolt.store import ArtifactStore, FileInfo, Manifest, ShardInfo

CODE_VERSION = "1"
QUERIES_PER_SHARD = 4096


def curation_fingerprint(cfg: PipelineConfig, digests: SourceDigests | None = None) -> str:
    """The curation output's name; ``digests`` identify the sources' content (default:
    :meth:`SourceDigests.of_config`, which HEADs ``s3://`` sources)."""
    labeler = cfg.models.catalog[cfg.data.labeler_model]
    digests = digests or SourceDigests.of_config(cfg)
    return fingerprint(
        Stage.curation,
        {
            "data": cfg.data,
            "labeler": labeler,
            "seed": cfg.seed,
            **methods.fingerprint_payload(cfg),
            **decontamination.fingerprint_payload(cfg),
        },
        upstream=digests.upstream(cfg.data.sources),
        code_version=CODE_VERSION,
    )


def run_curation(
    cfg: PipelineConfig,
    store: ArtifactStore,
    engine: Callable[[], Engine],
    context_length: int | None = None,
    engine_for: generation.EngineFor | None = None,
    contamination: decontamination.NgramIndex | None = None,
    run_shards: ShardRunner[Query] = in_process,
) -> Manifest:
    """Curate the configured sources; ``engine`` is called only if an LLM is needed.

    ``context_length`` is the labeller's: a query whose labelling prompt would not fit
    is set aside (it could not be bootstrapped by a model of that size either).
    ``engine_for(model)`` gives the engine of a synthetic source's model.
    ``contamination``: the evaluated benchmarks' n-gram index, needed while
    ``data.decontamination`` is on (``bolt.evals.contamination.index_for``).
    Three resumable steps (``bolt.curation.labelling``): the candidates, committed once;
    their labels, shard by shard through ``run_shards``; the balanced set, committed.
    """
    contamination = decontamination.required(cfg, contamination)
    fp = curation_fingerprint(cfg)
    if (done := store.manifest(Stage.curation, fp)) is not None:
        return done
    candidates = run_candidates(cfg, store, fp, engine_for, contamination)
    labels = run_labels(cfg, store, candidates, engine, context_length, run_shards)
    return commit_curation(cfg, store, candidates, labels)


def run_candidates(
    cfg: PipelineConfig,
    store: ArtifactStore,
    fp: str,
    engine_for: generation.EngineFor | None,
    contamination: decontamination.NgramIndex | None,
) -> Manifest:
    """The queries to label, committed under the curation fingerprint ``fp``: every
    source read, synthetic ones generated (shard by shard, ``bolt.curation.generation``;
    those the flow's tasks made are found by their receipts), deduplicated,
    decontaminated, in the seeded order."""
    if (done := store.manifest(Stage.curation_candidates, fp)) is not None:
        return done
    synthetic = cfg.data.synthetic_sources
    generated = generation.run_generation(cfg, store, fp, engine_for) if synthetic else []
    started = time.time()
    rejects: list[Reject] = []
    queries = _read_all(cfg.data.sources, cfg, rejects)
    made, bad = generation.generated(store, fp, generated)
    queries += made
    rejects += bad
    files = generation.copy_skills(cfg, store, fp)
    read_count = len(queries)
    queries = _deduplicate(cfg, queries, methods.embedder_of(cfg), rejects)
    queries = _decontaminate(queries, contamination, rejects)
    random.Random(cfg.seed).shuffle(queries)
    shards = [
        store.write_shard(Stage.curation_candidates, fp, plan.index, plan.items)
        for plan in plan_shards(queries, QUERIES_PER_SHARD, empty_shard=True)
    ]
    files.append(store.put_records(Stage.curation_candidates, fp, "rejects.jsonl.gz", rejects))
    return store.commit(
        Manifest(
            stage=Stage.curation_candidates,
            fingerprint=fp,
            code_version=CODE_VERSION,
            config=cfg.data.model_dump(mode="json"),
            upstream=SourceDigests.of_config(cfg).upstream(cfg.data.sources),
            shards=shards,
            files=files,
            counts={"read": read_count, "candidates": len(queries), "rejected": len(rejects)},
            # The generation shards' own seconds: they may have run as tasks of their own.
            timings={"seconds": round(time.time() - started + _seconds(generated), 3)},
            stats={"needs_fitting": labelling.needs_fitting(cfg, queries)},
        )
    )


def label_plans(cfg: PipelineConfig, store: ArtifactStore, candidates: Manifest) -> list:
    return plan_shards(list(store.read_records(candidates, Query)), cfg.data.shard_size)


def run_labels(
    cfg: PipelineConfig,
    store: ArtifactStore,
    candidates: Manifest,
    engine: Callable[[], Engine],
    context_length: int | None,
    run_shards: ShardRunner[Query] = in_process,
) -> list[ShardInfo]:
    """The labels shards' receipts, in order: those stored before, and the rest made
    through ``run_shards`` (the flow's: one Prefect task per shard)."""
    fp = candidates.fingerprint
    work = labelling.label_work(cfg, store, fp, candidates, engine, context_length)
    plans = label_plans(cfg, store, candidates)
    return run_sharded(store, Stage.curation_labels, fp, plans, work, run_shards)


def run_label_shard(
    cfg: PipelineConfig,
    store: ArtifactStore,
    plan: ShardPlan[Query],
    candidates: Manifest,
    engine: Callable[[], Engine],
    context_length: int | None,
) -> ShardInfo:
    """One labels shard task's body: its receipt if it finished before, else label it."""
    fp = candidates.fingerprint
    work = labelling.label_work(cfg, store, fp, candidates, engine, context_length)
    return run_one_shard(store, Stage.curation_labels, fp, plan, work)


def commit_curation(
    cfg: PipelineConfig, store: ArtifactStore, candidates: Manifest, labels: list[ShardInfo]
) -> Manifest:
    """Balance and select the labelled queries; the shards, rejects, plot and manifest."""
    data, fp = cfg.data, candidates.fingerprint
    queries = [q for s in labels for q in store.read_shard(Stage.curation_labels, fp, s, Query)]
    rejects = list(store.read_file_records(candidates, "rejects.jsonl.gz", Reject))
    rejects += labelling.merged_rejects(store, fp, labels)
    before = topic_counts(queries)
    balanced = balance(
        queries, data.balance, cap=data.topic_cap, shares=data.topic_shares, total=data.max_queries
    )
    balanced, left_out = methods.select(cfg, balanced, methods.embedder_of(cfg))
    kept_ids = {q.id for q in balanced}
    rejects += [_reject(q, left_out) for q in queries if q.id not in kept_ids]
    after = topic_counts(balanced)
    shards = [
        store.write_shard(Stage.curation, fp, plan.index, plan.items)
        for plan in plan_shards(balanced, QUERIES_PER_SHARD, empty_shard=True)
    ]
    files = _copied_skills(store, candidates)
    files.append(store.put_records(Stage.curation, fp, "rejects.jsonl.gz", rejects))
    mix = {"before balancing": before, "after": after}
    files.append(
        store.put_plot(
            Stage.curation, fp, "topics.png", lambda path: grouped_bars(path, "topic mix", mix)
        )
    )
    reasons = Counter(r.reason for r in rejects)
    seconds = candidates.timings.get("seconds", 0.0) + _seconds(labels)
    return store.commit(
        Manifest(
            stage=Stage.curation,
            fingerprint=fp,
            code_version=CODE_VERSION,
            config=cfg.data.model_dump(mode="json"),
            upstream=candidates.upstream,
            shards=shards,
            files=files,
            counts={
                "read": candidates.counts["read"],
                "kept": len(balanced),
                "rejected": len(rejects),
                "contaminated": sum(r.reason.startswith("contaminated:") for r in rejects),
                **{f"rejected.{k}": v for k, v in reasons.items()},
            },
            timings={"seconds": round(seconds, 3)},
            stats={"topics_before": before, "topics_after": after},
        )
    )


def _copied_skills(store: ArtifactStore, candidates: Manifest) -> list[FileInfo]:
    """The skills lists SkillMix extracted, from the candidates into the curation output."""
    files = []
    with tempfile.TemporaryDirectory() as tmp:
        for info in candidates.files:
            if info.path.startswith("skills/"):
                local = store.get_file(candidates, info.path, Path(tmp) / Path(info.path).name)
                files.append(
                    store.put_file(Stage.curation, candidates.fingerprint, info.path, local)
                )
    return files


def _seconds(shards: list[ShardInfo]) -> float:
    return sum(s.meta.get("seconds", 0) for s in shards)


def _decontaminate(
    queries: list[Query], index: decontamination.NgramIndex | None, rejects: list[Reject]
) -> list[Query]:
    """Queries that share an n-gram with a benchmark prompt become ``contaminated:<b>``
    rejects (``bolt.decontamination``; on by default)."""
    kept, contaminated = decontamination.decontaminate(
        queries,
        index,
        text=lambda q: q.text,
        reject=lambda q, m: _reject(q, m.reason, decontamination.match_detail(m)),
    )
    rejects += contaminated
    return kept


def _deduplicate(
    cfg: PipelineConfig, queries: list[Query], embedder: Embedder | None, rejects: list[Reject]
) -> list[Query]:
    """MinHash (exact and near copies), then semantic near-duplicates when configured."""
    data = cfg.data
    deduped = deduplicate(queries, data.near_dup_threshold, data.minhash_perm)
    for reason, pairs in (
        ("exact_duplicate", deduped.exact_duplicates),
        ("near_duplicate", deduped.near_duplicates),
    ):
        rejects += [_reject(q, reason, f"duplicate of {kept}") for q, kept in pairs]
    kept, semantic = methods.remove_semantic_duplicates(cfg, deduped.kept, embedder)
    rejects += semantic
    return kept


def _read_all(
    sources: list[QuerySource], cfg: PipelineConfig, rejects: list[Reject]
) -> list[Query]:
    queries = []
    for source in sources:
        for item in read_source(source, cfg.storage.s3):
            mapped = row_to_query(item, source) if isinstance(item, SourceRow) else item
            (queries if isinstance(mapped, Query) else rejects).append(mapped)
    return queries


_reject = labelling.reject
