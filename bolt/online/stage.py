"""Stage 3's sub-stages for one iteration (BOLT §3.3), each content-addressed in the store.

prompts -> samples -> scores -> pairs -> reference log-probs -> policy (bolt.train.dpo).
Each fingerprint chains its upstream's, and iteration k's samples name the policy of
iteration k-1, so a rerun finds every finished sub-stage of every iteration and starts
at the first one missing.
"""

from __future__ import annotations

import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from pathlib import Path

from bolt import longcot
from bolt.config import PipelineConfig, TrainCommon
from bolt.curation.dedup import deduplicate
from bolt.curation.sources import SourceRow, read_source, row_to_query
from bolt.curation.stage import source_digest
from bolt.engines.base import ChatRequest, Engine
from bolt.fingerprint import fingerprint
from bolt.online.pairs import PromptSamples, pair_all
from bolt.online.preference_data import ReferenceLogps, reference_logps, tokenize_pair
from bolt.records import Generation, Message, PreferencePair, Query, ScoredGeneration
from bolt.rewards.base import RewardModel, combine, reward_item
from bolt.store import ArtifactStore, Manifest

PROMPTS, SAMPLES, SCORES, PAIRS, REFERENCE = (
    "online-prompts",
    "online-samples",
    "online-scores",
    "online-pairs",
    "online-reference",
)
CODE_VERSION = "1"
# Pairs per forward pass of the reference model (two sequences each).
REFERENCE_BATCH = 4


def prompts_fingerprint(cfg: PipelineConfig, iteration: int) -> str:
    online = cfg.online
    return fingerprint(
        PROMPTS,
        {
            "sources": online.prompt_sources,
            "per_iteration": online.prompts_per_iteration,
            "seed": cfg.seed,
            "iteration": iteration,
            "near_dup_threshold": cfg.data.near_dup_threshold,
        },
        upstream={f"source:{s.name}": source_digest(s) for s in online.prompt_sources},
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


def run_prompts(cfg: PipelineConfig, store: ArtifactStore, iteration: int) -> Manifest:
    """The iteration's prompts from the online sources, deduplicated as in Stage 1."""
    fp = prompts_fingerprint(cfg, iteration)
    if (done := store.manifest(PROMPTS, fp)) is not None:
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
    chosen = choose_prompts(deduped.kept, cfg.online.prompts_per_iteration, cfg.seed, iteration)
    return store.commit(
        Manifest(
            stage=PROMPTS,
            fingerprint=fp,
            code_version=CODE_VERSION,
            config={"iteration": iteration, "online": cfg.online.model_dump(mode="json")},
            upstream={f"source:{s.name}": source_digest(s) for s in cfg.online.prompt_sources},
            shards=[store.write_shard(PROMPTS, fp, 0, chosen)],
            counts={
                "read": len(pool),
                "duplicates": len(pool) - len(deduped.kept),
                "unusable": sum(unusable.values()),
                "prompts": len(chosen),
            },
        )
    )


def samples_fingerprint(cfg: PipelineConfig, prompts_fp: str, policy_id: str) -> str:
    """``policy_id`` names the sampled policy: ``sft/<fp>`` or ``online-policy/<fp>``."""
    return fingerprint(
        SAMPLES,
        {"sampling": cfg.online.sampling},
        upstream={"prompts": prompts_fp, "policy": policy_id},
        code_version=CODE_VERSION,
    )


def run_samples(
    cfg: PipelineConfig,
    store: ArtifactStore,
    prompts: Manifest,
    policy_id: str,
    engine: Callable[[], Engine],
) -> Manifest:
    """n samples per prompt from the current policy (paper: 8, temperature 1, top-p 1)."""
    fp = samples_fingerprint(cfg, prompts.fingerprint, policy_id)
    if (done := store.manifest(SAMPLES, fp)) is not None:
        return done
    queries = list(store.read_records(prompts, Query))
    live = engine()
    started = time.perf_counter()
    requests = [ChatRequest(q.id, [{"role": "user", "content": q.text}]) for q in queries]
    outputs = live.generate(requests, cfg.online.sampling) if requests else []
    rows = []
    for query, completions in zip(queries, outputs, strict=True):
        for c in completions:
            parsed = longcot.parse_longcot(c.text)
            rows.append(
                Generation(
                    query_id=query.id,
                    sample_index=c.index,
                    prompt_tokens=c.prompt_tokens,
                    raw_text=c.text,
                    thoughts=parsed.value.thoughts if parsed.value else None,
                    response=parsed.value.response if parsed.value else None,
                    parse_error=parsed.error.value if parsed.error else None,
                    finish_reason=c.finish_reason,
                    output_tokens=c.output_tokens,
                    cached_prompt_tokens=c.cached_prompt_tokens,
                    engine=live.name,
                    model=live.model,
                    seed=cfg.online.sampling.seed,
                )
            )
    return store.commit(
        Manifest(
            stage=SAMPLES,
            fingerprint=fp,
            code_version=CODE_VERSION,
            config={"sampling": cfg.online.sampling.model_dump(mode="json")},
            upstream={"prompts": prompts.fingerprint, "policy": policy_id},
            shards=[store.write_shard(SAMPLES, fp, 0, rows)],
            counts={"prompts": len(queries), "samples": len(rows)},
            timings={"seconds": round(time.perf_counter() - started, 3)},
            tokens={"output": sum(r.output_tokens for r in rows)},
        )
    )


def scores_fingerprint(cfg: PipelineConfig, samples_fp: str) -> str:
    catalog = cfg.models.catalog
    return fingerprint(
        SCORES,
        {
            "rewards": [
                b.model_dump(mode="json", exclude={"batch_size"}) for b in cfg.online.rewards
            ],
            "reward_models": {b.model: catalog[b.model] for b in cfg.online.rewards if b.model},
        },
        upstream={"samples": samples_fp},
        code_version=CODE_VERSION,
    )


def score_samples(
    generations: list[Generation],
    queries: Mapping[str, Query],
    rewards: Mapping[str, tuple[RewardModel, float]],
) -> list[ScoredGeneration]:
    """Every sample scored by every backend (paper: outcome reward + rule-based format
    reward). Unlike Stage 1's filter nothing is set aside: a malformed sample is exactly
    the rejected side DPO should learn from, and the format reward scores it low."""
    items = [reward_item(g, queries[g.query_id]) for g in generations]
    by_backend = {name: model.score(items) if items else [] for name, (model, _) in rewards.items()}
    combined = combine(by_backend, {name: weight for name, (_, weight) in rewards.items()})
    return [
        ScoredGeneration(
            generation=g, rewards={n: s[i] for n, s in by_backend.items()}, reward=combined[i]
        )
        for i, g in enumerate(generations)
    ]


def run_scores(
    cfg: PipelineConfig,
    store: ArtifactStore,
    samples: Manifest,
    prompts: Manifest,
    rewards: Callable[[], Mapping[str, tuple[RewardModel, float]]],
) -> Manifest:
    fp = scores_fingerprint(cfg, samples.fingerprint)
    if (done := store.manifest(SCORES, fp)) is not None:
        return done
    started = time.perf_counter()
    queries = {q.id: q for q in store.read_records(prompts, Query)}
    rows = score_samples(list(store.read_records(samples, Generation)), queries, rewards())
    return store.commit(
        Manifest(
            stage=SCORES,
            fingerprint=fp,
            code_version=CODE_VERSION,
            config={"rewards": [b.model_dump(mode="json") for b in cfg.online.rewards]},
            upstream={"samples": samples.fingerprint},
            shards=[store.write_shard(SCORES, fp, 0, rows)],
            counts={"scored": len(rows)},
            timings={"seconds": round(time.perf_counter() - started, 3)},
        )
    )


def pairs_fingerprint(cfg: PipelineConfig, scores_fp: str, iteration: int) -> str:
    online = cfg.online
    return fingerprint(
        PAIRS,
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
    if (done := store.manifest(PAIRS, fp)) is not None:
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
            stage=PAIRS,
            fingerprint=fp,
            code_version=CODE_VERSION,
            config={
                "iteration": iteration,
                "pair_strategy": str(cfg.online.pair_strategy),
                "min_reward_gap": cfg.online.min_reward_gap,
            },
            upstream={"scores": scores.fingerprint},
            shards=[store.write_shard(PAIRS, fp, 0, pairing.pairs)],
            counts={
                "prompts": len(grouped),
                "pairs": len(pairing.pairs),
                "skipped": len(pairing.skips),
                **{f"skipped.{k}": v for k, v in pairing.skip_counts().items()},
            },
            stats={"mean_reward_gap": sum(gaps) / len(gaps) if gaps else None},
        )
    )


def reference_fingerprint(cfg: PipelineConfig, pairs_fp: str, reference_id: str) -> str:
    """``reference_id`` names the reference model as ``policy_id`` names a policy."""
    return fingerprint(
        REFERENCE,
        {"max_length": cfg.online.max_length, "precision": cfg.online.precision},
        upstream={"pairs": pairs_fp, "reference_model": reference_id},
        code_version=CODE_VERSION,
    )


def run_reference(
    cfg: PipelineConfig,
    store: ArtifactStore,
    pairs: Manifest,
    reference_id: str,
    reference_dir: str,
) -> Manifest:
    """The reference model's log-probs of every pair, once, in a pass of its own."""
    from transformers import AutoTokenizer

    from bolt.train.sft import load_model

    fp = reference_fingerprint(cfg, pairs.fingerprint, reference_id)
    if (done := store.manifest(REFERENCE, fp)) is not None:
        return done
    started = time.perf_counter()
    records = list(store.read_records(pairs, PreferencePair))
    tokenizer = AutoTokenizer.from_pretrained(reference_dir)
    tokenized = [tokenize_pair(tokenizer, r, cfg.online.max_length) for r in records]
    model = load_model(reference_dir, cfg.online.precision, cfg.compute.device)
    logps = reference_logps(model, tokenized, tokenizer.pad_token_id, REFERENCE_BATCH)
    rows = [
        ReferenceLogps(prompt_id=r.prompt_id, chosen_logp=c, rejected_logp=j)
        for r, (c, j) in zip(records, logps, strict=True)
    ]
    return store.commit(
        Manifest(
            stage=REFERENCE,
            fingerprint=fp,
            code_version=CODE_VERSION,
            config={"max_length": cfg.online.max_length, "precision": str(cfg.online.precision)},
            upstream={"pairs": pairs.fingerprint, "reference_model": reference_id},
            shards=[store.write_shard(REFERENCE, fp, 0, rows)],
            counts={"pairs": len(rows)},
            timings={"seconds": round(time.perf_counter() - started, 3)},
        )
    )


def policy_fingerprint(
    cfg: PipelineConfig, pairs_fp: str, reference_fp: str, initial_policy_id: str, iteration: int
) -> str:
    """What changes the trained policy: the training config, its data and its start."""
    online = cfg.online
    # Only what trains this iteration: the iteration count, the sampling and the pairing
    # settings reach the policy through its upstreams, and memory knobs change nothing.
    training = {
        name: getattr(online, name)
        for name in TrainCommon.model_fields
        if name != "gradient_checkpointing"
    }
    return fingerprint(
        "online-policy",
        {**training, "beta": online.beta, "loss_type": online.loss_type, "iteration": iteration},
        upstream={"pairs": pairs_fp, "reference": reference_fp, "initial": initial_policy_id},
        code_version=CODE_VERSION,
    )


def local_model_dir(store: ArtifactStore, manifest: Manifest, model_dir: str, cache: Path) -> str:
    """A stored model (SFT or a policy) as a local folder, fetched once."""
    dest = cache / manifest.stage / manifest.fingerprint
    if not (dest / "config.json").is_file():
        store.get_dir(manifest, model_dir, dest)
    return str(dest)
