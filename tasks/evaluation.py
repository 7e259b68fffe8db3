"""Prefect tasks of the evaluation stage: answers and grading per model, each resumable.

The judge's API key may live in a Prefect Secret block (``eval.judge.api_key_secret_block``):
it is read here, in the task, and handed to the engine through the environment variable
the config names, so ``bolt/`` never imports Prefect and no config ever holds the key.
"""

from __future__ import annotations

import os
import threading

from prefect import task
from prefect.cache_policies import NO_CACHE

from bolt.config import JudgeKind, PipelineConfig
from bolt.evals.judges import Judge, make_judge
from bolt.evals.stage import Baseline, EvalModel, Items, run_answers, run_eval
from bolt.store import ArtifactStore, Manifest
from tasks.engine_pool import engine_for

_lock = threading.Lock()
_judges: dict[str, Judge] = {}


def resolve_judge_key(cfg: PipelineConfig) -> None:
    """Put the Secret block's key in the judge engine's environment variable (once)."""
    judge = cfg.eval.judge
    if judge.kind is JudgeKind.api and judge.api_key_secret_block:
        from prefect.blocks.system import Secret

        os.environ[judge.engine.api_key_env] = Secret.load(judge.api_key_secret_block).get()


def judge_for(cfg: PipelineConfig) -> Judge:
    """One judge per process and judge config (a local judge holds a model in memory)."""
    key = cfg.eval.judge.model_dump_json()
    with _lock:
        if key not in _judges:
            resolve_judge_key(cfg)
            checklist_engine = (
                engine_for(cfg, cfg.eval.judge.model, cfg.bootstrap.engine)
                if cfg.eval.judge.kind is JudgeKind.local_checklist
                else None
            )
            _judges[key] = make_judge(cfg, checklist_engine=checklist_engine)
        return _judges[key]


def release_judges() -> None:
    with _lock:
        _judges.clear()


@task(
    name="eval-answers",
    task_run_name="eval-answers-{model.label}",
    retries=1,
    cache_policy=NO_CACHE,
)
def answer_benchmarks(cfg: PipelineConfig, model: EvalModel, items: Items) -> Manifest:
    """Resumes shard by shard; the engine starts only if a shard is missing."""
    from bolt.engines import make_engine

    store = ArtifactStore.from_config(cfg.storage)
    engine_cfg = cfg.eval.engine or cfg.bootstrap.engine
    if model.label in cfg.models.catalog:
        return run_answers(
            cfg, store, model, items, lambda: engine_for(cfg, model.label, engine_cfg)
        )
    # a checkpoint folder: its own engine, closed when its answers are in
    started = []

    def engine():
        if not started:
            started.append(
                make_engine(engine_cfg, model.path, seed=cfg.seed, device=cfg.compute.device)
            )
        return started[0]

    try:
        return run_answers(cfg, store, model, items, engine)
    finally:
        for e in started:
            e.close()


@task(name="eval-grade", task_run_name="eval-grade-{model.label}", retries=1, cache_policy=NO_CACHE)
def grade_benchmarks(
    cfg: PipelineConfig,
    model: EvalModel,
    items: Items,
    answers: Manifest,
    baseline: Baseline | None = None,
) -> Manifest:
    store = ArtifactStore.from_config(cfg.storage)
    return run_eval(cfg, store, model, items, answers, lambda: judge_for(cfg), baseline)
