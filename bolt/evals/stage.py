"""The evaluation stage (BOLT §4): answers, judgements and the report, sharded and resumable.

Two outputs per model, each ``<root>/<stage>/<fingerprint>/`` with its manifest last:

- ``eval_answers``: the model's answers to every configured benchmark, one shard per
  ``eval.shard_size`` items of one benchmark. Its fingerprint is the model (catalog
  entry, or a model folder's file list), the items and the decoding settings, so the
  baseline's answers are made once and every judge or report change reuses them.
- ``eval``: the graded records, one shard per answers shard, plus ``report.md``,
  ``report.csv``, ``summary.json`` and ``headline.png``; the manifest's stats hold the
  per-benchmark summaries and the judge's usage. Its fingerprint adds the judge, the
  judged-text mode, K and the baseline's answers and numbers.

Both run through ``bolt.sharding``: a finished shard is never redone, so a crash loses
only the shards in flight; the API judge's reply cache makes even a re-judged shard cost
nothing for replies it has. The answers' shard size enters their fingerprint (MT-Bench
samples some categories at a temperature, from an engine seeded once); the grades
follow the answers' shards one to one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bolt.config import PipelineConfig, output_fields
from bolt.engines.base import Engine
from bolt.evals import Benchmark
from bolt.evals.answering import answer_items
from bolt.evals.data import item_id, items_digest, load_items
from bolt.evals.judges import Judge, JudgeUsage
from bolt.evals.judging import grade
from bolt.evals.registry import BENCHMARKS
from bolt.evals.report import (
    BenchmarkSummary,
    csv_text,
    headline_bars,
    markdown_table,
    summarize,
    table_rows,
)
from bolt.evals.spec import BenchmarkContext, JudgingContext, References
from bolt.fingerprint import fingerprint
from bolt.models import resolve_model
from bolt.records import EvalAnswer, EvalItemResult
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
from bolt.stages import Stage
from bolt.store import ArtifactStore, FileInfo, Manifest, ShardInfo

CODE_VERSION = "1"


@dataclass(frozen=True)
class EvalModel:
    """The model under test: its report name, a loadable folder, what identifies its weights."""

    label: str
    path: str
    identity: dict[str, Any]


def eval_model(cfg: PipelineConfig, model: str | Path, label: str | None = None) -> EvalModel:
    """A catalog name, or a model folder (e.g. an SFT/DPO checkpoint fetched from the store).

    A folder is identified by its path and its files' names and sizes: hashing the
    weights of an 8B model on every run would cost more than the check is worth.
    """
    if isinstance(model, str) and model in cfg.models.catalog:
        entry = cfg.models.catalog[model].model_dump(mode="json")
        return EvalModel(label or model, resolve_model(cfg.models, model, cfg.storage.s3), entry)
    folder = Path(model).expanduser().resolve()
    if not (folder / "config.json").is_file():
        raise ValueError(f"{model!r} is neither a catalog model nor a model folder (config.json)")
    files = sorted((p.name, p.stat().st_size) for p in folder.iterdir() if p.is_file())
    return EvalModel(label or folder.name, str(folder), {"folder": str(folder), "files": files})


Items = dict[Benchmark, list[Any]]


Contexts = dict[Benchmark, BenchmarkContext]


def load_benchmarks(cfg: PipelineConfig) -> Items:
    return {
        b: load_items(b, cfg.eval.data.get(b), cfg.eval.max_items, cfg.storage.s3)
        for b in cfg.eval.benchmarks
    }


def load_contexts(cfg: PipelineConfig, items: Items) -> Contexts:
    """What each benchmark's own config section adds: official reference answers, the
    leaderboard pool (:class:`~bolt.evals.spec.BenchmarkContext`)."""
    contexts = {}
    for benchmark, rows in items.items():
        prepare = BENCHMARKS[benchmark].prepare
        contexts[benchmark] = (
            prepare(cfg.eval, cfg.storage.s3, rows) if prepare else BenchmarkContext()
        )
    return contexts


def shard_plan(items: Items, shard_size: int) -> list[ShardPlan[Any]]:
    """Shards of ``shard_size`` items of one benchmark each, benchmarks in config order,
    indexed on through all of them; ``group`` names the benchmark."""
    plans: list[ShardPlan[Any]] = []
    for benchmark, rows in items.items():
        plans += plan_shards(rows, shard_size, start=len(plans), group=benchmark.value)
    return plans


def answers_fingerprint(cfg: PipelineConfig, model: EvalModel, items: Items) -> str:
    sampling = cfg.eval.sampling
    return fingerprint(
        Stage.eval_answers,
        {
            "model": model.identity,
            "items": {b.value: items_digest(rows) for b, rows in items.items()},
            "max_new_tokens": sampling.max_new_tokens,
            "seed": sampling.seed,
            "shard_size": cfg.eval.shard_size,
        },
        code_version=CODE_VERSION,
    )


def answers_work(
    cfg: PipelineConfig,
    store: ArtifactStore,
    fp: str,
    model: EvalModel,
    engine: Callable[[], Engine],
) -> ShardWork[Any]:
    """What makes one answers shard: the model's answers to its items, stored."""

    def work(plan: ShardPlan[Any]) -> ShardInfo:
        started = time.perf_counter()
        benchmark = Benchmark(plan.group)
        answers = answer_items(benchmark, plan.items, engine(), cfg.eval.sampling, model.label)
        meta = {
            "benchmark": benchmark.value,
            "seconds": round(time.perf_counter() - started, 3),
            "output_tokens": sum(a.output_tokens for a in answers),
            "prompt_tokens": sum(a.prompt_tokens for a in answers),
        }
        return store.write_shard(Stage.eval_answers, fp, plan.index, answers, meta=meta)

    return work


def run_answers_shard(
    cfg: PipelineConfig,
    store: ArtifactStore,
    fp: str,
    plan: ShardPlan[Any],
    model: EvalModel,
    engine: Callable[[], Engine],
) -> ShardInfo:
    """One answers shard task's body: its receipt if it finished before, else answer."""
    work = answers_work(cfg, store, fp, model, engine)
    return run_one_shard(store, Stage.eval_answers, fp, plan, work)


def run_answers(
    cfg: PipelineConfig,
    store: ArtifactStore,
    model: EvalModel,
    items: Items,
    engine: Callable[[], Engine],
    run_shards: ShardRunner[Any] = in_process,
) -> Manifest:
    """Answer every benchmark item not answered yet, shard by shard, then commit."""
    fp = answers_fingerprint(cfg, model, items)
    if (done := store.manifest(Stage.eval_answers, fp)) is not None:
        return done
    plans = shard_plan(items, cfg.eval.shard_size)
    work = answers_work(cfg, store, fp, model, engine)
    shards = run_sharded(store, Stage.eval_answers, fp, plans, work, run_shards)
    return store.commit(
        _manifest(
            cfg,
            Stage.eval_answers,
            fp,
            model,
            shards,
            counts={b.value: len(rows) for b, rows in items.items()},
            tokens={
                key: sum(s.meta[key] for s in shards) for key in ("prompt_tokens", "output_tokens")
            },
        )
    )


def _manifest(
    cfg: PipelineConfig,
    stage: Stage,
    fp: str,
    model: EvalModel,
    shards: list[ShardInfo],
    **fields: Any,
) -> Manifest:
    """A manifest of one model's answers or grades: the model, the eval config, the shards
    and their total time, plus ``fields``."""
    return Manifest(
        stage=stage,
        fingerprint=fp,
        code_version=CODE_VERSION,
        config={"model": model.label, "eval": cfg.eval.model_dump(mode="json")},
        shards=shards,
        timings={"seconds": round(sum(s.meta["seconds"] for s in shards), 3)},
        **fields,
    )


def read_answers(
    store: ArtifactStore, manifest: Manifest, benchmark: Benchmark
) -> dict[str, EvalAnswer]:
    return {
        a.item_id: a
        for shard in manifest.shards
        if shard.meta.get("benchmark") == benchmark.value
        for a in store.read_shard(manifest.stage, manifest.fingerprint, shard, EvalAnswer)
    }


@dataclass(frozen=True)
class Baseline:
    """The baseline's answers (for pairwise judging) and its own eval (for the table)."""

    model: EvalModel
    answers: Manifest
    evaluated: Manifest | None = None


def eval_upstream(answers: Manifest, baseline: Baseline | None) -> dict[str, str]:
    """What an eval's grades are made from: the answers, and the baseline's answers and
    eval where there is a baseline. Its fingerprint and its manifest's upstream both."""
    upstream = {"answers": answers.fingerprint}
    if baseline is not None:
        upstream["baseline_answers"] = baseline.answers.fingerprint
        if baseline.evaluated is not None:
            upstream["baseline_eval"] = baseline.evaluated.fingerprint
    return upstream


def eval_fingerprint(
    cfg: PipelineConfig,
    answers: Manifest,
    baseline: Baseline | None,
    contexts: Contexts | None = None,
) -> str:
    """The judge of each benchmark, the judging settings, the benchmarks' own sections
    (reference files, leaderboard pool) and the digests of what those files hold."""
    return fingerprint(
        Stage.eval,
        {
            "judges": {b.value: output_fields(cfg.eval.judge_of(b)) for b in cfg.eval.benchmarks},
            "judge_response_only": cfg.eval.judge_response_only,
            "length_penalty_k": cfg.eval.length_penalty_k,
            "seed": cfg.seed,
            "arena_hard": output_fields(cfg.eval.arena_hard),
            "wildbench": output_fields(cfg.eval.wildbench),
            "reference_data": {b.value: c.digest for b, c in (contexts or {}).items() if c.digest},
        },
        upstream=eval_upstream(answers, baseline),
        code_version=CODE_VERSION,
    )


def _usage_delta(before: dict[str, Any], usage: JudgeUsage) -> dict[str, Any]:
    after = usage.as_dict()
    return {f"judge_{k}": round(after[k] - before[k], 6) for k in after}


def references_for(
    benchmark: Benchmark,
    contexts: Contexts,
    baseline: Baseline | None,
    baseline_answers: dict[str, EvalAnswer] | None,
) -> References:
    """The official references of ``benchmark`` where its section names them, else the
    baseline model's answers; none for a benchmark that is not pairwise."""
    if not BENCHMARKS[benchmark].pairwise:
        return {}
    if contexts[benchmark].references:
        return contexts[benchmark].references
    if baseline is None or baseline_answers is None:
        return {}
    return {baseline.model.label: baseline_answers}


@dataclass(frozen=True)
class Grading:
    """What grading one model's answers reads, beside its shard: everything a grading
    shard task is handed."""

    model: EvalModel
    items: Items
    answers: Manifest
    baseline: Baseline | None
    contexts: Contexts


def grade_work(
    cfg: PipelineConfig,
    store: ArtifactStore,
    fp: str,
    grading: Grading,
    judge: Callable[[Benchmark], Judge],
) -> ShardWork[ShardInfo]:
    """What makes one grades shard: the answers shard of the same index, graded
    (``judge(benchmark)`` is called only for a judged benchmark's shard)."""
    by_benchmark_items = {b: {item_id(b, i): i for i in rows} for b, rows in grading.items.items()}
    baseline, answers = grading.baseline, grading.answers
    baseline_answers: dict[Benchmark, dict[str, EvalAnswer]] = {}

    def work(plan: ShardPlan[ShardInfo]) -> ShardInfo:
        (shard,) = plan.items
        benchmark = Benchmark(shard.meta["benchmark"])
        rows = list(store.read_shard(answers.stage, answers.fingerprint, shard, EvalAnswer))
        spec = BENCHMARKS[benchmark]
        if baseline is not None and spec.pairwise and benchmark not in baseline_answers:
            baseline_answers[benchmark] = read_answers(store, baseline.answers, benchmark)
        active = judge(benchmark) if spec.judged else None
        before = active.usage.as_dict() if active else None
        ctx = JudgingContext(
            model=grading.model.label,
            judge=active,
            response_only=cfg.eval.judge_response_only,
            references=references_for(
                benchmark, grading.contexts, baseline, baseline_answers.get(benchmark)
            ),
            seed=cfg.seed,
            benchmark=grading.contexts[benchmark],
        )
        started = time.perf_counter()
        shard_items = [by_benchmark_items[benchmark][a.item_id] for a in rows]
        results = grade(benchmark, shard_items, rows, ctx)
        meta: dict[str, Any] = {
            "benchmark": benchmark.value,
            "seconds": round(time.perf_counter() - started, 3),
        }
        if active is not None and before is not None:
            meta |= _usage_delta(before, active.usage)
        return store.write_shard(Stage.eval, fp, plan.index, results, meta=meta)

    return work


def run_grade_shard(
    cfg: PipelineConfig,
    store: ArtifactStore,
    fp: str,
    plan: ShardPlan[ShardInfo],
    grading: Grading,
    judge: Callable[[Benchmark], Judge],
) -> ShardInfo:
    """One grades shard task's body: its receipt if it finished before, else grade."""
    return run_one_shard(store, Stage.eval, fp, plan, grade_work(cfg, store, fp, grading, judge))


def summaries_of(manifest: Manifest) -> list[BenchmarkSummary]:
    return [BenchmarkSummary.model_validate(s) for s in manifest.stats.get("summaries", [])]


def _summaries(
    cfg: PipelineConfig,
    store: ArtifactStore,
    fp: str,
    model: EvalModel,
    items: Items,
    shards: list[ShardInfo],
    contexts: Contexts,
    baseline: Baseline | None,
) -> list[BenchmarkSummary]:
    summaries = []
    for benchmark, rows in items.items():
        results = [
            r
            for s in shards
            if s.meta["benchmark"] == benchmark.value
            for r in store.read_shard(Stage.eval, fp, s, EvalItemResult)
        ]
        compared = references_for(benchmark, contexts, baseline, {} if baseline else None)
        summaries.append(
            summarize(
                benchmark,
                model.label,
                results,
                rows,
                cfg.eval.length_penalty_k,
                context=contexts[benchmark],
                judge=cfg.eval.judge_of(benchmark).model,
                baseline=",".join(compared) or None,
            )
        )
    return summaries


def run_eval(
    cfg: PipelineConfig,
    store: ArtifactStore,
    model: EvalModel,
    items: Items,
    answers: Manifest,
    judge: Callable[[Benchmark], Judge],
    baseline: Baseline | None = None,
    contexts: Contexts | None = None,
    run_shards: ShardRunner[ShardInfo] = in_process,
) -> Manifest:
    """Grade the model's answers (against each benchmark's references, where pairwise),
    write the report, commit. ``judge(benchmark)`` is called only when a shard needs
    that benchmark's judge; ``contexts`` default to :func:`load_contexts`."""
    contexts = contexts if contexts is not None else load_contexts(cfg, items)
    fp = eval_fingerprint(cfg, answers, baseline, contexts)
    if (done := store.manifest(Stage.eval, fp)) is not None:
        return done
    grading = Grading(model, items, answers, baseline, contexts)
    work = grade_work(cfg, store, fp, grading, judge)
    shards = run_sharded(store, Stage.eval, fp, per_shard(answers), work, run_shards)
    summaries = _summaries(cfg, store, fp, model, items, shards, contexts, baseline)
    baseline_summaries = summaries_of(baseline.evaluated) if baseline and baseline.evaluated else []
    files = _write_report(store, fp, model.label, summaries, baseline_summaries)
    usage_keys = sorted({k for s in shards for k in s.meta if k.startswith("judge_")})
    return store.commit(
        _manifest(
            cfg,
            Stage.eval,
            fp,
            model,
            shards,
            upstream=eval_upstream(answers, baseline),
            files=files,
            counts={
                f"{s.benchmark.value}.{k}": getattr(s, k)
                for s in summaries
                for k in ("n_items", "n_unparsable", "n_judge_failed")
            },
            stats={
                "summaries": [s.model_dump(mode="json") for s in summaries],
                "judge_usage": {k: sum(s.meta.get(k, 0) for s in shards) for k in usage_keys},
                "table": table_rows(summaries, baseline_summaries),
                "references": {b.value: c.describe for b, c in contexts.items() if c.describe},
            },
        )
    )


def _write_report(
    store: ArtifactStore,
    fp: str,
    label: str,
    summaries: Sequence[BenchmarkSummary],
    baseline: Sequence[BenchmarkSummary],
) -> list[FileInfo]:
    rows = table_rows(summaries, baseline)
    header = f"# Evaluation of {label}\n\n" + (
        f"Baseline model: {baseline[0].model}.\n\n" if baseline else "No baseline model.\n\n"
    )
    header += (
        "Each benchmark's own baseline and judge are in its rows; a paper figure stands only "
        "beside a number on the same benchmark version, baseline and judge.\n\n"
    )
    series = {label: summaries} | ({baseline[0].model: baseline} if baseline else {})
    return [
        store.put_plot(Stage.eval, fp, "headline.png", lambda path: headline_bars(path, series)),
        store.put_json(
            Stage.eval, fp, "summary.json", [s.model_dump(mode="json") for s in summaries]
        ),
        _put_text(store, fp, "report.md", header + markdown_table(rows)),
        _put_text(store, fp, "report.csv", csv_text(rows)),
    ]


def _put_text(store: ArtifactStore, fp: str, name: str, text: str) -> FileInfo:
    def write(path: Path) -> Path:
        path.write_text(text, encoding="utf-8")
        return path

    # put_plot's scratch-file-then-store is exactly what a text file needs too
    return store.put_plot(Stage.eval, fp, name, write)


def load_report_rows(manifest: Manifest) -> list[dict[str, Any]]:
    """The table of an eval manifest (for a Prefect table artifact)."""
    return json.loads(json.dumps(manifest.stats.get("table", [])))
