"""The judges' counts and set-asides persisted by the stages, not kept in a live object.

A scripted counting backend (as an LM judge counts: verdicts read from log-probabilities,
items without any verdict) scores two shards of the filter's score stage and of the
online scores; the manifests must hold the summed counts, and the filter must set the
unscored samples aside in its rejects file with their reason. Then the backends' own
counts (principles, checklist fallbacks) and the merge of per-shard refinement stats.
"""

from __future__ import annotations

import math
from collections import Counter

import pytest

from bolt.config import Principle
from bolt.config_loader import load_config
from bolt.engines.base import Completion, TokenLogprobs
from bolt.filtering.selection import DropReason
from bolt.filtering.stage import run_filter, run_score
from bolt.longcot import render_longcot
from bolt.online.stage import run_scores
from bolt.records import Generation, Query, Reject, decode_jsonl_gz
from bolt.rewards import RewardItem
from bolt.rewards.base import CountedScores
from bolt.rewards.checklist import Checklist
from bolt.rewards.lm_checklist import LMChecklistReward
from bolt.rewards.principles import NO_READABLE_VERDICT, PrinciplesReward
from bolt.rewards.refinement import merge_refinement_stats
from bolt.rewards.scoring import score_batch
from bolt.rewards.verdicts import EngineYesNoJudge
from bolt.stages import Stage
from bolt.store import ArtifactStore, Manifest
from bolt.store_backends import LocalBackend
from tests.conftest import TINY_CONFIG


class CountingJudge:
    """Sample 1 of every query gets no verdict; the others are read from logprobs."""

    def score_counted(self, items):
        unscored = {i: NO_READABLE_VERDICT for i, it in enumerate(items) if it.key.endswith(":1")}
        return CountedScores(
            [0.5 if i in unscored else 0.9 - 0.1 * i for i in range(len(items))],
            unscored,
            {
                "from_logprobs": len(items) - len(unscored),
                f"items.{NO_READABLE_VERDICT}": len(unscored),
            },
        )

    def score(self, items):
        return self.score_counted(items).scores


class Constant:
    def score(self, items):
        return [1.0] * len(items)


REWARDS = {"judge": (CountingJudge(), 1.0), "format": (Constant(), 0.5)}


def generation(query_id: str, index: int) -> Generation:
    return Generation(
        query_id=query_id,
        sample_index=index,
        prompt_tokens=5,
        raw_text=render_longcot("Think.", f"Answer {index}."),
        output_tokens=8,
        finish_reason="stop",
        engine="scripted",
        model="scripted",
    )


def committed(store: ArtifactStore, stage: str, fp: str, shards: list[list]) -> Manifest:
    infos = [store.write_shard(stage, fp, i, rows) for i, rows in enumerate(shards)]
    return store.commit(
        Manifest(stage=stage, fingerprint=fp, code_version="1", config={}, shards=infos)
    )


@pytest.fixture
def store(tmp_path) -> ArtifactStore:
    return ArtifactStore(LocalBackend(tmp_path / "store"))


QUERIES = [Query(id=f"q{i}", text=f"Question {i}?", source="t") for i in range(2)]
SHARDS = [[generation(q.id, i) for i in range(3)] for q in QUERIES]


def test_score_batch_keeps_each_backends_reasons_and_counts_by_name():
    items = [RewardItem("q", "a", None, f"q:{i}") for i in range(3)]
    batch = score_batch(items, REWARDS)
    assert batch.unscored == {1: f"judge: {NO_READABLE_VERDICT}"}
    assert batch.counts == {
        "reward.judge.from_logprobs": 2,
        f"reward.judge.items.{NO_READABLE_VERDICT}": 1,
    }
    assert batch.combined == pytest.approx([0.9 + 0.5, 0.5 + 0.5, 0.7 + 0.5])


def test_filter_manifests_hold_the_summed_counts_and_set_unscored_samples_aside(store):
    cfg = load_config(TINY_CONFIG, ["filter.percentile=0"])
    boot = committed(store, Stage.bootstrap, "b", SHARDS)
    data = committed(store, Stage.curation, "d", [QUERIES])
    scored = run_score(cfg, store, boot, data, lambda: REWARDS)
    assert scored.counts["scored"] == 6
    assert scored.counts["reward.judge.from_logprobs"] == 4
    assert scored.counts[f"reward.judge.items.{NO_READABLE_VERDICT}"] == 2

    selected = run_filter(cfg, store, scored, data)
    assert selected.counts[f"dropped.{DropReason.NO_VERDICT}"] == 2
    assert selected.counts["reward.judge.from_logprobs"] == 4
    assert selected.stats["format_pass_rate"] == 1.0  # no verdict is not a format failure
    rejects_file = next(f for f in selected.files if f.path == "rejects.jsonl.gz")
    raw = store.backend.get_bytes(store._key(Stage.filter, selected.fingerprint, rejects_file.path))
    rejects = [r for r in decode_jsonl_gz(raw, Reject, "rejects") if r.reason == "no_verdict"]
    assert sorted(r.source for r in rejects) == ["q0:1", "q1:1"]
    assert {r.detail for r in rejects} == {f"no_verdict: judge: {NO_READABLE_VERDICT}"}


def test_online_scores_manifest_sums_the_counts_of_its_shards(store):
    cfg = load_config(TINY_CONFIG)
    samples = committed(store, Stage.online_samples, "s", SHARDS)
    prompts = committed(store, Stage.online_prompts, "p", [QUERIES])
    scores = run_scores(cfg, store, samples, prompts, lambda: REWARDS)
    assert scores.counts["scored"] == 6 and len(scores.shards) == 2
    assert scores.counts["reward.judge.from_logprobs"] == 4
    assert scores.counts[f"reward.judge.items.{NO_READABLE_VERDICT}"] == 2


class ReplyEngine:
    name = model = model_path = "scripted"

    def __init__(self, replies):
        self.replies = replies

    def generate(self, requests, sampling, *, stop=None, guided_regex=None, logprobs=None):
        return [
            [Completion(r.id, 0, text, "stop", 10, 1, None, logprobs=positions)]
            for r, (text, positions) in zip(requests, self.replies, strict=True)
        ]


def test_principles_batch_counts_match_its_verdicts_without_timings():
    yes = (TokenLogprobs("Yes", {"Yes": math.log(0.8), "No": math.log(0.2)}),)
    engine = ReplyEngine([("Yes", yes), ("No", None), ("Hmm.", None), ("Hmm.", None)])
    principles = [Principle(text="Accurate."), Principle(text="Polite.")]
    reward = PrinciplesReward(principles, EngineYesNoJudge(engine))
    items = [RewardItem("q", "a", None, "q:0"), RewardItem("q", "b", None, "q:1")]
    batch = reward.score_counted(items)
    assert batch.scores == pytest.approx([0.4, 0.5]) and batch.unscored == {1: NO_READABLE_VERDICT}
    assert batch.counts == {
        "prompts": 4,
        "prompt_tokens": 40,
        "output_tokens": 4,
        "from_logprobs": 1,
        "parsed": 3,
        "rejected.no_verdict": 2,
        f"items.{NO_READABLE_VERDICT}": 1,
    }


def test_checklist_reward_counts_items_judged_on_the_fallback_checklist():
    class Maker:
        def checklists(self, queries):
            return [Checklist(("Is it right?",), fallback=text == "vague") for text, _ in queries]

    reward = LMChecklistReward.__new__(LMChecklistReward)
    reward.maker, reward.weights, reward.stats = Maker(), None, Counter()
    reward.item_probabilities = lambda items, questions: [[0.5] for _ in items]
    items = [RewardItem("vague", "a", None, "a:0"), RewardItem("clear", "b", None, "b:0")]
    batch = reward.score_counted(items)
    assert batch.counts == {"fallback_checklist": 1, "mean": 2} and batch.unscored == {}
    assert reward.stats == Counter(batch.counts)


def test_refinement_stats_of_shards_merge_with_weighted_pass_rates():
    first = {
        "versions_per_round": {"0": 2, "1": 1},
        "judged_per_round": {"0": 2, "1": 1},
        "mean_pass_rate_per_round": {"0": 0.25, "1": 1.0},
        "unjudged_items": 1,
        "not_revised": {"passed": 1},
        "judge": {"from_logprobs": 3, "parsed": 1, "fallback_checklists": 1},
    }
    second = {
        "versions_per_round": {"0": 2},
        "judged_per_round": {"0": 1},
        "mean_pass_rate_per_round": {"0": 1.0},
        "unjudged_items": 2,
        "not_revised": {"passed": 1, "too_long": 1},
        "judge": {"from_logprobs": 2, "fallback_checklists": 0},
    }
    merged = merge_refinement_stats([first, second])
    assert merged == {
        "versions_per_round": {"0": 4, "1": 1},
        "judged_per_round": {"0": 3, "1": 1},
        "mean_pass_rate_per_round": {"0": 0.5, "1": 1.0},
        "unjudged_items": 3,
        "not_revised": {"passed": 2, "too_long": 1},
        "judge": {"fallback_checklists": 1, "from_logprobs": 5, "parsed": 1},
    }
