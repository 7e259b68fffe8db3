"""Prefect tasks of the evaluation stage: answers and grading per model, each resumable.

The model under test answers on a generation engine and the judge grades as a scoring
resource, both from the process's pool (``bolt.resources.POOL``): taking the judge frees
the answering engines, so the flow makes every answer before any grading starts.

The judge's API key may live in a Prefect Secret block (``eval.judge.api_key_secret_block``):
it is read here, in the task, and handed to the engine through the environment variable
the config names, so ``bolt/`` never imports Prefect and no config ever holds the key.
"""

from __future__ import annotations

import os
from typing import Any

from prefect import task

from bolt.config import JudgeConfig, JudgeKind, PipelineConfig
from bolt.engines import make_engine
from bolt.engines.base import Engine
from bolt.engines.live import accelerator_claim, engine_for, engine_key
from bolt.evals import Benchmark
from bolt.evals.judges import Judge, make_judge
from bolt.evals.stage import (
    Baseline,
    EvalModel,
    Grading,
    Items,
    load_contexts,
    run_answers,
    run_answers_shard,
    run_eval,
    run_grade_shard,
)
from bolt.resources import POOL, Role
from bolt.sharding import ShardPlan
from bolt.stages import Stage
from bolt.store import ArtifactStore, Manifest, ShardInfo
from tasks.runtime import CACHED_RESULT, shard_key
from tasks.sharding import shard_tasks


def resolve_judge_key(cfg: PipelineConfig, judge: JudgeConfig | None = None) -> None:
    """Put the Secret block's key in the judge engine's environment variable."""
    judge = judge or cfg.eval.judge
    if judge.kind is JudgeKind.api and judge.api_key_secret_block:
        from prefect.blocks.system import Secret

        os.environ[judge.engine.api_key_env] = Secret.load(judge.api_key_secret_block).get()


def _with_judge(cfg: PipelineConfig, judge: JudgeConfig) -> PipelineConfig:
    """``cfg`` with ``judge`` as ``eval.judge`` (what ``make_judge`` reads)."""
    return cfg.model_copy(update={"eval": cfg.eval.model_copy(update={"judge": judge})})


def _make_judge(cfg: PipelineConfig, judge: JudgeConfig) -> Judge:
    resolve_judge_key(cfg, judge)
    # the checklist writer is part of the judge: a scoring engine, released with it
    checklist_engine = (
        engine_for(cfg, judge.model, cfg.engine_settings(Stage.eval), Role.scoring)
        if judge.kind is JudgeKind.local_checklist
        else None
    )
    return make_judge(_with_judge(cfg, judge), checklist_engine=checklist_engine)


def judge_for(cfg: PipelineConfig, benchmark: Benchmark | None = None) -> Judge:
    """The live judge of ``benchmark`` (its ``eval.judges`` entry, else ``eval.judge``);
    benchmarks that share a judge config share the judge (a local one holds a model)."""
    judge = cfg.eval.judge_of(benchmark) if benchmark is not None else cfg.eval.judge
    return POOL.get(
        f"judge {judge.model_dump_json()}",
        Role.scoring,
        lambda: _make_judge(cfg, judge),
        label=f"{judge.kind.value} judge {judge.model}",
    )


def answering_engine(cfg: PipelineConfig, model: EvalModel) -> Engine:
    """The live engine on the model under test; keyed by its folder, so a catalog model
    shares the engine other stages started on it and a checkpoint gets its own."""
    engine_cfg = cfg.engine_settings(Stage.eval_answers)
    return POOL.get(
        engine_key(model.path, engine_cfg, Role.generation, cfg.seed),
        Role.generation,
        lambda: make_engine(engine_cfg, model.path, seed=cfg.seed, device=cfg.compute.device),
        label=f"{engine_cfg.kind.value} engine on {model.path}",
        claim=accelerator_claim(engine_cfg, cfg.compute.device),
    )


@task(
    name="eval-answers-shard",
    task_run_name="eval-answers-{model.label}-{plan.index:05d}",
    retries=1,
    cache_key_fn=shard_key(Stage.eval_answers),
    **CACHED_RESULT,
)
def answers_shard(
    cfg: PipelineConfig, fp: str, plan: ShardPlan[Any], model: EvalModel
) -> ShardInfo:
    store = ArtifactStore.from_config(cfg.storage)
    return run_answers_shard(cfg, store, fp, plan, model, lambda: answering_engine(cfg, model))


def answer_benchmarks(cfg: PipelineConfig, model: EvalModel, items: Items) -> Manifest:
    """The model's answers (in a flow): each unanswered shard as an ``eval-answers-shard``
    task, then the commit; the engine starts only where a shard is missing."""
    store = ArtifactStore.from_config(cfg.storage)
    runner = shard_tasks(answers_shard, cfg, Stage.eval_answers, model)
    engine = lambda: answering_engine(cfg, model)
    return run_answers(cfg, store, model, items, engine, runner)


@task(
    name="eval-grade-shard",
    task_run_name="eval-grade-{grading.model.label}-{plan.index:05d}",
    retries=1,
    cache_key_fn=shard_key(Stage.eval),
    **CACHED_RESULT,
)
def grade_shard(
    cfg: PipelineConfig, fp: str, plan: ShardPlan[ShardInfo], grading: Grading
) -> ShardInfo:
    store = ArtifactStore.from_config(cfg.storage)
    return run_grade_shard(cfg, store, fp, plan, grading, lambda b: judge_for(cfg, b))


def grade_benchmarks(
    cfg: PipelineConfig,
    model: EvalModel,
    items: Items,
    answers: Manifest,
    baseline: Baseline | None = None,
) -> Manifest:
    """The model's grades and report (in a flow): one ``eval-grade-shard`` task per
    answers shard not graded yet, then the report and the commit."""
    store = ArtifactStore.from_config(cfg.storage)
    contexts = load_contexts(cfg, items)
    grading = Grading(model, items, answers, baseline, contexts)
    runner = shard_tasks(grade_shard, cfg, Stage.eval, grading)
    judge = lambda b: judge_for(cfg, b)
    return run_eval(cfg, store, model, items, answers, judge, baseline, contexts, runner)
