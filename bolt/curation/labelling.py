"""Curation's labelling, sharded and resumable (``bolt.sharding``): the candidates (read,
deduplicated, decontaminated, shuffled; committed as ``data-candidates``) are cut into
shards of ``data.shard_size``; each shard's queries are fitted to the labeller's context,
labelled (the 7 difficulty criteria, the topic, MIG's tags) and stored under
``data-labels/<fingerprint>/`` with their rejects beside, before their receipt.

Every label is a greedy answer about one query, and whether the context check runs at
all is decided over every candidate (``needs_fitting``), so the labelled queries and
the rejects, merged in shard order step by step (:func:`merged_rejects`), are the same
whatever the shard size: ``data.shard_size`` is ``AFFECTS_OUTPUT_NOT``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import cache

from bolt.config import PipelineConfig, SamplingConfig
from bolt.config.data import MigLabelKind, QuerySelection
from bolt.curation import methods
from bolt.curation.labels import (
    CRITERIA,
    criteria_regex,
    difficulty_prompt,
    parse_criteria,
    parse_topic,
    topic_prompt,
    topic_regex,
)
from bolt.engines.base import ChatRequest, Engine
from bolt.records import Query, Reject
from bolt.sharding import ShardPlan, ShardWork
from bolt.stages import Stage
from bolt.store import ArtifactStore, FileInfo, Manifest, ShardInfo

# Labels are short, deterministic answers: greedy decoding, a few dozen tokens.
LABEL_SAMPLING = SamplingConfig(n=1, temperature=0.0, max_new_tokens=96, seed=0)
# The labelling steps, in the order their rejects are listed.
STEPS = ("fitting", "difficulty", "topic", "tags")


def reject(query: Query, reason: str, detail: str | None = None) -> Reject:
    return Reject(
        stage=Stage.curation, reason=reason, source=query.id, raw=query.text[:2000], detail=detail
    )


def needs_fitting(cfg: PipelineConfig, candidates: list[Query]) -> bool:
    """The labeller sees the queries (so they must fit its context) when difficulty is
    labelled or any candidate lacks a topic: decided over all candidates, not a shard."""
    return cfg.data.difficulty_filter or any(q.topic is None for q in candidates)


def label_queries(
    cfg: PipelineConfig,
    queries: list[Query],
    engine: Callable[[], Engine],
    context_length: int | None,
    fitting: bool,
) -> tuple[list[Query], dict[str, list[Reject]]]:
    """Difficulty criteria, topics and (MIG with tags) free-form tags from the labeller;
    the queries kept and each step's rejects."""
    data = cfg.data
    rejects: dict[str, list[Reject]] = {step: [] for step in STEPS}
    if fitting:
        queries = _fitting(queries, engine(), context_length, rejects["fitting"])
    if data.difficulty_filter:
        queries = _label_difficulty(
            queries, engine(), data.difficulty_threshold, data.guided_labels, rejects["difficulty"]
        )
    if any(q.topic is None for q in queries):
        queries = _label_topics(
            queries, engine(), data.topics, data.guided_labels, rejects["topic"]
        )
    if data.selection == QuerySelection.mig and MigLabelKind.tags in data.mig_settings.labels:
        queries = methods.label_tags(queries, engine(), data.mig_settings.max_tags, rejects["tags"])
    return queries, rejects


def label_work(
    cfg: PipelineConfig,
    store: ArtifactStore,
    fp: str,
    candidates: Manifest,
    engine: Callable[[], Engine],
    context_length: int | None,
) -> ShardWork[Query]:
    """What makes one labels shard: its queries labelled; rejects first, then the shard."""
    fitting = bool(candidates.stats["needs_fitting"])

    def work(plan: ShardPlan[Query]) -> ShardInfo:
        started = time.perf_counter()
        kept, rejects = label_queries(cfg, plan.items, engine, context_length, fitting)
        name = f"rejects/part-{plan.index:05d}.jsonl.gz"
        listed = [r for step in STEPS for r in rejects[step]]
        rejects_file = store.put_records(Stage.curation_labels, fp, name, listed)
        meta = {
            "rejects_file": rejects_file.model_dump(),
            "rejects_per_step": [len(rejects[step]) for step in STEPS],
            "seconds": round(time.perf_counter() - started, 3),
        }
        return store.write_shard(Stage.curation_labels, fp, plan.index, kept, meta=meta)

    return work


def merged_rejects(store: ArtifactStore, fp: str, shards: list[ShardInfo]) -> list[Reject]:
    """Every labels shard's rejects, step by step and in shard order within a step: the
    order one labelling pass over all candidates gives."""
    read = cache(lambda i: _shard_rejects(store, fp, shards[i]))
    merged: list[Reject] = []
    for step in range(len(STEPS)):
        for i, shard in enumerate(shards):
            counts = shard.meta["rejects_per_step"]
            start = sum(counts[:step])
            merged += read(i)[start : start + counts[step]]
    return merged


def _shard_rejects(store: ArtifactStore, fp: str, shard: ShardInfo) -> list[Reject]:
    info = FileInfo.model_validate(shard.meta["rejects_file"])
    if not sum(shard.meta["rejects_per_step"]):
        return []
    # Uncommitted (the labels stage has no manifest): checked against the receipt's sha256.
    return store.read_side_records(Stage.curation_labels, fp, info, Reject)


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
                reject(
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
                reject(query, "unparsable_difficulty", f"labeller answered: {text[:500]}")
            )
            continue
        score = sum(criteria[c] for c in CRITERIA)
        labelled = query.model_copy(update={"criteria": criteria, "difficulty": score})
        if score >= threshold:
            kept.append(labelled)
        else:
            rejects.append(
                reject(labelled, "below_difficulty_threshold", f"score {score} < {threshold}")
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
                reject(query, "unparsable_topic", f"labeller answered: {completions[0].text[:500]}")
            )
        topic_of[query.id] = topic
    return [
        q if q.topic is not None else q.model_copy(update={"topic": topic_of[q.id]})
        for q in queries
        if q.topic is not None or topic_of[q.id] is not None
    ]
