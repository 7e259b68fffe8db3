"""GRPO's data sub-stages for one iteration (RLMT: Bhaskar et al., 2025, arXiv 2509.20357).

RLMT samples a group of answers per prompt from the policy, which thinks before it
answers; a preference reward model scores the *response only* (the text after the
thinking block), and in their "strict" mode an answer whose thinking block is malformed
is scored as an empty response. Each sample's advantage is its reward relative to its
group's (GRPO: Shao et al., 2024): ``(r - mean) / (std + eps)``, or ``r - mean`` without
the std (Dr. GRPO: Liu et al., 2025).

The samples come from the shared samples step (``bolt.online.stage.run_samples``, with
``n`` = the group size); this module adds the strict-mode scores and the groups the
GRPO job trains on (``bolt.train.grpo``). The pure parts are tested on hand-built rows.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from functools import cache

from bolt.config import PipelineConfig
from bolt.fingerprint import fingerprint
from bolt.longcot import parse_longcot
from bolt.records import Generation, GroupSample, Message, Query, ScoredGeneration
from bolt.rewards.base import RewardItem
from bolt.rewards.scoring import Rewards, rewards_identity, score_batch, summed_counts
from bolt.sharding import ShardPlan, ShardRunner, ShardWork, in_process, per_shard, run_sharded
from bolt.sharding import run_shard as run_one_shard
from bolt.stages import Stage
from bolt.store import ArtifactStore, Manifest, ShardInfo

CODE_VERSION = "1"
MALFORMED = "malformed_thinking"  # the reject reason of a sample strict mode blanked


def grpo_config(cfg: PipelineConfig) -> PipelineConfig:
    """``cfg`` as GRPO's samples step reads it: ``n`` is the group size."""
    online = cfg.online
    sampling = online.sampling.model_copy(update={"n": online.grpo_settings.group_size})
    return cfg.model_copy(update={"online": online.model_copy(update={"sampling": sampling})})


def reward_text(raw_text: str, strict: bool) -> tuple[str, bool]:
    """What the reward backends see of a sample, and whether strict mode blanked it.

    Every outcome backend judges the response only (``bolt.rewards.base.judged_response``
    drops the thoughts). In strict mode a sample whose thinking block is malformed
    (missing, repeated, unclosed, empty, or followed by no response) becomes the empty
    text, so it scores as an empty response would; a response cut by the token limit
    after a well-formed thinking block is kept.
    """
    if not strict or parse_longcot(raw_text, allow_unclosed_response=True).ok:
        return raw_text, False
    return "", True


def group_advantages(
    rewards: Sequence[float], *, scale_by_std: bool = True, eps: float = 1e-4
) -> list[float]:
    """GRPO's group-relative advantages of one group's rewards.

    ``(r - mean) / (std + eps)`` with the sample standard deviation (Bessel's correction,
    as TRL's ``nanstd``); ``r - mean`` when ``scale_by_std`` is false (Dr. GRPO). A group
    of one, or of equal rewards, has no relative signal: its advantages are 0.
    """
    if not all(math.isfinite(r) for r in rewards):
        raise ValueError("rewards contain NaN or infinity")
    n = len(rewards)
    if n == 0 or max(rewards) == min(rewards):
        return [0.0] * n  # exactly: a float mean of equal values need not equal them
    mean = sum(rewards) / n
    centred = [r - mean for r in rewards]
    if not scale_by_std:
        return centred
    std = math.sqrt(sum(c * c for c in centred) / (n - 1)) if n > 1 else 0.0
    return [c / (std + eps) for c in centred]


def build_groups(
    prompt: Query,
    scored: Sequence[ScoredGeneration],
    *,
    scale_by_std: bool,
    eps: float,
    iteration: int,
) -> list[GroupSample]:
    """One prompt's samples (in sample order) with their advantages."""
    ordered = sorted(scored, key=lambda s: s.generation.sample_index)
    advantages = group_advantages([s.reward for s in ordered], scale_by_std=scale_by_std, eps=eps)
    return [
        GroupSample(
            prompt_id=prompt.id,
            prompt=[Message(role="user", content=prompt.text)],
            completion=s.generation.raw_text,
            sample_index=s.generation.sample_index,
            reward=s.reward,
            advantage=a,
            malformed=s.reject_reason == MALFORMED,
            iteration=iteration,
        )
        for s, a in zip(ordered, advantages, strict=True)
    ]


def grpo_scores_fingerprint(cfg: PipelineConfig, samples_fp: str) -> str:
    return fingerprint(
        Stage.online_scores,
        {
            **rewards_identity(cfg.online.rewards, cfg.models.catalog),
            "strict_format": cfg.online.grpo_settings.strict_format,
        },
        upstream={"samples": samples_fp},
        code_version=CODE_VERSION,
    )


def score_strict(
    generations: Sequence[Generation], queries: Mapping[str, Query], rewards: Rewards, strict: bool
) -> tuple[list[ScoredGeneration], dict[str, int]]:
    """Every sample scored by every backend on what :func:`reward_text` leaves of it, and
    the backends' counts (``reward.<backend>.<count>``: a judge's verdicts read from
    log-probabilities or parsed, items it gave none)."""
    texts = [reward_text(g.raw_text, strict) for g in generations]
    items = [
        RewardItem(
            query=queries[g.query_id].text,
            response=text,
            reference=queries[g.query_id].reference_answer,
            key=f"{g.query_id}:{g.sample_index}",
            query_id=g.query_id,
            topic=queries[g.query_id].topic,
        )
        for g, (text, _) in zip(generations, texts, strict=True)
    ]
    batch = score_batch(items, rewards)
    rows = [
        ScoredGeneration(
            generation=g,
            rewards={n: s[i] for n, s in batch.by_backend.items()},
            reward=batch.combined[i],
            reject_reason=MALFORMED if texts[i][1] else None,
        )
        for i, g in enumerate(generations)
    ]
    return rows, batch.counts


def grpo_scores_work(
    cfg: PipelineConfig,
    store: ArtifactStore,
    fp: str,
    samples: Manifest,
    prompts: Manifest,
    rewards: Callable[[], Rewards],
) -> ShardWork[ShardInfo]:
    """What makes one strict-mode scores shard: the samples shard of the same index,
    scored on the response only."""
    strict = cfg.online.grpo_settings.strict_format
    queries = cache(lambda: {q.id: q for q in store.read_records(prompts, Query)})

    def work(plan: ShardPlan[ShardInfo]) -> ShardInfo:
        started = time.perf_counter()
        (shard,) = plan.items
        generations = list(store.read_shard(samples.stage, samples.fingerprint, shard, Generation))
        rows, counts = score_strict(generations, queries(), rewards(), strict)
        meta = {
            "seconds": round(time.perf_counter() - started, 3),
            MALFORMED: sum(r.reject_reason == MALFORMED for r in rows),
            "reward_counts": counts,
        }
        return store.write_shard(Stage.online_scores, fp, plan.index, rows, meta=meta)

    return work


def run_grpo_scores_shard(
    cfg: PipelineConfig,
    store: ArtifactStore,
    fp: str,
    plan: ShardPlan[ShardInfo],
    samples: Manifest,
    prompts: Manifest,
    rewards: Callable[[], Rewards],
) -> ShardInfo:
    """One scores shard task's body: its receipt if it finished before, else score it."""
    work = grpo_scores_work(cfg, store, fp, samples, prompts, rewards)
    return run_one_shard(store, Stage.online_scores, fp, plan, work)


def run_grpo_scores(
    cfg: PipelineConfig,
    store: ArtifactStore,
    samples: Manifest,
    prompts: Manifest,
    rewards: Callable[[], Rewards],
    run_shards: ShardRunner[ShardInfo] = in_process,
) -> Manifest:
    """The samples' rewards on the response only, strict mode as configured: one scores
    shard per samples shard, so a crash rescores only the shards it interrupted."""
    fp = grpo_scores_fingerprint(cfg, samples.fingerprint)
    if (done := store.manifest(Stage.online_scores, fp)) is not None:
        return done
    started = time.perf_counter()
    work = grpo_scores_work(cfg, store, fp, samples, prompts, rewards)
    shards = run_sharded(store, Stage.online_scores, fp, per_shard(samples), work, run_shards)
    return store.commit(
        Manifest(
            stage=Stage.online_scores,
            fingerprint=fp,
            code_version=CODE_VERSION,
            config={
                "rewards": [b.model_dump(mode="json") for b in cfg.online.rewards],
                "strict_format": cfg.online.grpo_settings.strict_format,
            },
            upstream={"samples": samples.fingerprint},
            shards=shards,
            counts={
                "scored": sum(s.records for s in shards),
                MALFORMED: sum(int(s.meta.get(MALFORMED, 0)) for s in shards),
                **summed_counts((s.meta for s in shards), "reward_counts"),
            },
            timings={"seconds": round(time.perf_counter() - started, 3)},
        )
    )


def groups_fingerprint(cfg: PipelineConfig, scores_fp: str, iteration: int) -> str:
    g = cfg.online.grpo_settings
    return fingerprint(
        Stage.online_groups,
        {"scale_by_std": g.scale_by_std, "eps": g.advantage_eps, "iteration": iteration},
        upstream={"scores": scores_fp},
        code_version=CODE_VERSION,
    )


def run_groups(
    cfg: PipelineConfig, store: ArtifactStore, scores: Manifest, prompts: Manifest, iteration: int
) -> Manifest:
    """Every prompt's group with its advantages; groups of equal rewards (no relative
    signal, only the KL term trains on them) are counted."""
    fp = groups_fingerprint(cfg, scores.fingerprint, iteration)
    if (done := store.manifest(Stage.online_groups, fp)) is not None:
        return done
    g = cfg.online.grpo_settings
    by_prompt: dict[str, list[ScoredGeneration]] = defaultdict(list)
    for row in store.read_records(scores, ScoredGeneration):
        by_prompt[row.generation.query_id].append(row)
    rows: list[GroupSample] = []
    flat = 0
    for query in store.read_records(prompts, Query):
        group = build_groups(
            query,
            by_prompt[query.id],
            scale_by_std=g.scale_by_std,
            eps=g.advantage_eps,
            iteration=iteration,
        )
        flat += bool(group) and all(s.advantage == 0 for s in group)
        rows += group
    rewards = [r.reward for r in rows]
    return store.commit(
        Manifest(
            stage=Stage.online_groups,
            fingerprint=fp,
            code_version=CODE_VERSION,
            config={"iteration": iteration, "grpo": g.model_dump(mode="json")},
            upstream={"scores": scores.fingerprint},
            shards=[store.write_shard(Stage.online_groups, fp, 0, rows)],
            counts={"samples": len(rows), "groups": len(by_prompt), "flat_groups": flat},
            stats={"mean_reward": sum(rewards) / len(rewards) if rewards else None},
        )
    )
