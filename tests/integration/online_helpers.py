"""What the GRPO and DRIFT integration tests share: the tiny online config (transformers
engines), SmolLM2 stored as the SFT model the online flow starts from, and reading the
store's outputs and the Prefect server's task states back."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path

from bolt.config import EngineConfig, EngineKind, OnlineAlgorithm, PipelineConfig, ZeroStage
from bolt.evals import Benchmark
from bolt.stages import Stage
from bolt.store import ArtifactStore, Manifest
from bolt.train.fingerprints import MODEL_DIR
from tests.conftest import REPO

PROMPTS = ["Name one use of salt.", "Why is the sky blue?", "Give a synonym for fast."]


def online_config(tiny_config, tmp: Path, algorithm: OnlineAlgorithm) -> PipelineConfig:
    """2 prompts (or 2 of the hand-made rows), short samples, 2 steps per iteration,
    transformers engines."""
    source_file = tmp / "prompts.jsonl"
    source_file.write_text(
        "".join(json.dumps({"id": f"p{i}", "text": t}) + "\n" for i, t in enumerate(PROMPTS))
    )
    online = tiny_config.online
    source = online.prompt_sources[0].model_copy(update={"uri": str(source_file)})
    rows = online.drift.sources[0]  # the hand-made rows, wherever pytest runs
    rows = rows.model_copy(update={"uri": str(REPO / rows.uri)})
    drift = online.drift.model_copy(update={"rows_per_iteration": 2, "sources": [rows]})
    settings = {
        "algorithm": algorithm,
        # In the flow each policy folder gets its own engine from the pool, and the
        # checklist reward another: vLLM would start three times (54 s each on the
        # 2-core machine), where the hand-driven loops shared one session engine.
        "engine": EngineConfig(kind=EngineKind.transformers),
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


def commit_sft(store: ArtifactStore, model_dir: Path) -> Manifest:
    """SmolLM2 as the SFT model, stored as the SFT stage stores one (``model/``): the
    online flow starts from a stored SFT model, and its jobs fetch it by id."""
    fp = "smollm2-as-sft-00"
    files = store.put_dir(Stage.sft, fp, MODEL_DIR, model_dir)
    return store.commit(
        Manifest(stage=Stage.sft, fingerprint=fp, code_version="1", config={}, files=files)
    )


def by_iteration(store: ArtifactStore, stage: str) -> list[Manifest]:
    return sorted(store.list_manifests(stage), key=lambda m: m.config["iteration"])


def task_states(
    tag: str, names: list[str], settled: Callable[[dict[str, list[str]]], bool]
) -> dict[str, list[str]]:
    """The states of the task runs tagged ``tag`` (the server is the session's), sorted,
    by which of ``names`` each run's name starts with (the longest that fits: an
    online-grpo-scores-shard run is not an online-grpo one). The server records a task
    run from the events the flow sends, a moment later: read until ``settled`` holds or
    30 s have passed, and return the last read."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterTags

    longest_first = sorted(names, key=len, reverse=True)

    async def read():
        async with get_client() as client:
            runs = await client.read_task_runs(
                task_run_filter=TaskRunFilter(tags=TaskRunFilterTags(all_=[tag]))
            )
        found: dict[str, list[str]] = {}
        for run in runs:
            name = next((n for n in longest_first if run.name.startswith(n)), None)
            if name is not None:
                found.setdefault(name, []).append(run.state.name)
        return {name: sorted(states) for name, states in found.items()}

    deadline = time.monotonic() + 30
    while not settled(found := asyncio.run(read())) and time.monotonic() < deadline:
        time.sleep(0.5)
    return found


def state_kinds(states: dict[str, list[str]]) -> dict[str, list[str]]:
    """Each task's distinct states (how many runs aside)."""
    return {name: sorted(set(found)) for name, found in states.items()}
