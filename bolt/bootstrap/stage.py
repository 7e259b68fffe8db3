"""The bootstrapping stage: queries -> n LongCoT samples each, sharded and resumable.

One shard = ``bootstrap.shard_size`` queries; it is the unit of retry and resume. A
shard's rejects (prompts too long for the teacher's context) are written before the
shard, and the shard's receipt after it, so a finished shard is complete with its
rejects and a rerun regenerates only shards without a receipt.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bolt import longcot
from bolt.bootstrap.prompting import (
    build_messages,
    choose_examples,
    group_key,
    longcot_regex,
    system_text,
)
from bolt.bootstrap.refinement import refine_shard, refinement_payload
from bolt.config import PipelineConfig, output_fields
from bolt.engines.base import ChatRequest, Completion, Engine
from bolt.fingerprint import fingerprint
from bolt.generations import to_generation
from bolt.plots import histogram
from bolt.prompts import PROMPTS_DIR, LongCoTExample, load_examples
from bolt.records import Generation, Query, Reject
from bolt.sharding import ShardPlan, ShardRunner, ShardWork, in_process, plan_shards, run_sharded
from bolt.sharding import run_shard as run_one_shard
from bolt.stages import Stage
from bolt.store import ArtifactStore, FileInfo, Manifest, ShardInfo

CODE_VERSION = "1"


def examples_dir(cfg: PipelineConfig) -> Path:
    path = Path(cfg.bootstrap.examples_dir)
    return path if path.is_absolute() or path.exists() else PROMPTS_DIR.parent / path


def examples_digest(examples: list[LongCoTExample]) -> str:
    text = "\n".join(e.model_dump_json() for e in examples) + system_text()
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def bootstrap_fingerprint(cfg: PipelineConfig, data_fp: str, examples: list[LongCoTExample]) -> str:
    teacher = cfg.models.catalog[cfg.bootstrap.teacher_model]
    # The teacher's engine counts wherever the config writes it (`engine` or the override
    # `bootstrap.engine`), under the key it had when `bootstrap.engine` was the only one.
    boot = {**output_fields(cfg.bootstrap), "engine": cfg.engine_settings(Stage.bootstrap)}
    return fingerprint(
        Stage.bootstrap,
        # The STICK round's judge and prompts count only while it is on.
        {"bootstrap": boot, "teacher": teacher, **refinement_payload(cfg)},
        upstream={Stage.curation: data_fp, "examples": examples_digest(examples)},
        code_version=CODE_VERSION,
    )


def generate_shard(
    plan: ShardPlan[Query],
    cfg: PipelineConfig,
    examples: list[LongCoTExample],
    engine: Engine,
    context_length: int | None,
) -> tuple[list[Generation], list[Reject], dict[str, Any]]:
    """Generate n samples for every query of one shard; return records, rejects, figures."""
    boot = cfg.bootstrap
    instruction = system_text()
    prepared, rejects = [], []
    for query in plan.items:
        chosen = choose_examples(query.id, examples, boot.examples_per_prompt, cfg.seed)
        messages = build_messages(query.text, chosen, instruction)
        prompt_tokens = engine.count_prompt_tokens(messages)
        if context_length and prompt_tokens + boot.sampling.max_new_tokens > context_length:
            rejects.append(
                Reject(
                    stage=Stage.bootstrap,
                    reason="too_long_for_context",
                    source=query.id,
                    raw=query.text[:2000],
                    detail=f"{prompt_tokens} prompt + {boot.sampling.max_new_tokens} new tokens > {context_length}",
                )
            )
            continue
        prepared.append((group_key(chosen), query, chosen, messages, prompt_tokens))
    # Queries sharing an example subset share their prefix: keep them adjacent.
    prepared.sort(key=lambda p: p[0])
    started = time.perf_counter()
    outputs = engine.generate(
        [ChatRequest(q.id, messages) for _, q, _, messages, _ in prepared],
        boot.sampling,
        stop=[longcot.RESPONSE_CLOSE],
        guided_regex=longcot_regex(boot.guided_max_chars) if boot.guided_decoding else None,
    )
    seconds = time.perf_counter() - started
    records = [
        _to_generation(query, [e.id for e in chosen], prompt_tokens, completion, engine, cfg)
        for (_, query, chosen, _, prompt_tokens), completions in zip(prepared, outputs, strict=True)
        for completion in completions
    ]
    output_tokens = sum(r.output_tokens for r in records)
    meta = {
        "seconds": round(seconds, 3),
        "prompt_tokens": sum(p[4] for p in prepared) * boot.sampling.n,
        "cached_prompt_tokens": sum(r.cached_prompt_tokens or 0 for r in records),
        "output_tokens": output_tokens,
        "output_tokens_per_s": round(output_tokens / seconds, 2) if seconds else None,
        "rejected": len(rejects),
    }
    return sorted(records, key=lambda r: (r.query_id, r.sample_index)), rejects, meta


def _to_generation(
    query: Query,
    example_ids: list[str],
    prompt_tokens: int,
    c: Completion,
    engine: Engine,
    cfg: PipelineConfig,
) -> Generation:
    # The request stops on </response> (see generate_shard): a response cut there is complete.
    return to_generation(
        query.id,
        c,
        engine,
        cfg.bootstrap.sampling.seed,
        prompt_tokens=prompt_tokens,
        example_ids=example_ids,
        stopped_at_response_close=True,
    )


def shard_work(
    store: ArtifactStore,
    fp: str,
    cfg: PipelineConfig,
    examples: list[LongCoTExample],
    engine: Callable[[], Engine],
    context_length: int | None,
) -> ShardWork[Query]:
    """What makes one shard: generate (and refine), store the rejects first, then the
    shard and its receipt. ``engine`` is started only then, so a rerun of finished
    shards never waits for one."""

    def work(plan: ShardPlan[Query]) -> ShardInfo:
        records, rejects, meta = generate_shard(plan, cfg, examples, engine(), context_length)
        if cfg.bootstrap.refinement is not None:
            records, refined = refine_shard(
                store, fp, plan.index, plan.items, cfg, examples, engine, records, context_length
            )
            meta = {**meta, **refined}
        rejects_file = store.put_records(
            Stage.bootstrap, fp, f"rejects/part-{plan.index:05d}.jsonl.gz", rejects
        )
        return store.write_shard(
            Stage.bootstrap,
            fp,
            plan.index,
            records,
            meta={**meta, "rejects_file": rejects_file.model_dump()},
        )

    return work


def run_shard(
    store: ArtifactStore,
    fp: str,
    plan: ShardPlan[Query],
    cfg: PipelineConfig,
    engine: Callable[[], Engine],
    context_length: int | None,
) -> ShardInfo:
    """One shard task's body: its receipt if it finished before, else make it."""
    examples = load_examples(examples_dir(cfg))
    work = shard_work(store, fp, cfg, examples, engine, context_length)
    return run_one_shard(store, Stage.bootstrap, fp, plan, work)


def run_bootstrap(
    cfg: PipelineConfig,
    store: ArtifactStore,
    data: Manifest,
    engine: Callable[[], Engine],
    context_length: int | None = None,
    run_shards: ShardRunner[Query] = in_process,
) -> Manifest:
    """The committed output for ``data``: found by its fingerprint, or made by running
    every unfinished shard through ``run_shards`` (the flow's: one Prefect task per
    shard) and committing all receipts. ``engine`` is called only for shards made here."""
    examples = load_examples(examples_dir(cfg))
    fp = bootstrap_fingerprint(cfg, data.fingerprint, examples)
    if (done := store.manifest(Stage.bootstrap, fp)) is not None:
        return done
    queries = list(store.read_records(data, Query))
    work = shard_work(store, fp, cfg, examples, engine, context_length)
    plans = plan_shards(queries, cfg.bootstrap.shard_size)
    shards = run_sharded(store, Stage.bootstrap, fp, plans, work, run_shards)
    return commit_bootstrap(store, fp, cfg, data, shards, queries)


def commit_bootstrap(
    store: ArtifactStore,
    fp: str,
    cfg: PipelineConfig,
    data: Manifest,
    shards: list[ShardInfo],
    queries: list[Query],
) -> Manifest:
    """Stats over all shards (yield, finish reasons, lengths, topics), plots, manifest."""
    generations = list(_iter_shards(store, fp, shards))
    topic_of = {q.id: q.topic or "untagged" for q in queries}
    valid = [g for g in generations if g.parse_error is None]
    token_sum = lambda key: sum(s.meta.get(key) or 0 for s in shards)
    prompt_tokens, cached = token_sum("prompt_tokens"), token_sum("cached_prompt_tokens")
    stats = {
        "format_yield": round(len(valid) / len(generations), 4) if generations else 0.0,
        "finish_reasons": dict(Counter(g.finish_reason or "unknown" for g in generations)),
        "parse_errors": dict(Counter(g.parse_error for g in generations if g.parse_error)),
        "per_topic_samples": dict(
            Counter(topic_of.get(g.query_id, "untagged") for g in generations)
        ),
        "per_topic_valid": dict(Counter(topic_of.get(g.query_id, "untagged") for g in valid)),
        "prefix_cache_hit_rate": round(cached / prompt_tokens, 4) if prompt_tokens else 0.0,
    }
    files = [FileInfo.model_validate(s.meta["rejects_file"]) for s in shards]
    files += [
        FileInfo.model_validate(s.meta["refinement_file"])
        for s in shards
        if "refinement_file" in s.meta
    ]
    lengths = {
        "all samples": [g.output_tokens for g in generations],
        "format-valid": [g.output_tokens for g in valid],
    }
    files.append(
        store.put_plot(
            Stage.bootstrap,
            fp,
            "lengths.png",
            lambda path: histogram(
                path, "bootstrapped output length (tokens)", lengths, xlabel="output tokens"
            ),
        )
    )
    return store.commit(
        Manifest(
            stage=Stage.bootstrap,
            fingerprint=fp,
            code_version=CODE_VERSION,
            config={
                # The engine it ran on, wherever the config wrote it (top level or override).
                "bootstrap": {
                    **cfg.bootstrap.model_dump(mode="json"),
                    "engine": cfg.engine_settings(Stage.bootstrap).model_dump(mode="json"),
                },
                "teacher": cfg.models.catalog[cfg.bootstrap.teacher_model].model_dump(mode="json"),
            },
            upstream={Stage.curation: data.fingerprint},
            shards=shards,
            files=files,
            counts={
                "queries": len(queries),
                "samples": len(generations),
                "format_valid": len(valid),
                "rejected": sum(s.meta.get("rejected", 0) for s in shards),
                **_revision_counts(shards),
            },
            timings={"generate_seconds": round(sum(s.meta.get("seconds", 0) for s in shards), 3)},
            tokens={
                "prompt": prompt_tokens,
                "cached_prompt": cached,
                "output": token_sum("output_tokens"),
            },
            stats=stats,
        )
    )


def _iter_shards(store: ArtifactStore, fp: str, shards: list[ShardInfo]) -> Iterator[Generation]:
    for shard in shards:
        yield from store.read_shard(Stage.bootstrap, fp, shard, Generation)


def _revision_counts(shards: list[ShardInfo]) -> dict[str, int]:
    """Revisions per STICK round and the round's judge counts (how each verdict was
    read, rejects by reason, fallback checklists) over all shards (nothing when
    refinement is off)."""
    counts: Counter[str] = Counter()
    for shard in shards:
        refined = shard.meta.get("refinement", {})
        for round_, n in refined.get("versions_per_round", {}).items():
            if round_ != "0":
                counts[f"revisions.round_{round_}"] += n
        counts.update({f"refinement.{k}": v for k, v in refined.get("judge", {}).items()})
    return dict(counts)
