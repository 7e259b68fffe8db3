"""What the GRPO and DRIFT integration tests share: the tiny online config, the reward
backends on the test's engine, launching a training job as the cluster would, and the
quick evaluation of every checkpoint with its trajectory (SFT vs each iteration)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from bolt.config import EngineConfig, EngineKind, OnlineAlgorithm, PipelineConfig, ZeroStage
from bolt.evals import Benchmark
from bolt.models import cache_root
from bolt.rewards.factory import make_reward
from tests.conftest import REPO, free_port

PROMPTS = ["Name one use of salt.", "Why is the sky blue?", "Give a synonym for fast."]


def online_config(tiny_config, tmp: Path, algorithm: OnlineAlgorithm) -> PipelineConfig:
    """2 prompts (or the hand-made rows), short samples, 2 steps per iteration."""
    source_file = tmp / "prompts.jsonl"
    source_file.write_text(
        "".join(json.dumps({"id": f"p{i}", "text": t}) + "\n" for i, t in enumerate(PROMPTS))
    )
    online = tiny_config.online
    source = online.prompt_sources[0].model_copy(update={"uri": str(source_file)})
    drift = online.drift.model_copy(update={"rows_per_iteration": 2})
    settings = {
        "algorithm": algorithm,
        "prompt_sources": [source],
        "prompts_per_iteration": 2,
        "sampling": online.sampling.model_copy(update={"n": 3, "max_new_tokens": 24}),
        "grpo": online.grpo.model_copy(update={"group_size": 3, "keep_best_by": Benchmark.math500}),
        "drift": drift,
        "max_length": 96,
        "global_batch_size": 2,
        "micro_batch_size": 1,
        "lr": 1e-4,  # the papers' 1e-6 / 5e-7 move nothing measurable in 2 steps
        "warmup_ratio": 0.0,
        "max_steps": 2,
        "save_steps": 1,
        "zero": ZeroStage.zero2,
        "gradient_checkpointing": False,
    }
    storage = tiny_config.storage.model_copy(update={"root": f"file://{tmp}/store"})
    quick = {
        "benchmarks": [Benchmark.math500],
        "max_items": 1,
        "engine": EngineConfig(kind=EngineKind.transformers),
        "sampling": tiny_config.eval.sampling.model_copy(update={"max_new_tokens": 24}),
    }
    return tiny_config.model_copy(
        update={
            "name": f"online-{algorithm}-test",
            "storage": storage,
            "online": online.model_copy(update=settings),
            "eval": tiny_config.eval.model_copy(update=quick),
        }
    )


def rewards(cfg: PipelineConfig, engine):
    cache = cache_root(cfg.models).parent / "checklists"
    return {
        b.name: (
            make_reward(
                b, cfg.models, device="cpu", checklist_engine=engine, checklist_cache_dir=cache
            ),
            b.weight,
        )
        for b in cfg.online.rewards
    }


def launch(cfg: PipelineConfig, tmp: Path, module: str, args: list[str], log_name: str):
    """The job as a subprocess in its own session; its log appended (a relaunch keeps
    the killed run's lines)."""
    config = tmp / "config.yaml"
    config.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    env |= {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "MASTER_PORT": str(free_port())}
    command = [sys.executable, "-m", module, "--config", str(config), *args]
    command += ["--work-dir", str(tmp / "work")]
    log = open(tmp / log_name, "a")  # noqa: SIM115 (closed with the process)
    return subprocess.Popen(
        command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def evaluate_trajectory(cfg: PipelineConfig, checkpoints: list[tuple[str, str]], policies):
    """Every checkpoint's quick evaluation (the eval stage's own functions, in this
    process: MATH500 needs no judge), the trajectory drawn from them, and the policy the
    online loop keeps."""
    from bolt.engines import make_engine
    from bolt.evals.stage import eval_model, load_benchmarks, run_answers, run_eval
    from bolt.evals.trajectory import run_trajectory
    from bolt.store import ArtifactStore
    from flows.online_methods import kept_policy

    def no_judge(benchmark):
        raise AssertionError(f"{benchmark} needs no judge")

    store, items = ArtifactStore.from_config(cfg.storage), load_benchmarks(cfg)
    evaluations = []
    for label, folder in checkpoints:
        model = eval_model(cfg, folder, label)
        engine = make_engine(cfg.eval.engine, folder, seed=0, device="cpu")
        try:
            answers = run_answers(cfg, store, model, items, lambda engine=engine: engine)
        finally:
            engine.close()
        evaluations.append((label, run_eval(cfg, store, model, items, answers, no_judge)))
    trajectory = run_trajectory(store, evaluations)
    return trajectory, kept_policy(cfg, evaluations, policies)
