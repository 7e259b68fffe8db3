"""The GRPO and DRIFT data sub-stages end to end in a store, on a stub engine and a stub
reward: what is sampled from what, what the reward sees, what is stored and counted."""

from __future__ import annotations

from pathlib import Path

from bolt.config import DRIFT_INSTRUCTION, OnlineAlgorithm
from bolt.config_loader import load_config
from bolt.engines.base import Completion
from bolt.evals.contamination import index_for
from bolt.longcot import render_longcot
from bolt.online import drift, grpo_data, stage
from bolt.records import GroupSample, PreferencePair, ScoredGeneration
from bolt.rewards.base import CountedScores
from bolt.sharding import per_shard
from bolt.store import ArtifactStore

REPO = Path(__file__).resolve().parents[2]


class StubEngine:
    name, model = "stub", "stub-model"

    def __init__(self, texts):
        self.texts, self.requests = texts, []

    def generate(self, requests, sampling):
        self.requests += requests
        return [
            [
                Completion(r.id, i, self.texts[i % len(self.texts)], "stop", 9, 5, None)
                for i in range(sampling.n)
            ]
            for r in requests
        ]


class LengthReward:
    """Scores by length and counts its batches as a judge does (a CountingReward)."""

    def __init__(self):
        self.seen = []

    def score(self, items):
        return self.score_counted(items).scores

    def score_counted(self, items):
        self.seen += [i.response for i in items]
        scores = [float(len(i.response)) for i in items]
        return CountedScores(scores, {}, {"verdicts.logprobs": len(items)})


def _cfg(tmp: Path, algorithm: OnlineAlgorithm):
    cfg = load_config(REPO / "configs/tiny-cpu.yaml", [f"online.algorithm={algorithm}"])
    source = cfg.online.drift.sources[0].model_copy(
        update={"uri": str(REPO / cfg.online.drift.sources[0].uri)}
    )
    prompts = cfg.online.prompt_sources[0].model_copy(
        update={"uri": str(REPO / cfg.online.prompt_sources[0].uri)}
    )
    online = cfg.online.model_copy(
        update={
            "prompts_per_iteration": 2,
            "prompt_sources": [prompts],
            "drift": cfg.online.drift.model_copy(update={"sources": [source]}),
        }
    )
    storage = cfg.storage.model_copy(update={"root": f"file://{tmp}/store"})
    return cfg.model_copy(update={"online": online, "storage": storage})


def test_grpo_stages_score_strictly_and_store_advantages(tmp_path):
    cfg = _cfg(tmp_path, OnlineAlgorithm.grpo)
    store = ArtifactStore.from_config(cfg.storage)
    good = render_longcot("Think.", "A long enough answer.")
    engine = StubEngine([good, "no thinking here at all", render_longcot("T.", "Short.")])
    prompts = stage.run_prompts(cfg, store, 1, contamination=index_for(cfg))
    samples = stage.run_samples(grpo_data.grpo_config(cfg), store, prompts, "sft/x", lambda: engine)
    assert samples.counts["samples"] == 2 * cfg.online.grpo.group_size  # n = the group size
    reward = LengthReward()
    scores = grpo_data.run_grpo_scores(cfg, store, samples, prompts, lambda: {"len": (reward, 1.0)})
    assert scores.counts["malformed_thinking"] == 2  # one per prompt's group of 4
    assert "" in reward.seen and "no thinking here at all" not in reward.seen
    rows = list(store.read_records(scores, ScoredGeneration))
    assert {r.reward for r in rows if r.reject_reason} == {0.0}
    groups = grpo_data.run_groups(cfg, store, scores, prompts, 1)
    samples_by_prompt: dict[str, list[GroupSample]] = {}
    for row in store.read_records(groups, GroupSample):
        samples_by_prompt.setdefault(row.prompt_id, []).append(row)
    assert len(samples_by_prompt) == 2
    for group in samples_by_prompt.values():
        assert abs(sum(s.advantage for s in group)) < 1e-9
        assert [s.malformed for s in group] == [False, True, False, False]
        assert min(group, key=lambda s: s.advantage).malformed
    # A rerun is served from the store.
    assert grpo_data.run_groups(cfg, store, scores, prompts, 1) == groups


def test_grpo_scores_follow_the_samples_shards_and_resume_from_their_receipts(tmp_path):
    cfg = _cfg(tmp_path, OnlineAlgorithm.grpo)
    cfg = cfg.model_copy(update={"online": cfg.online.model_copy(update={"shard_size": 1})})
    store = ArtifactStore.from_config(cfg.storage)
    good = render_longcot("Think.", "A long enough answer.")
    engine = StubEngine([good, "no thinking here at all"])
    prompts = stage.run_prompts(cfg, store, 1, contamination=index_for(cfg))
    samples = stage.run_samples(grpo_data.grpo_config(cfg), store, prompts, "sft/x", lambda: engine)
    assert len(samples.shards) == 2  # one prompt's group a shard
    fp = grpo_data.grpo_scores_fingerprint(cfg, samples.fingerprint)
    reward = LengthReward()
    rewards = lambda: {"len": (reward, 1.0)}
    # A crash after the first shard: its receipt is in the store, the stage uncommitted.
    first = per_shard(samples)[0]
    work = grpo_data.grpo_scores_work(cfg, store, fp, samples, prompts, rewards)
    work(first)
    assert len(reward.seen) == cfg.online.grpo.group_size
    scores = grpo_data.run_grpo_scores(cfg, store, samples, prompts, rewards)
    assert len(reward.seen) == 2 * cfg.online.grpo.group_size  # only the second was scored
    assert [s.records for s in scores.shards] == [s.records for s in samples.shards]
    # Two malformed per group of 4; the judge's counts summed over both shards.
    assert scores.counts == {
        "scored": 8,
        "malformed_thinking": 4,
        "reward.len.verdicts.logprobs": 8,
    }


def test_drift_stages_sample_revisions_from_the_feedback_and_pair_on_the_real_turn(tmp_path):
    cfg = _cfg(tmp_path, OnlineAlgorithm.drift)
    store = ArtifactStore.from_config(cfg.storage)
    feedback = drift.run_feedback(cfg, store, 1, contamination=index_for(cfg))
    assert feedback.counts == {
        "read": 8,
        "rows": 6,
        "rejected": 2,
        "rejected.empty_feedback": 1,
        "rejected.no_assistant_turn": 1,
    }
    engine = StubEngine(["A better answer."])
    samples = drift.run_drift_samples(cfg, store, feedback, "sft/x", lambda: engine)
    assert samples.counts["samples"] == 6  # one revision per row
    request = engine.requests[0].messages
    assert request[-1]["role"] == "user" and request[-1]["content"].endswith(DRIFT_INSTRUCTION)
    assert request[-2]["role"] == "assistant"
    pairs = drift.run_drift_pairs(cfg, store, samples, feedback, 1)
    assert pairs.counts["pairs"] == 6
    stored = list(store.read_records(pairs, PreferencePair))
    assert all(p.chosen == "A better answer." for p in stored)
    assert all(DRIFT_INSTRUCTION not in m.content for p in stored for m in p.prompt)
    rows = {r.id: r for r in store.read_records(feedback, drift.DissatisfactionRow)}
    assert all(p.rejected == rows[p.prompt_id].dissatisfying for p in stored)
    assert all(p.prompt == rows[p.prompt_id].prompt for p in stored)


def test_drift_revisions_are_sharded_and_resume_from_their_receipts(tmp_path):
    cfg = _cfg(tmp_path, OnlineAlgorithm.drift)
    cfg = cfg.model_copy(update={"online": cfg.online.model_copy(update={"shard_size": 4})})
    store = ArtifactStore.from_config(cfg.storage)
    feedback = drift.run_feedback(cfg, store, 1, contamination=index_for(cfg))
    rows = list(store.read_records(feedback, drift.DissatisfactionRow))
    plans = drift.revision_plans(cfg, rows)
    assert [len(p.items) for p in plans] == [4, 2]
    engine = StubEngine(["A better answer."])
    fp = drift.drift_samples_fingerprint(cfg, feedback.fingerprint, "sft/x")
    drift.revisions_work(cfg, store, fp, lambda: engine)(plans[0])  # then a crash
    assert len(engine.requests) == 4
    samples = drift.run_drift_samples(cfg, store, feedback, "sft/x", lambda: engine)
    assert len(engine.requests) == 6  # the second shard only
    assert [s.records for s in samples.shards] == [4, 2]
    assert samples.counts == {"rows": 6, "samples": 6}
    # Where the rows are cut enters the fingerprint (a seeded engine samples by batch).
    whole = cfg.model_copy(update={"online": cfg.online.model_copy(update={"shard_size": None})})
    assert drift.drift_samples_fingerprint(whole, feedback.fingerprint, "sft/x") != fp
