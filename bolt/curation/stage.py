"""The curation stage: sources -> dedup -> difficulty -> topics -> balance -> queries.

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
from bolt.config import PipelineConfig, QuerySource, SamplingConfig
from bolt.config.data import MigLabelKind, QuerySelection
from bolt.curation import methods
from bolt.curation.balance import balance, topic_counts
from bolt.curation.dedup import deduplicate
from bolt.curation.embeddings import Embedder
from bolt.curation.labels import (
    CRITERIA,
    criteria_regex,
    difficulty_prompt,
    parse_criteria,
    parse_topic,
    topic_prompt,
    topic_regex,
)
from bolt.curation.sources import SourceRow, read_source, row_to_query
from bolt.engines.base import ChatRequest, Engine
from bolt.fingerprint import fingerprint
from bolt.plots import grouped_bars
from bolt.records import Query, Reject
from bolt.stages import Stage
from bolt.store import ArtifactStore, Manifest, sha256_file

CODE_VERSION = "1"
QUERIES_PER_SHARD = 4096
# Labels are short, deterministic answers: greedy decoding, a few dozen tokens.
LABEL_SAMPLING = SamplingConfig(n=1, temperature=0.0, max_new_tokens=96, seed=0)


def source_digest(source: QuerySource) -> str:
    """What identifies a source's content: the file's sha256 when local, else its URI."""
    path = Path(source.uri)
    return sha256_file(path) if path.is_file() else source.uri


def curation_fingerprint(cfg: PipelineConfig) -> str:
    labeler = cfg.models.catalog[cfg.data.labeler_model]
    return fingerprint(
        Stage.curation,
        {
            "data": cfg.data,
            "labeler": labeler,
            "seed": cfg.seed,
            **methods.fingerprint_payload(cfg),
            **decontamination.fingerprint_payload(cfg),
        },
        upstream={f"source:{s.name}": source_digest(s) for s in cfg.data.sources},
        code_version=CODE_VERSION,
    )


def run_curation(
    cfg: PipelineConfig,
    store: ArtifactStore,
    engine: Callable[[], Engine],
    context_length: int | None = None,
    engine_for: methods.EngineFor | None = None,
    contamination: decontamination.NgramIndex | None = None,
) -> Manifest:
    """Curate the configured sources; ``engine`` is called only if an LLM is needed.

    ``context_length`` is the labeller's: a query whose labelling prompt would not fit
    is set aside (it could not be bootstrapped by a model of that size either).
    ``engine_for(model)`` gives the engine of a synthetic source's model.
    ``contamination``: the evaluated benchmarks' n-gram index, needed while
    ``data.decontamination`` is on (``bolt.evals.contamination.index_for``).
    """
    contamination = decontamination.required(cfg, contamination)
    fp = curation_fingerprint(cfg)
    if (done := store.manifest(Stage.curation, fp)) is not None:
        return done
    started = time.time()
    data = cfg.data
    rejects: list[Reject] = []
    files = []

    queries = _read_all(data.sources, cfg, rejects)
    if data.synthetic_sources:
        generated, files = _generate(cfg, store, fp, engine_for, rejects)
        queries += generated
    read_count = len(queries)
    embedder = methods.embedder_of(cfg)
    queries = _deduplicate(cfg, queries, embedder, rejects)
    queries = _decontaminate(queries, contamination, rejects)
    random.Random(cfg.seed).shuffle(queries)
    queries = _label(cfg, queries, engine, context_length, rejects)

    before = topic_counts(queries)
    balanced = balance(
        queries, data.balance, cap=data.topic_cap, shares=data.topic_shares, total=data.max_queries
    )
    balanced, left_out = methods.select(cfg, balanced, embedder)
    kept_ids = {q.id for q in balanced}
    rejects += [_reject(q, left_out) for q in queries if q.id not in kept_ids]
    after = topic_counts(balanced)

    shards = [
        store.write_shard(Stage.curation, fp, i, balanced[start : start + QUERIES_PER_SHARD])
        for i, start in enumerate(range(0, max(1, len(balanced)), QUERIES_PER_SHARD))
    ]
    files.append(store.put_records(Stage.curation, fp, "rejects.jsonl.gz", rejects))
    mix = {"before balancing": before, "after": after}
    files.append(
        store.put_plot(
            Stage.curation, fp, "topics.png", lambda path: grouped_bars(path, "topic mix", mix)
        )
    )
    reasons = Counter(r.reason for r in rejects)
    return store.commit(
        Manifest(
            stage=Stage.curation,
            fingerprint=fp,
            code_version=CODE_VERSION,
            config=cfg.data.model_dump(mode="json"),
            upstream={f"source:{s.name}": source_digest(s) for s in data.sources},
            shards=shards,
            files=files,
            counts={
                "read": read_count,
                "kept": len(balanced),
                "rejected": len(rejects),
                "contaminated": sum(r.reason.startswith("contaminated:") for r in rejects),
                **{f"rejected.{k}": v for k, v in reasons.items()},
            },
            timings={"seconds": round(time.time() - started, 3)},
            stats={"topics_before": before, "topics_after": after},
        )
    )


def _generate(
    cfg: PipelineConfig,
    store: ArtifactStore,
    fp: str,
    engine_for: methods.EngineFor | None,
    rejects: list[Reject],
) -> tuple[list[Query], list]:
    """The synthetic sources' queries; the skills lists extracted are stored beside."""
    if engine_for is None:
        raise ValueError("data.synthetic_sources needs engines: pass run_curation engine_for")
    with tempfile.TemporaryDirectory() as tmp:
        queries, bad = methods.synthetic_queries(cfg, engine_for, Path(tmp))
        files = [
            store.put_file(Stage.curation, fp, f"skills/{path.name}", path)
            for path in sorted(Path(tmp).glob("*.jsonl"))
        ]
    rejects += bad
    return queries, files


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


def _label(
    cfg: PipelineConfig,
    queries: list[Query],
    engine: Callable[[], Engine],
    context_length: int | None,
    rejects: list[Reject],
) -> list[Query]:
    """Difficulty criteria, topics and (MIG with tags) free-form tags from the labeller."""
    data = cfg.data
    if data.difficulty_filter or any(q.topic is None for q in queries):
        queries = _fitting(queries, engine(), context_length, rejects)
    if data.difficulty_filter:
        queries = _label_difficulty(
            queries, engine(), data.difficulty_threshold, data.guided_labels, rejects
        )
    if any(q.topic is None for q in queries):
        queries = _label_topics(queries, engine(), data.topics, data.guided_labels, rejects)
    if data.selection == QuerySelection.mig and MigLabelKind.tags in data.mig_settings.labels:
        queries = methods.label_tags(queries, engine(), data.mig_settings.max_tags, rejects)
    return queries


def _read_all(
    sources: list[QuerySource], cfg: PipelineConfig, rejects: list[Reject]
) -> list[Query]:
    queries = []
    for source in sources:
        for item in read_source(source, cfg.storage.s3):
            mapped = row_to_query(item, source) if isinstance(item, SourceRow) else item
            (queries if isinstance(mapped, Query) else rejects).append(mapped)
    return queries


def _reject(query: Query, reason: str, detail: str | None = None) -> Reject:
    return Reject(
        stage=Stage.curation, reason=reason, source=query.id, raw=query.text[:2000], detail=detail
    )


def _fitting(
    queries: list[Query], engine: Engine, context_length: int | None, rejects: list[Reject]
) -> list[Query]:
    if not context_length:
        return queries
    kept = []
    for query in queries:
        needed = (
            engine.count_prompt_tokens(difficulty_prompt(query.text))
            + LABEL_SAMPLING.max_new_tokens
        )
        if needed <= context_length:
            kept.append(query)
        else:
            rejects.append(
                _reject(
                    query,
                    "too_long_for_context",
                    f"labelling needs {needed} tokens > {context_length}",
                )
            )
    return kept


def _label_difficulty(
    queries: list[Query], engine: Engine, threshold: int, guided: bool, rejects: list[Reject]
) -> list[Query]:
    """Paper §3.1: keep queries meeting >= threshold of the 7 criteria."""
    requests = [ChatRequest(q.id, difficulty_prompt(q.text)) for q in queries]
    regex = criteria_regex() if guided else None
    answers = engine.generate(requests, LABEL_SAMPLING, guided_regex=regex)
    kept = []
    for query, completions in zip(queries, answers, strict=True):
        text = completions[0].text
        criteria = parse_criteria(text)
        if criteria is None:
            rejects.append(
                _reject(query, "unparsable_difficulty", f"labeller answered: {text[:500]}")
            )
            continue
        score = sum(criteria[c] for c in CRITERIA)
        labelled = query.model_copy(update={"criteria": criteria, "difficulty": score})
        if score >= threshold:
            kept.append(labelled)
        else:
            rejects.append(
                _reject(labelled, "below_difficulty_threshold", f"score {score} < {threshold}")
            )
    return kept


def _label_topics(
    queries: list[Query], engine: Engine, topics: list[str], guided: bool, rejects: list[Reject]
) -> list[Query]:
    """An LLM picks one topic from the list; an unusable answer is set aside, not guessed."""
    todo = [q for q in queries if q.topic is None]
    requests = [ChatRequest(q.id, topic_prompt(q.text, topics)) for q in todo]
    regex = topic_regex(topics) if guided else None
    answers = engine.generate(requests, LABEL_SAMPLING, guided_regex=regex)
    topic_of = {}
    for query, completions in zip(todo, answers, strict=True):
        topic = parse_topic(completions[0].text, topics)
        if topic is None:
            rejects.append(
                _reject(
                    query, "unparsable_topic", f"labeller answered: {completions[0].text[:500]}"
                )
            )
        topic_of[query.id] = topic
    return [
        q if q.topic is not None else q.model_copy(update={"topic": topic_of[q.id]})
        for q in queries
        if q.topic is not None or topic_of[q.id] is not None
    ]
