"""bolt.curation.methods: the steps the curation stage runs for the issue-18 methods."""

from __future__ import annotations

import json
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


class Script:
    name = "transformers"

    def __init__(self, tokenizer, answers):
        self._tokenizer, self.answers = tokenizer, list(answers)

    def render_prompt(self, messages):
        return [0]

    def generate(self, requests, sampling, *, stop=None, guided_regex=None):
        return [
            [
                Completion(r.id, i, self.answers.pop(0), "stop", 1, 1, None)
                for i in range(sampling.n)
            ]
            for r in requests
        ]


def test_synthetic_queries_from_both_kinds(smollm2_path, tmp_path):
    from transformers import AutoTokenizer

    skills = tmp_path / "skills.jsonl"
    skills.write_text(
        "".join(
            json.dumps(r) + "\n"
            for r in [
                {"kind": "skill", "name": "a"},
                {"kind": "skill", "name": "b"},
                {"kind": "query_type", "name": "q"},
            ]
        )
    )
    cfg = load_config(
        REPO / "configs/tiny-curation-methods.yaml",
        [
            "data.synthetic_sources.0.queries=2",
            "data.synthetic_sources.1.examples=1",
            f"data.synthetic_sources.1.skills_file={skills}",
        ],
    )
    answer = "### Instruction\nPlan a picnic.\n### Response\n" + "Bring bread and fruit. " * 8
    engine = Script(AutoTokenizer.from_pretrained(smollm2_path), ["What is 3 + 4?", "", answer])
    queries, rejects = methods.synthetic_queries(cfg, lambda name: engine, tmp_path / "skills")
    assert [q.source for q in queries] == ["magpie", "skillmix"]
    assert [r.reason for r in rejects] == ["empty_generation"]
