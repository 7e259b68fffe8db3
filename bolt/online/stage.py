"""Stage 3's data sub-stages for one iteration (BOLT §3.3), each content-addressed in
the store: prompts -> samples -> scores -> pairs.

The iteration goes on in ``bolt.train`` (the reference log-probs of the pairs, then the
DPO policy); the flow hands the pairs over. Each fingerprint chains its upstream's, and
iteration k's samples name the policy of iteration k-1, so a rerun finds every finished
sub-stage of every iteration and starts at the first one missing.
"""

from __future__ import annotations

import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from functools import cache

from bolt import decontamination
from bolt.config import PipelineConfig
from bolt.curation.dedup import deduplicate
from bolt.curation.sources import SourceRow, read_source, row_to_query
from bolt.engines import make_engine
from bolt.engines.base import ChatRequest, Engine
from bolt.engines.live import accelerator_claim, engine_key
from bolt.fingerprint import fingerprint
from bolt.generations import to_generation
from bolt.online.pairs import PromptSamples, pair_all
from bolt.online.refinement import refine_samples, refinement_payload
from bolt.records import Generation, Message, Query, Reject, ScoredGeneration
from bolt.resources import POOL, Role
from bolt.rewards.base import reward_item
from bolt.rewards.refinement import merge_refinement_stats
from bolt.rewards.scoring import Rewards, rewards_identity, score_batch, summed_counts
from bolt.sharding import (
    ShardPlan,
    ShardRunner,
    ShardWork,
    in_process,
    per_shard,
    plan_shards,
    run_sharded,
)
from bolt.sharding import run_shard as run_one_shard
from bolt.source_digests import SourceDigests
from bolt.stages import Stage
from bolt.store import ArtifactStore, FileInfo, Manifest, ShardInfo

CODE_VERSION = "1"


def prompts_fingerprint(
    cfg: PipelineConfig, iteration: int, digests: SourceDigests | None = None
) -> str:
    """``digests`` identify the prompt sources' content (default: by content, HEADing
    ``s3://`` sources: ``bolt.source_digests``)."""
    online = cfg.online
    digests = digests or SourceDigests.of_config(cfg)
    return fingerprint(
        Stage.online_prompts,
        {
            "sources": online.prompt_sources,
            "per_iteration": online.prompts_per_iteration,
            "seed": cfg.seed,
            "iteration": iteration,
            # Both decide which prompts count as duplicates, so which are left to choose.
            "near_dup_threshold": cfg.data.near_dup_threshold,
            "minhash_perm": cfg.data.minhash_perm,
            # Prompts overlapping a benchmark's are set aside before choosing.
            **decontamination.fingerprint_payload(cfg),
        },
        upstream=digests.upstream(online.prompt_sources),
        code_version=CODE_VERSION,
    )


def choose_prompts(pool: list[Query], per_iteration: int, seed: int, iteration: int) -> list[Query]:
    """Iteration k takes the k-th block of one seeded shuffle: iterations see different
    prompts while the pool lasts, then it wraps around."""
    order = sorted(pool, key=lambda q: q.id)
    random.Random(seed).shuffle(order)
    if not order:
        return []
    start = (iteration - 1) * per_iteration
    return [order[(start + i) % len(order)] for i in range(min(per_iteration, len(order)))]


def run_prompts(
    cfg: PipelineConfig,
    store: ArtifactStore,
    iteration: int,
    contamination: decontamination.NgramIndex | None = None,
) -> Manifest:
    """The iteration's prompts from the online sources, deduplicated as in Stage 1 and
    checked against the benchmarks (``contamination``: their n-gram index, needed while
    ``data.decontamination`` is on)."""
    contamination = decontamination.required(cfg, contamination)
    fp = prompts_fingerprint(cfg, iteration)
    if (done := store.manifest(Stage.online_prompts, fp)) is not None:
        return done
    pool, unusable = [], Counter()
    for source in cfg.online.prompt_sources:
        for item in read_source(source, cfg.storage.s3):
            mapped = row_to_query(item, source) if isinstance(item, SourceRow) else item
            if isinstance(mapped, Query):
                pool.append(mapped)
            else:
                unusable[mapped.reason] += 1
    deduped = deduplicate(pool, cfg.data.near_dup_threshold, cfg.data.minhash_perm)
    clean, contaminated = decontamination.decontaminate(
        deduped.kept,
        contamination,
        text=lambda q: q.text,
        reject=lambda q, m: Reject(
            stage=Stage.online_prompts,
            reason=m.reason,
            source=q.id,
            raw=q.text[:2000],
            detail=decontamination.match_detail(m),
        ),
    )
    chosen = choose_prompts(clean, cfg.online.prompts_per_iteration, cfg.seed, iteration)
    files = [store.put_records(Stage.online_prompts, fp, "rejects.jsonl.gz", contaminated)]
    return store.commit(
        Manifest(
            stage=Stage.online_prompts,
            fingerprint=fp,
            code_version=CODE_VERSION,
            config={"iteration": iteration, "online": cfg.online.model_dump(mode="json")},
            upstream=SourceDigests.of_config(cfg).upstream(cfg.online.prompt_sources),
            shards=[store.write_shard(Stage.online_prompts, fp, 0, chosen)],
            files=files,
            counts={
                "read": len(pool),
                "duplicates": len(pool) - len(deduped.kept),
                "unusable": sum(unusable.values()),
                **decontamination.contamination_counts(contaminated),
                "prompts": len(chosen),
            },
        )
    )


def samples_fingerprint(cfg: PipelineConfig, prompts_fp: str, policy_id: str) -> str:
    """``policy_id`` names the sampled policy: ``sft/<fp>`` or ``online-policy/<fp>``."""
    return fingerprint(
        Stage.online_samples,
        {
            "sampling": cfg.online.sampling,
            **refinement_payload(cfg),
            # Where the prompts are cut changes what a once-seeded engine samples.
            **({"shard_size": cfg.online.shard_size} if cfg.online.shard_size else {}),
        },
        upstream={"prompts": prompts_fp, "policy": policy_id},
        code_version=CODE_VERSION,
    )


def policy_engine(cfg: PipelineConfig, policy_dir: str) -> Engine:
    """The live sampling engine on the policy in ``policy_dir``, from the process's pool.

    Each iteration's policy is a new folder, hence a new engine; the old one is released
    before training (``bolt.train.stage``) and never samples again. The quick evaluation
    of the policy answers on this engine when its settings and seed are the eval's.
    """
    settings, seed = cfg.engine_settings(Stage.online_samples), cfg.online.sampling.seed
    return POOL.get(
        engine_key(policy_dir, settings, Role.generation, seed),
        Role.generation,
        lambda: make_engine(settings, policy_dir, seed=seed, device=cfg.compute.device),
        label=f"{settings.kind.value} engine on the policy {policy_dir}",
        claim=accelerator_claim(settings, cfg.compute.device),
    )


def samples_work(
    cfg: PipelineConfig, store: ArtifactStore, fp: str, engine: Callable[[], Engine]
) -> ShardWork[Query]:
    """What makes one samples shard: n samples per prompt of the shard, stored."""

    def work(plan: ShardPlan[Query]) -> ShardInfo:
        live = engine()
        started = time.perf_counter()
        requests = [ChatRequest(q.id, [{"role": "user", "content": q.text}]) for q in plan.items]
        outputs = live.generate(requests, cfg.online.sampling) if requests else []
        rows = [
            to_generation(
                query.id, c, live, cfg.online.sampling.seed, prompt_tokens=c.prompt_tokens
            )
            for query, completions in zip(plan.items, outputs, strict=True)
            for c in completions
        ]
        meta: dict = {}
        if cfg.online.refinement is not None:
            rows, files, refined = refine_samples(
                cfg, store, fp, plan.index, rows, plan.items, engine
            )
            meta = {"files": [f.model_dump() for f in files], "refinement": refined}
        meta |= {
            "seconds": round(time.perf_counter() - started, 3),
            "output_tokens": sum(r.output_tokens for r in rows),
        }
        return store.write_shard(Stage.online_samples, fp, plan.index, rows, meta=meta)

    return work


def sample_plans(cfg: PipelineConfig, queries: list[Query]) -> list[ShardPlan[Query]]:
    """``online.shard_size`` prompts per shard; all in one shard while it is unset."""
    return plan_shards(queries, cfg.online.shard_size, empty_shard=True)


def run_samples_shard(
    cfg: PipelineConfig,
    store: ArtifactStore,
    fp: str,
    plan: ShardPlan[Query],
    engine: Callable[[], Engine],
) -> ShardInfo:
    """One samples shard task's body: its receipt if it finished before, else sample it."""
    return run_one_shard(
        store, Stage.online_samples, fp, plan, samples_work(cfg, store, fp, engine)
    )


def run_samples(
    cfg: PipelineConfig,
    store: ArtifactStore,
    prompts: Manifest,
    policy_id: str,
    engine: Callable[[], Engine],
    run_shards: ShardRunner[Query] = in_process,
) -> Manifest:
    """n samples per prompt from the current policy (paper: 8, temperature 1, top-p 1),
    ``online.shard_size`` prompts per shard (``bolt.sharding``: a rerun samples only the
    shards without a receipt)."""
    fp = samples_fingerprint(cfg, prompts.fingerprint, policy_id)
    if (done := store.manifest(Stage.online_samples, fp)) is not None:
        return done
    queries = list(store.read_records(prompts, Query))
    started = time.perf_counter()
    plans = sample_plans(cfg, queries)
    work = samples_work(cfg, store, fp, engine)
    shards = run_sharded(store, Stage.online_samples, fp, plans, work, run_shards)
    files = [FileInfo.model_validate(f) for s in shards for f in s.meta.get("files", [])]
    # Every shard's round, merged: a manifest of several shards reports them all.
    refined = [s.meta["refinement"] for s in shards if s.meta.get("refinement")]
    merged = merge_refinement_stats(refined) if refined else {}
    return store.commit(
        Manifest(
            stage=Stage.online_samples,
            fingerprint=fp,
            code_version=CODE_VERSION,
            config={"sampling": cfg.online.sampling.model_dump(mode="json")},
            upstream={"prompts": prompts.fingerprint, "policy": policy_id},
            shards=shards,
            files=files,
            stats={"refinement": merged} if merged else {},
            counts={
                "prompts": len(queries),
                "samples": sum(s.records for s in shards),
                **{f"refinement.{k}": v for k, v in merged.get("judge", {}).items()},
            },
            timings={"seconds": round(time.perf_counter() - started, 3)},
            tokens={"output": sum(s.meta.get("output_tokens", 0) for s in shards)},
        )
    )


def scores_fingerprint(cfg: PipelineConfig, samples_fp: str) -> str:
    return fingerprint(
        Stage.online_scores,
        rewards_identity(cfg.online.rewards, cfg.models.catalog),
        upstream={"samples": samples_fp},
        code_version=CODE_VERSION,
    )


def score_samples(
    generations: list[Generation],
    queries: Mapping[str, Query],
    rewards: Rewards,
) -> tuple[list[ScoredGeneration], dict[str, int]]:
    """Every sample scored by every backend (paper: outcome reward + rule-based format
    reward), and the backends' counts. Unlike Stage 1's filter nothing is set aside: a
    malformed sample is exactly the rejected side DPO should learn from, and the format
    reward scores it low; a sample a judge gave no verdict keeps the judge's neutral
    placeholder and is counted (``reward.<backend>.items.<reason>``)."""
    items = [reward_item(g, queries[g.query_id]) for g in generations]
    batch = score_batch(items, rewards)
    rows = [
        ScoredGeneration(
            generation=g,
            rewards={n: s[i] for n, s in batch.by_backend.items()},
            reward=batch.combined[i],
        )
        for i, g in enumerate(generations)
    ]
    return rows, batch.counts


def scores_work(
    store: ArtifactStore,
    fp: str,
    samples: Manifest,
    prompts: Manifest,
    rewards: Callable[[], Rewards],
) -> ShardWork[ShardInfo]:
    """What makes one scores shard: the samples shard of the same index, scored."""
    queries = cache(lambda: {q.id: q for q in store.read_records(prompts, Query)})

    def work(plan: ShardPlan[ShardInfo]) -> ShardInfo:
        started = time.perf_counter()
        (shard,) = plan.items
        generations = list(store.read_shard(samples.stage, samples.fingerprint, shard, Generation))
        rows, counts = score_samples(generations, queries(), rewards())
        meta = {"seconds": round(time.perf_counter() - started, 3), "reward_counts": counts}
        return store.write_shard(Stage.online_scores, fp, plan.index, rows, meta=meta)

    return work


def run_scores_shard(
    store: ArtifactStore,
    fp: str,
    plan: ShardPlan[ShardInfo],
    samples: Manifest,
    prompts: Manifest,
    rewards: Callable[[], Rewards],
) -> ShardInfo:
    """One scores shard task's body: its receipt if it finished before, else score it."""
    work = scores_work(store, fp, samples, prompts, rewards)
    return run_one_shard(store, Stage.online_scores, fp, plan, work)


def run_scores(
    cfg: PipelineConfig,
    store: ArtifactStore,
    samples: Manifest,
    prompts: Manifest,
    rewards: Callable[[], Rewards],
    run_shards: ShardRunner[ShardInfo] = in_process,
) -> Manifest:
    """Every sample scored, one scores shard per samples shard (resumable likewise)."""
    fp = scores_fingerprint(cfg, samples.fingerprint)
    if (done := store.manifest(Stage.online_scores, fp)) is not None:
        return done
    started = time.perf_counter()
    work = scores_work(store, fp, samples, prompts, rewards)
    shards = run_sharded(store, Stage.online_scores, fp, per_shard(samples), work, run_shards)
    return store.commit(
        Manifest(
            stage=Stage.online_scores,
            fingerprint=fp,
            code_version=CODE_VERSION,
            config={"rewards": [b.model_dump(mode="json") for b in cfg.online.rewards]},
            upstream={"samples": samples.fingerprint},
            shards=shards,
            counts={
                "scored": sum(s.records for s in shards),
                **summed_counts((s.meta for s in shards), "reward_counts"),
            },
            timings={"seconds": round(time.perf_counter() - started, 3)},
        )
    )


def pairs_fingerprint(cfg: PipelineConfig, scores_fp: str, iteration: int) -> str:
    online = cfg.online
    return fingerprint(
        Stage.online_pairs,
        {
            "strategy": online.pair_strategy,
            "min_gap": online.min_reward_gap,
            "seed": cfg.seed,
            "iteration": iteration,
        },
        upstream={"scores": scores_fp},
        code_version=CODE_VERSION,
    )


def run_pairs(
    cfg: PipelineConfig, store: ArtifactStore, scores: Manifest, prompts: Manifest, iteration: int
) -> Manifest:
    """One pair per prompt (paper: highest vs lowest reward); skipped prompts by reason."""
    fp = pairs_fingerprint(cfg, scores.fingerprint, iteration)
    if (done := store.manifest(Stage.online_pairs, fp)) is not None:
        return done
    by_prompt: dict[str, list[ScoredGeneration]] = defaultdict(list)
    for row in store.read_records(scores, ScoredGeneration):
        by_prompt[row.generation.query_id].append(row)
    grouped = [
        PromptSamples(
            q.id,
            [Message(role="user", content=q.text)],
            [
                (s.generation.raw_text, s.reward)
                for s in sorted(by_prompt[q.id], key=lambda s: s.generation.sample_index)
            ],
        )
        for q in store.read_records(prompts, Query)
    ]
    pairing = pair_all(
        grouped,
        cfg.online.pair_strategy,
        min_gap=cfg.online.min_reward_gap,
        rng_seed=cfg.seed,
        iteration=iteration,
    )
    gaps = [p.chosen_reward - p.rejected_reward for p in pairing.pairs]
    return store.commit(
        Manifest(
            stage=Stage.online_pairs,
            fingerprint=fp,
            code_version=CODE_VERSION,
            config={
                "iteration": iteration,
                "pair_strategy": str(cfg.online.pair_strategy),
                "min_reward_gap": cfg.online.min_reward_gap,
            },
            upstream={"scores": scores.fingerprint},
            shards=[store.write_shard(Stage.online_pairs, fp, 0, pairing.pairs)],
            counts={
                "prompts": len(grouped),
                "pairs": len(pairing.pairs),
                "skipped": len(pairing.skips),
                **{f"skipped.{k}": v for k, v in pairing.skip_counts().items()},
            },
            stats={"mean_reward_gap": sum(gaps) / len(gaps) if gaps else None},
        )
    )
