"""The scoring and filtering stages (BOLT §3.1): bootstrapped samples -> the SFT set.

``score`` (one shard per bootstrap shard, resumable through ``bolt.sharding``; the
outputs do not depend on how the bootstrap was sharded, each sample is scored on its
own): the format filter names why a
sample fails; every passing sample gets each reward backend's score on its response
(the thoughts are never scored) and their weighted sum. A sample a judge could give no
verdict (``no_verdict: <backend>: <reason>``) is set aside like a format failure, and
the backends' counts (verdicts read from log-probabilities or parsed, rejects by
reason, fallback checklists) are summed over the shards into the manifest's counts. ``filter`` (one pass over all
scored rows, cheap): the percentile cut over the whole stage, then the per-query
selection; the SFT set as JSONL shards and as an HF dataset, every dropped row in
``rejects.jsonl.gz`` with its reason, and the stats.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path

from bolt.config import PipelineConfig, RewardKind, SelectionMode
from bolt.filtering.selection import (
    NO_VERDICT_PREFIX,
    row_id,
    select,
    to_rejects,
    to_sft_example,
)
from bolt.fingerprint import fingerprint
from bolt.format_rules import RepetitionRule, check_format
from bolt.plots import histogram
from bolt.records import Generation, Query, ScoredGeneration, SftExample
from bolt.rewards.base import reward_item
from bolt.rewards.scoring import (
    COUNT_PREFIX,
    Rewards,
    rewards_identity,
    score_batch,
    summed_counts,
)
from bolt.sharding import ShardPlan, ShardRunner, ShardWork, in_process, per_shard, run_sharded
from bolt.sharding import run_shard as run_one_shard
from bolt.stages import Stage
from bolt.store import ArtifactStore, Manifest, ShardInfo

CODE_VERSION = "1"
SFT_EXAMPLES_PER_SHARD = 4096


def score_fingerprint(cfg: PipelineConfig, bootstrap_fp: str) -> str:
    return fingerprint(
        Stage.score,
        {
            **rewards_identity(cfg.filter.rewards, cfg.models.catalog),
            "max_new_tokens": cfg.bootstrap.sampling.max_new_tokens,
            "max_repeat_fraction": cfg.filter.max_repeat_fraction,
        },
        upstream={Stage.bootstrap: bootstrap_fp},
        code_version=CODE_VERSION,
    )


def score_rows(
    generations: list[Generation],
    queries: Mapping[str, Query],
    rewards: Rewards,
    *,
    max_new_tokens: int,
    repetition: RepetitionRule,
) -> tuple[list[ScoredGeneration], dict[str, int]]:
    """Format-check every sample, score the passing ones with every backend; the rows
    and the backends' counts of this batch."""
    reasons = {
        row: check_format(g, max_new_tokens=max_new_tokens, repetition=repetition)
        for row, g in enumerate(generations)
    }
    passing = [g for row, g in enumerate(generations) if reasons[row] is None]
    batch = score_batch([reward_item(g, queries[g.query_id]) for g in passing], rewards)
    scored_passing = iter(range(len(passing)))
    rows = []
    for row, g in enumerate(generations):
        if reasons[row] is not None:
            # Format failures carry no reward: 0.0 is a placeholder the selection never reads.
            rows.append(
                ScoredGeneration(
                    generation=g, rewards={}, reward=0.0, reject_reason=str(reasons[row])
                )
            )
            continue
        i = next(scored_passing)
        unscored = batch.unscored.get(i)
        rows.append(
            ScoredGeneration(
                generation=g,
                rewards={n: s[i] for n, s in batch.by_backend.items()},
                reward=batch.combined[i],
                reject_reason=None if unscored is None else f"{NO_VERDICT_PREFIX}{unscored}",
            )
        )
    return rows, batch.counts


def score_work(
    cfg: PipelineConfig,
    store: ArtifactStore,
    fp: str,
    bootstrap: Manifest,
    data: Manifest,
    rewards: Callable[[], Rewards],
) -> ShardWork[ShardInfo]:
    """What makes one score shard: the bootstrap shard of the same index, scored."""
    queries = cache(lambda: {q.id: q for q in store.read_records(data, Query)})
    rule = RepetitionRule(max_repeat_fraction=cfg.filter.max_repeat_fraction)

    def work(plan: ShardPlan[ShardInfo]) -> ShardInfo:
        started = time.perf_counter()
        (shard,) = plan.items
        generations = list(
            store.read_shard(bootstrap.stage, bootstrap.fingerprint, shard, Generation)
        )
        rows, counts = score_rows(
            generations,
            queries(),
            rewards(),
            max_new_tokens=cfg.bootstrap.sampling.max_new_tokens,
            repetition=rule,
        )
        meta = {"seconds": round(time.perf_counter() - started, 3), "reward_counts": counts}
        return store.write_shard(Stage.score, fp, plan.index, rows, meta=meta)

    return work


def run_score_shard(
    cfg: PipelineConfig,
    store: ArtifactStore,
    fp: str,
    plan: ShardPlan[ShardInfo],
    bootstrap: Manifest,
    data: Manifest,
    rewards: Callable[[], Rewards],
) -> ShardInfo:
    """One score shard task's body: its receipt if it finished before, else score it."""
    work = score_work(cfg, store, fp, bootstrap, data, rewards)
    return run_one_shard(store, Stage.score, fp, plan, work)


def run_score(
    cfg: PipelineConfig,
    store: ArtifactStore,
    bootstrap: Manifest,
    data: Manifest,
    rewards: Callable[[], Rewards],
    run_shards: ShardRunner[ShardInfo] = in_process,
) -> Manifest:
    """Score every bootstrap shard that has no scored twin yet, then commit."""
    fp = score_fingerprint(cfg, bootstrap.fingerprint)
    if (done := store.manifest(Stage.score, fp)) is not None:
        return done
    work = score_work(cfg, store, fp, bootstrap, data, rewards)
    shards = run_sharded(store, Stage.score, fp, per_shard(bootstrap), work, run_shards)
    return store.commit(
        Manifest(
            stage=Stage.score,
            fingerprint=fp,
            code_version=CODE_VERSION,
            config={"filter": cfg.filter.model_dump(mode="json")},
            upstream={Stage.bootstrap: bootstrap.fingerprint},
            shards=shards,
            counts={
                "scored": sum(s.records for s in shards),
                **summed_counts((s.meta for s in shards), "reward_counts"),
            },
            timings={"seconds": round(sum(s.meta.get("seconds", 0.0) for s in shards), 3)},
        )
    )


def filter_fingerprint(cfg: PipelineConfig, score_fp: str, data_fp: str) -> str:
    settings = {
        "percentile": cfg.filter.percentile,
        "selection": cfg.filter.selection,
        "top_k": cfg.filter.top_k,
    }
    return fingerprint(
        Stage.filter,
        settings,
        upstream={Stage.score: score_fp, Stage.curation: data_fp},
        code_version=CODE_VERSION,
    )


def checklist_pass_rates(
    cfg: PipelineConfig, rows: list[ScoredGeneration]
) -> dict[str, float] | None:
    """For best-of-n by pass rate: the checklist reward IS the mean pass probability."""
    if cfg.filter.selection != SelectionMode.best_of_n_pass_rate:
        return None
    name = next(b.name for b in cfg.filter.rewards if b.kind == RewardKind.lm_checklist)
    return {row_id(r): r.rewards[name] for r in rows if r.reject_reason is None}


def run_filter(
    cfg: PipelineConfig, store: ArtifactStore, scored: Manifest, data: Manifest
) -> Manifest:
    fp = filter_fingerprint(cfg, scored.fingerprint, data.fingerprint)
    if (done := store.manifest(Stage.filter, fp)) is not None:
        return done
    rows = list(store.read_records(scored, ScoredGeneration))
    queries = {q.id: q for q in store.read_records(data, Query)}
    f = cfg.filter
    selection = select(
        rows,
        mode=f.selection,
        percentile=f.percentile,
        top_k=f.top_k,
        pass_rates=checklist_pass_rates(cfg, rows),
    )
    examples = [to_sft_example(r, queries[r.generation.query_id].text) for r in selection.kept]
    shards = [
        store.write_shard(Stage.filter, fp, i, examples[start : start + SFT_EXAMPLES_PER_SHARD])
        for i, start in enumerate(range(0, max(1, len(examples)), SFT_EXAMPLES_PER_SHARD))
    ]
    files = [store.put_records(Stage.filter, fp, "rejects.jsonl.gz", to_rejects(selection.dropped))]
    with tempfile.TemporaryDirectory() as tmp:
        files += _hf_dataset(store, fp, examples, Path(tmp))
    passing = [r.reward for r in rows if r.reject_reason is None]
    histogram_of_rewards = lambda path: histogram(
        path,
        "combined reward of format-valid samples",
        {"all valid": passing, "kept": [r.reward for r in selection.kept]},
        xlabel="reward",
    )
    files.append(store.put_plot(Stage.filter, fp, "rewards.png", histogram_of_rewards))
    return store.commit(
        Manifest(
            stage=Stage.filter,
            fingerprint=fp,
            code_version=CODE_VERSION,
            config={"filter": f.model_dump(mode="json")},
            upstream={Stage.score: scored.fingerprint, Stage.curation: data.fingerprint},
            shards=shards,
            files=files,
            counts={
                "samples": len(rows),
                "kept": len(examples),
                **{f"dropped.{k}": v for k, v in selection.drop_counts().items()},
                # The scoring backends' counts, so this manifest tells how its rewards were read.
                **{k: v for k, v in scored.counts.items() if k.startswith(f"{COUNT_PREFIX}.")},
            },
            stats=_filter_stats(rows, selection.kept, queries),
        )
    )


def _hf_dataset(store: ArtifactStore, fp: str, examples: list[SftExample], tmp: Path) -> list:
    """The SFT set as an HF dataset (``datasets.load_from_disk``), for trainers that want one."""
    import datasets

    rows = [e.model_dump(mode="json") for e in examples]
    features = datasets.Features(
        {
            "id": datasets.Value("string"),
            "query_id": datasets.Value("string"),
            "reward": datasets.Value("float64"),
            "messages": [{"role": datasets.Value("string"), "content": datasets.Value("string")}],
        }
    )
    # Column-wise so an empty set still gets its schema (from_list infers it from row 0).
    columns = {name: [row[name] for row in rows] for name in features}
    datasets.Dataset.from_dict(columns, features=features).save_to_disk(str(tmp / "hf_dataset"))
    return store.put_dir(Stage.filter, fp, "hf_dataset", tmp / "hf_dataset")


def _filter_stats(
    rows: list[ScoredGeneration], kept: list[ScoredGeneration], queries: Mapping[str, Query]
) -> dict:
    reasons = Counter(
        r.reject_reason
        for r in rows
        if r.reject_reason and not r.reject_reason.startswith(NO_VERDICT_PREFIX)
    )
    topic = lambda r: queries[r.generation.query_id].topic or "untagged"
    per_topic_queries = Counter(topic(r) for r in rows if r.generation.sample_index == 0)
    per_topic_kept = Counter(topic(r) for r in kept)
    return {
        "format_pass_rate": round(1 - sum(reasons.values()) / len(rows), 4) if rows else 0.0,
        "format_fail_rate_by_reason": {
            k: round(v / len(rows), 4) for k, v in sorted(reasons.items())
        },
        "per_topic_yield": {
            t: round(per_topic_kept[t] / n, 4) for t, n in sorted(per_topic_queries.items())
        },
        "mean_kept_reward": round(sum(r.reward for r in kept) / len(kept), 4) if kept else None,
    }
