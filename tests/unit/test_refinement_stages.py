"""The STICK round wired into bootstrapping and online sampling, on a scripted engine:
what it adds to the fingerprints (nothing while off), and a bootstrap shard with its
revisions and their lineage."""

from __future__ import annotations

import pytest

from bolt.bootstrap.stage import bootstrap_fingerprint, run_shard
from bolt.config_loader import load_config
from bolt.engines.base import Completion
from bolt.longcot import render_longcot
from bolt.online import stage as online
from bolt.prompts import load_examples
from bolt.records import Generation, Query, decode_jsonl_gz
from bolt.rewards.refinement import RefinedVersion
from bolt.sharding import ShardPlan
from bolt.stages import Stage
from bolt.store import ArtifactStore
from bolt.store_backends import LocalBackend
from tests.conftest import TINY_CONFIG


def _cfg(*overrides: str):
    return load_config(TINY_CONFIG, list(overrides))


def test_refinement_enters_the_fingerprints_only_when_set():
    from bolt.bootstrap.stage import examples_dir

    plain, refined = _cfg(), _cfg("bootstrap.refinement.rounds=2")
    examples = load_examples(examples_dir(plain))
    assert refined.bootstrap.refinement is not None and refined.bootstrap.refinement.rounds == 2
    assert bootstrap_fingerprint(plain, "d", examples) != bootstrap_fingerprint(
        refined, "d", examples
    )
    judged = _cfg("bootstrap.refinement.judge_model=smollm2-135m-instruct")
    assert bootstrap_fingerprint(judged, "d", examples) != bootstrap_fingerprint(
        _cfg("bootstrap.refinement.rounds=1"), "d", examples
    )
    samples = online.samples_fingerprint(plain, "p", "sft/a")
    assert online.samples_fingerprint(_cfg("online.refinement.rounds=1"), "p", "sft/a") != samples


class StickEngine:
    """The teacher, its checklist writer and its own judge, scripted by prompt kind."""

    name, model, model_path = "scripted", "scripted", "scripted"

    def __init__(self):
        self.kinds: list[str] = []

    def generate(self, requests, sampling, *, stop=None, guided_regex=None, logprobs=None):
        out = []
        for r in requests:
            last = r.messages[-1]["content"]
            if "writing a checklist" in last:
                kind, text = "checklist", "1. Does the answer name a fruit?\n2. Is it polite?"
            elif "Check one requirement" in last:
                passed = "revised" in last  # originals fail every item, revisions pass
                kind, text = "verdict", "Yes" if passed else "No"
            elif "A grader checked it" in last:
                kind, text = "revision", render_longcot("Try again.", "A revised answer: apple.")
            else:
                kind, text = "sample", render_longcot("Think.", "An answer.")
            self.kinds.append(kind)
            out.append(
                [Completion(r.id, i, text, "stop", 30, 5, None) for i in range(sampling.n)]
                if kind == "sample"
                else [Completion(r.id, 0, text, "stop", 30, 5, None)]
            )
        return out

    def count_prompt_tokens(self, messages):
        return 30


def test_a_bootstrap_shard_keeps_originals_revisions_and_their_lineage(tmp_path, monkeypatch):
    monkeypatch.delenv("BOLT_MODEL_CACHE", raising=False)
    cfg = _cfg(
        "bootstrap.refinement.rounds=2",
        f"models.cache_dir={tmp_path / 'models'}",
        "bootstrap.sampling.n=2",
        "bootstrap.guided_decoding=false",
    )
    store = ArtifactStore(LocalBackend(tmp_path / "store"))
    queries = [Query(id=f"q{i}", text=f"Name a fruit, please ({i}).", source="t") for i in range(2)]
    engine = StickEngine()
    info = run_shard(
        store,
        "fp",
        ShardPlan(0, queries),
        cfg,
        lambda: engine,
        None,
    )
    rows = list(store.read_shard(Stage.bootstrap, "fp", info, Generation))
    # 2 queries x 2 samples, each revised once (the revision passes): 8 generations.
    assert sorted((g.query_id, g.sample_index) for g in rows) == [
        (q, i) for q in ("q0", "q1") for i in (0, 1, 2, 3)
    ]
    assert engine.kinds.count("checklist") == 2 and engine.kinds.count("revision") == 4
    assert info.meta["refinement"]["versions_per_round"] == {"0": 4, "1": 4}
    assert info.meta["refinement"]["mean_pass_rate_per_round"] == {"0": 0.0, "1": 1.0}
    # 8 versions x 2 questions, the scripted engine gives no logprobs: all parsed.
    judge = info.meta["refinement"]["judge"]
    assert (judge["prompts"], judge["parsed"], judge["fallback_checklists"]) == (16, 16, 0)
    lineage_file = info.meta["refinement_file"]["path"]
    data = store.backend.get_bytes(store._key(Stage.bootstrap, "fp", lineage_file))
    versions = list(decode_jsonl_gz(data, RefinedVersion, lineage_file))
    revision = next(v for v in versions if v.version_id == "q0:2")
    assert (revision.round, revision.parent_id, revision.failed_items) == (1, "q0:0", [])
    parent = next(v for v in versions if v.version_id == "q0:0")
    assert parent.failed_items == ["Does the answer name a fruit?", "Is it polite?"]
    assert "<thoughts>" in revision.generation.raw_text


def test_refinement_settings_are_validated():
    with pytest.raises(Exception, match="rounds"):
        _cfg("bootstrap.refinement.rounds=0")
    with pytest.raises(Exception, match="not in models.catalog"):
        _cfg("online.refinement.judge_model=nope")


def test_online_samples_are_refined_by_the_policy_itself(tmp_path, monkeypatch):
    from bolt.online.refinement import refine_samples

    monkeypatch.delenv("BOLT_MODEL_CACHE", raising=False)
    cfg = _cfg("online.refinement.rounds=3", f"models.cache_dir={tmp_path / 'models'}")
    store = ArtifactStore(LocalBackend(tmp_path / "store"))
    queries = [Query(id="p", text="Name a fruit.", source="t")]
    rows = [
        Generation(
            query_id="p",
            sample_index=i,
            prompt_tokens=5,
            raw_text=render_longcot("t", "a"),
            output_tokens=3,
            engine="scripted",
            model="scripted",
        )
        for i in range(3)
    ]
    engine = StickEngine()
    out, files, stats = refine_samples(cfg, store, "fp", 0, rows, queries, lambda: engine)
    assert [g.sample_index for g in out] == [0, 1, 2, 3, 4, 5]  # one round: revisions pass
    assert stats["versions_per_round"] == {"0": 3, "1": 3}
    assert files[0].path == "refinement/part-00000.jsonl.gz"
    revision_request = engine.kinds.index("revision")
    assert revision_request > engine.kinds.index("checklist")


def test_online_refinement_over_several_shards_reports_every_shard(tmp_path, monkeypatch):
    from bolt.store import Manifest

    monkeypatch.delenv("BOLT_MODEL_CACHE", raising=False)
    cfg = _cfg(
        "online.refinement.rounds=1",
        "online.shard_size=1",
        "online.sampling.n=2",
        f"models.cache_dir={tmp_path / 'models'}",
    )
    store = ArtifactStore(LocalBackend(tmp_path / "store"))
    queries = [Query(id=f"p{i}", text=f"Name a fruit ({i}).", source="t") for i in range(2)]
    info = store.write_shard(Stage.online_prompts, "pfp", 0, queries)
    prompts = store.commit(
        Manifest(
            stage=Stage.online_prompts,
            fingerprint="pfp",
            code_version="1",
            config={},
            shards=[info],
        )
    )
    engine = StickEngine()
    samples = online.run_samples(cfg, store, prompts, "sft/x", lambda: engine)
    assert len(samples.shards) == 2 and samples.counts["samples"] == 8
    refined = samples.stats["refinement"]
    # Each shard: 1 prompt x 2 samples, each revised once; both shards in the stats.
    assert refined["versions_per_round"] == {"0": 4, "1": 4}
    assert refined["mean_pass_rate_per_round"] == {"0": 0.0, "1": 1.0}
    assert samples.counts["refinement.prompts"] == samples.counts["refinement.parsed"] == 16
    assert sorted(f.path for f in samples.files) == [
        "refinement/part-00000.jsonl.gz",
        "refinement/part-00001.jsonl.gz",
    ]
