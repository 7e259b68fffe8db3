"""The shared shard mechanism (bolt.sharding), and every stage on it: shards planned from
config, only unfinished shards redone, the same records whatever the shard size where
the work allows (curation labels, scoring, eval grading), and the size in the
fingerprint where it does not (online sampling)."""

from __future__ import annotations

import pytest

from bolt.config_loader import load_config
from bolt.curation.stage import curation_fingerprint, run_curation
from bolt.filtering.stage import run_score
from bolt.online import stage as online
from bolt.records import Generation, Query
from bolt.rewards.format_reward import FormatReward
from bolt.sharding import ShardPlan, per_shard, plan_shards, run_sharded
from bolt.stages import Stage
from bolt.store import ArtifactStore
from tests.conftest import TINY_CONFIG
from tests.stage_runs import bootstrap_in_process, committed_queries
from tests.stand_ins import HashEngine


def test_plan_shards_cuts_in_order_and_indexes_on():
    plans = plan_shards(list(range(7)), 3, start=2, group="g")
    assert [(p.index, p.items, p.group) for p in plans] == [
        (2, [0, 1, 2], "g"),
        (3, [3, 4, 5], "g"),
        (4, [6], "g"),
    ]
    assert plan_shards(list(range(7)), None) == [ShardPlan(0, list(range(7)))]
    assert plan_shards([], 3) == [] and plan_shards([], 3, empty_shard=True) == [ShardPlan(0, [])]


def test_run_sharded_makes_only_shards_without_a_receipt(tmp_path):
    store = ArtifactStore.from_config(
        load_config(TINY_CONFIG, [f"storage.root=file://{tmp_path}"]).storage
    )
    made: list[int] = []

    def work(plan):
        made.append(plan.index)
        if plan.index == 2 and len(made) == 3:
            raise RuntimeError("crash in shard 2")
        return store.write_shard(
            "data", "fp", plan.index, [Query(id=str(i), text="t", source="s") for i in plan.items]
        )

    plans = plan_shards(list(range(10)), 2)
    with pytest.raises(RuntimeError):
        run_sharded(store, "data", "fp", plans, work)
    assert made == [0, 1, 2]
    receipts = run_sharded(store, "data", "fp", plans, work)
    assert made == [0, 1, 2, 2, 3, 4]  # the crashed shard again, the finished ones never
    assert [r.index for r in receipts] == [0, 1, 2, 3, 4] and sum(r.records for r in receipts) == 10
    assert store.receipt("data", "fp", 3) == receipts[3] and store.receipt("data", "fp", 9) is None
    seen: list[list[int]] = []
    runner = lambda fp, pending, w: (
        seen.append([p.index for p in pending]) or [w(p) for p in pending]
    )
    assert run_sharded(store, "data", "fp", plans, work, runner) == receipts
    assert seen == []  # nothing pending: the runner is not even called


def _curation(tmp_path, *overrides):
    cfg = load_config(
        TINY_CONFIG,
        [
            f"storage.root=file://{tmp_path}",
            "data.decontamination.enabled=false",
            "data.difficulty_threshold=5",
            "data.topic_cap=30",
            "data.max_queries=40",
            *overrides,
        ],
    )
    return cfg, ArtifactStore.from_config(cfg.storage)


def _bytes(store, manifest, name):
    return store.backend.get_bytes(f"{manifest.stage}/{manifest.fingerprint}/{name}")


def test_curation_labels_are_the_same_whatever_the_shard_size(tmp_path):
    outputs = []
    for size in (1000, 7, 2):
        cfg, store = _curation(tmp_path / str(size), f"data.shard_size={size}")
        manifest = run_curation(cfg, store, HashEngine, context_length=8192)
        labels = store.finished_shards(Stage.curation_labels, manifest.fingerprint)
        assert len(labels) == -(-manifest.counts["read"] // size)
        outputs.append(
            (
                manifest.fingerprint,
                [(s.name, s.sha256) for s in manifest.shards],
                _bytes(store, manifest, "rejects.jsonl.gz"),
                manifest.counts,
            )
        )
    assert outputs[0] == outputs[1] == outputs[2]
    assert outputs[0][3]["rejected.below_difficulty_threshold"] > 0
    assert outputs[0][3]["rejected.unparsable_difficulty"] > 0


def test_curation_resumes_from_its_label_receipts(tmp_path):
    cfg, store = _curation(tmp_path, "data.shard_size=10")

    class Dying(HashEngine):
        def generate(self, requests, sampling, **kw):
            if self.calls == 3:
                raise RuntimeError("engine died")
            return super().generate(requests, sampling, **kw)

    dying = Dying()
    with pytest.raises(RuntimeError):
        run_curation(cfg, store, lambda: dying, context_length=8192)
    fp = curation_fingerprint(cfg)
    assert store.manifest(Stage.curation_candidates, fp) is not None
    assert (
        len(store.finished_shards(Stage.curation_labels, fp)) == 3
    )  # difficulty only: 1 call a shard
    engine = HashEngine()
    manifest = run_curation(cfg, store, lambda: engine, context_length=8192)
    shards = -(-manifest.counts["read"] // 10)
    assert engine.calls == shards - 3  # only the unfinished shards were labelled
    ref_cfg, ref_store = _curation(tmp_path / "ref", "data.shard_size=10")
    ref = run_curation(ref_cfg, ref_store, lambda: HashEngine(), context_length=8192)
    assert [s.sha256 for s in manifest.shards] == [s.sha256 for s in ref.shards]
    assert _bytes(store, manifest, "rejects.jsonl.gz") == _bytes(ref_store, ref, "rejects.jsonl.gz")


def _queries(n: int) -> list[Query]:
    return [
        Query(id=f"q{i:03d}", text=f"How would you plan experiment {i}?", source="demo")
        for i in range(n)
    ]


def test_online_sampling_shards_resume_and_the_size_enters_the_fingerprint(tmp_path):
    def run(root, *overrides, engine=None):
        cfg = load_config(TINY_CONFIG, [f"storage.root=file://{root}", *overrides])
        store = ArtifactStore.from_config(cfg.storage)
        prompts = committed_queries(store, "prompts", _queries(10))
        engine = engine or HashEngine()
        samples = online.run_samples(cfg, store, prompts, "sft/x", lambda: engine)
        rewards = lambda: {"format": (FormatReward(), 1.0)}
        scores = online.run_scores(cfg, store, samples, prompts, rewards)
        return cfg, store, samples, scores, engine

    cfg, store, whole, whole_scores, _ = run(tmp_path / "a")
    assert len(whole.shards) == 1 and len(whole_scores.shards) == 1  # unset: one per iteration
    cfg3, store3, cut, cut_scores, _ = run(tmp_path / "b", "online.shard_size=3")
    assert [s.records for s in cut.shards] == [12, 12, 12, 4] and len(cut_scores.shards) == 4
    assert cut.fingerprint != whole.fingerprint
    assert online.samples_fingerprint(cfg, "p", "i") != online.samples_fingerprint(cfg3, "p", "i")
    key = lambda g: (g.query_id, g.sample_index)
    assert sorted(map(key, store.read_records(whole, Generation))) == sorted(
        map(key, store3.read_records(cut, Generation))
    )
    again = online.run_samples(
        cfg3, store3, cut_prompts(store3), "sft/x", lambda: pytest.fail("engine")
    )
    assert again == cut


def cut_prompts(store):
    return store.require("data", "prompts")


def test_score_shards_follow_the_bootstrap_shards(tmp_path):
    cfg = load_config(
        TINY_CONFIG,
        [
            f"storage.root=file://{tmp_path}",
            "bootstrap.shard_size=3",
            "bootstrap.guided_decoding=false",
        ],
    )
    store = ArtifactStore.from_config(cfg.storage)
    data = committed_queries(store, "data-fp", _queries(8))
    boot = bootstrap_in_process(cfg, store, data, lambda: HashEngine())
    assert [p.index for p in per_shard(boot)] == [0, 1, 2]
    score = run_score(cfg, store, boot, data, lambda: {"format": (FormatReward(), 1.0)})
    assert [(s.index, s.records) for s in score.shards] == [
        (s.index, s.records) for s in boot.shards
    ]
