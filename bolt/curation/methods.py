"""The issue-18 curation methods as steps of the curation stage (``bolt.curation.stage``).

Each step takes the stage's queries and rejects and returns what goes on: semantic
near-duplicate removal after MinHash, free-form tags for MIG's label graph, and the
choice of the kept set (``selection``); the synthetic sources (Magpie,
Instruct-SkillMix) generate in shards of their own (``bolt.curation.generation``). A
config that uses none of them runs none of them, and its curation fingerprint is what it
was (the fields are ``ENTERS_WHEN_SET``; ``fingerprint_payload`` adds the methods'
models). The methods' choices are dispatched here, in one place.
"""

from __future__ import annotations

from typing import Any, assert_never

from bolt.config import PipelineConfig
from bolt.config.data import QuerySelection, SkillMixSource
from bolt.curation import skillmix
from bolt.curation.embeddings import Embedder, load_embedder
from bolt.curation.mig import mig_select, parse_tags, tags_prompt
from bolt.curation.semantic_dedup import semantic_deduplicate
from bolt.engines.base import ChatRequest, Engine
from bolt.records import Query, Reject
from bolt.stages import Stage


def method_models(cfg: PipelineConfig) -> list[str]:
    """The catalog models the methods use (their entries enter the fingerprint)."""
    names = [s.model for s in cfg.data.synthetic_sources]
    if cfg.data.embedding is not None and cfg.data.embedding.model:
        names.append(cfg.data.embedding.model)
    return sorted(set(names))


def fingerprint_payload(cfg: PipelineConfig) -> dict[str, Any]:
    """What the curation fingerprint adds for the methods: the catalog entries of their
    models (their settings enter through ``data`` itself, ``ENTERS_WHEN_SET``) and, where
    a SkillMix source keeps its responses, the version of what it writes; nothing for a
    config that uses none."""
    models = method_models(cfg)
    payload = {"method_models": {name: cfg.models.catalog[name] for name in models}}
    if any(isinstance(s, SkillMixSource) and s.keep_responses for s in cfg.data.synthetic_sources):
        payload["skillmix_code_version"] = skillmix.CODE_VERSION
    return payload if models else {}


def embedder_of(cfg: PipelineConfig) -> Embedder | None:
    spec = cfg.data.embedding
    return load_embedder(spec, cfg.models, cfg.storage.s3) if spec is not None else None


def remove_semantic_duplicates(
    cfg: PipelineConfig, queries: list[Query], embedder: Embedder | None
) -> tuple[list[Query], list[Reject]]:
    """Magpie's minimum-neighbour distance, when ``data.semantic_dedup`` is set."""
    if cfg.data.semantic_dedup is None or embedder is None:
        return queries, []
    result = semantic_deduplicate(
        queries, embedder.embed([q.text for q in queries]), cfg.data.semantic_dedup.min_distance
    )
    rejects = [
        _reject(q, "near_duplicate", f"semantic duplicate of {kept} (cosine distance {d})")
        for q, kept, d in result.duplicates
    ]
    return result.kept, rejects


def label_tags(
    queries: list[Query], engine: Engine, max_tags: int, rejects: list[Reject]
) -> list[Query]:
    """Free-form tags from the labeller (MIG ``labels: tags``); unparsable -> set aside."""
    from bolt.config import SamplingConfig

    sampling = SamplingConfig(n=1, temperature=0.0, max_new_tokens=64, seed=0)
    answers = engine.generate(
        [ChatRequest(q.id, tags_prompt(q.text, max_tags)) for q in queries], sampling
    )
    kept = []
    for query, completions in zip(queries, answers, strict=True):
        tags = parse_tags(completions[0].text, max_tags)
        if tags is None:
            rejects.append(
                _reject(query, "unparsable_tags", f"labeller answered: {completions[0].text[:500]}")
            )
            continue
        kept.append(query.model_copy(update={"meta": {**query.meta, "tags": tags}}))
    return kept


def select(
    cfg: PipelineConfig, balanced: list[Query], embedder: Embedder | None
) -> tuple[list[Query], str]:
    """The kept queries chosen from the balanced pool, and the reject reason of the rest."""
    budget = cfg.data.max_queries
    match cfg.data.selection:
        case QuerySelection.shuffled:
            return (balanced[:budget] if budget else balanced), "over_topic_balance"
        case QuerySelection.mig:
            if embedder is None or budget is None:
                raise ValueError("selection mig needs data.embedding and data.max_queries")
            chosen = mig_select(balanced, budget, cfg.data.mig_settings, embedder.embed).chosen
            return chosen, "not_selected_mig"
        case _:
            assert_never(cfg.data.selection)


def _reject(query: Query, reason: str, detail: str) -> Reject:
    return Reject(
        stage=Stage.curation, reason=reason, source=query.id, raw=query.text[:2000], detail=detail
    )
