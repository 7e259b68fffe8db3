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

from prefect import task
from prefect.cache_policies import NO_CACHE

from bolt.config import JudgeConfig, JudgeKind, PipelineConfig
from bolt.engines import make_engine
from bolt.engines.base import Engine
from bolt.engines.live import engine_for, engine_key
from bolt.evals import Benchmark
from bolt.evals.judges import Judge, make_judge
from bolt.evals.stage import Baseline, EvalModel, Items, run_answers, run_eval
from bolt.resources import POOL, Role
from bolt.stages import Stage
from bolt.store import ArtifactStore, Manifest


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
        f"judge {judge.model_dump_json()}", Role.scoring, lambda: _make_judge(cfg, judge)
    )


def answering_engine(cfg: PipelineConfig, model: EvalModel) -> Engine:
    """The live engine on the model under test; keyed by its folder, so a catalog model
    shares the engine other stages started on it and a checkpoint gets its own."""
    engine_cfg = cfg.engine_settings(Stage.eval_answers)
    return POOL.get(
        engine_key(model.path, engine_cfg, Role.generation),
        Role.generation,
        lambda: make_engine(engine_cfg, model.path, seed=cfg.seed, device=cfg.compute.device),
    )


@task(
    name="eval-answers",
    task_run_name="eval-answers-{model.label}",
    retries=1,
    cache_policy=NO_CACHE,
)
def answer_benchmarks(cfg: PipelineConfig, model: EvalModel, items: Items) -> Manifest:
    """Resumes shard by shard; the engine starts only if a shard is missing."""
    store = ArtifactStore.from_config(cfg.storage)
    return run_answers(cfg, store, model, items, lambda: answering_engine(cfg, model))


@task(name="eval-grade", task_run_name="eval-grade-{model.label}", retries=1, cache_policy=NO_CACHE)
def grade_benchmarks(
    cfg: PipelineConfig,
    model: EvalModel,
    items: Items,
    answers: Manifest,
    baseline: Baseline | None = None,
) -> Manifest:
    store = ArtifactStore.from_config(cfg.storage)
    return run_eval(cfg, store, model, items, answers, lambda b: judge_for(cfg, b), baseline)
