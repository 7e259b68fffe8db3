"""bolt.curation.methods: the steps the curation stage runs for the issue-18 methods."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bolt.config_loader import load_config
from bolt.curation import methods
from bolt.engines.base import Completion
from bolt.records import Query

REPO = Path(__file__).resolve().parents[2]


def _q(i, topic="math", difficulty=3):
    return Query(id=f"q{i}", text=f"query {i}", source="t", topic=topic, difficulty=difficulty)


def test_configs_without_methods_add_nothing_to_the_fingerprint():
    for name in ("tiny-cpu.yaml", "paper-8b.yaml", "paper-70b.yaml", "paper-mistral-7b.yaml"):
        assert methods.fingerprint_payload(load_config(REPO / "configs" / name)) == {}


def test_configs_with_methods_fingerprint_their_models():
    payload = methods.fingerprint_payload(load_config(REPO / "configs/paper-magpie-8b.yaml"))
    assert set(payload["method_models"]) == {"llama-3-70b-instruct", "all-minilm-l6-v2"}
    # Magpie only: what SkillMix writes does not enter its fingerprint.
    assert "skillmix_code_version" not in payload


def test_a_skillmix_source_keeping_responses_fingerprints_what_it_writes():
    cfg = load_config(REPO / "configs/tiny-curation-methods.yaml")
    assert methods.fingerprint_payload(cfg)["skillmix_code_version"] == "2"
    kept = load_config(
        REPO / "configs/tiny-curation-methods.yaml",
        ["data.synthetic_sources.1.keep_responses=false"],
    )
    assert "skillmix_code_version" not in methods.fingerprint_payload(kept)


def test_shuffled_selection_is_todays_truncation():
    cfg = load_config(REPO / "configs/tiny-cpu.yaml")
    pool = [_q(i) for i in range(40)]
    kept, reason = methods.select(cfg, pool, None)
    assert kept == pool[: cfg.data.max_queries] and reason == "over_topic_balance"


class OneHot:
    """Embeds each distinct text as its own direction; 'dup' texts onto their original."""

    def embed(self, texts):
        keys = sorted({t.removesuffix(" dup") for t in texts})
        return np.eye(len(keys))[[keys.index(t.removesuffix(" dup")) for t in texts]]


def test_mig_selection_and_semantic_dedup_steps():
    cfg = load_config(REPO / "configs/tiny-curation-methods.yaml")
    pool = [_q(i, topic=["math", "coding"][i % 2], difficulty=1 + i % 5) for i in range(30)]
    kept, reason = methods.select(cfg, pool, OneHot())
    assert len(kept) == cfg.data.max_queries and reason == "not_selected_mig"
    queries = [_q(0), Query(id="q9", text="query 0 dup", source="t"), _q(1)]
    kept, rejects = methods.remove_semantic_duplicates(cfg, queries, OneHot())
    assert [q.id for q in kept] == ["q0", "q1"]
    assert rejects[0].reason == "near_duplicate" and "semantic duplicate of q0" in rejects[0].detail


class Tagger:
    """A labeller answering each tags request in turn from ``answers``."""

    def __init__(self, answers):
        self.answers, self.prompts = list(answers), []

    def generate(self, requests, sampling, **_):
        self.prompts += [r.messages[0]["content"] for r in requests]
        return [[Completion(r.id, 0, self.answers.pop(0), "stop", 1, 1, None)] for r in requests]


def test_free_form_tags_are_labelled_and_unparsable_answers_set_aside():
    queries = [_q(0), _q(1), _q(2)]
    engine = Tagger(
        [
            "Tags: Linear Algebra, word problems, linear algebra, `proofs`",
            "I would rather not tag this one.",
            "Sure!\ntags = Python, debugging",
        ]
    )
    rejects = []
    kept = methods.label_tags(queries, engine, max_tags=2, rejects=rejects)
    assert [(q.id, q.meta["tags"]) for q in kept] == [
        ("q0", ["linear_algebra", "word_problems"]),  # normalised, deduplicated, at most 2
        ("q2", ["python", "debugging"]),
    ]
    assert [(r.reason, r.source) for r in rejects] == [("unparsable_tags", "q1")]
    assert "I would rather not" in rejects[0].detail
    assert "query 0" in engine.prompts[0] and "at most 2 tags" in engine.prompts[0]


def test_mig_with_tags_labels_them_in_the_labelling_shards():
    from bolt.curation.labelling import label_queries

    cfg = load_config(
        REPO / "configs/tiny-curation-methods.yaml",
        ["data.mig.labels=[topic, tags]", "data.difficulty_filter=false"],
    )
    engine = Tagger(["Tags: budgeting", "no tags here"])
    queries = [_q(0), _q(1)]  # topics known: only the tags are asked
    kept, rejects = label_queries(cfg, queries, lambda: engine, None, fitting=False)
    assert [q.meta["tags"] for q in kept] == [["budgeting"]]
    assert [r.reason for r in rejects["tags"]] == ["unparsable_tags"]
