"""What the side-by-side benchmarks share (ours against TRL, against a plain vLLM script):
each side in a child process of its own (its own peak memory), the order alternated
across repeats, the spread of each figure, how loaded the machine was, and the tiny
random Llama with SmolLM2's tokenizer that keeps CPU training runs short."""

from __future__ import annotations

import json
import os
import random
import resource
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

VOCABULARY = (
    "the a of to and in is that for it as with was on be by this are or at from which an "
    "we can if not so then let us find solve step value number answer total each first next "
    "because therefore since equation sum square root prime factor divide multiply angle "
    "triangle circle area length time speed rate cost price water river tree music story "
    "history reason check again wait actually hmm consider case both three four five seven"
)
WORDS = VOCABULARY.split(" ")


def load() -> dict[str, float]:
    """The 1-, 5- and 15-minute load averages and the number of CPUs."""
    one, five, fifteen = os.getloadavg()
    return {"load1": one, "load5": five, "load15": fifteen, "cpus": os.cpu_count() or 0}


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median, min, max and the relative spread ((max - min) / median) of a figure."""
    median = statistics.median(values)
    return {
        "median": round(median, 4),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
        "rel_spread": round((max(values) - min(values)) / median, 4) if median else 0.0,
        "n": len(values),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def job_env(threads: int) -> dict[str, str]:
    """The environment of one training side: the local launcher's single-process
    DeepSpeed world (ARCHITECTURE.md §6) and a fixed thread count."""
    env = dict(os.environ)
    env |= {
        "RANK": "0",
        "WORLD_SIZE": "1",
        "LOCAL_RANK": "0",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(free_port()),
        "OMP_NUM_THREADS": str(threads),
        "TOKENIZERS_PARALLELISM": "false",
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), env.get("PYTHONPATH", "")]),
    }
    return env


def run_child(script: str, side: str, spec_file: Path, threads: int, timeout: float) -> dict:
    """Run ``script --child <side> --spec <file>``; its last stdout line is its JSON."""
    started = time.perf_counter()
    child = subprocess.run(
        [sys.executable, script, "--child", side, "--spec", str(spec_file)],
        check=False,
        capture_output=True,
        text=True,
        env=job_env(threads),
        timeout=timeout,
    )
    if child.returncode != 0:
        raise RuntimeError(f"{side} failed ({child.returncode}):\n{child.stderr[-4000:]}")
    result = json.loads(child.stdout.strip().splitlines()[-1])
    result["process_seconds"] = round(time.perf_counter() - started, 2)
    return result


def alternate(
    sides: Sequence[str], repeats: int, run: Callable[[str, int], dict]
) -> dict[str, list[dict]]:
    """``run(side, repeat)`` for every side, ``repeats`` times, the order reversed on
    every other repeat (so neither side always runs on a cold or a warm machine)."""
    results: dict[str, list[dict]] = {side: [] for side in sides}
    for repeat in range(repeats):
        order = list(sides) if repeat % 2 == 0 else list(reversed(sides))
        for position, side in enumerate(order):
            before = load()
            result = run(side, repeat)
            result |= {"repeat": repeat, "position": position, "load_before": before}
            result["load_after"] = load()
            results[side].append(result)
            print(f"  {side} repeat {repeat}: {summary_line(result)}", file=sys.stderr)
    return results


def summary_line(result: dict) -> str:
    keys = ("tokens_per_s", "step_seconds", "output_tokens_per_s", "peak_rss_gib")
    return ", ".join(f"{k} {result[k]}" for k in keys if k in result)


def peak_rss_gib() -> float:
    """This process's lifetime peak resident memory (getrusage: KiB on Linux)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2, 3)


def smollm2_dir() -> Path:
    """The prepared SmolLM2-135M-Instruct folder (tests/conftest.py's ``smollm2_path``)."""
    from bolt.config_loader import load_config
    from bolt.models import prepare_model

    return prepare_model(load_config("configs/tiny-cpu.yaml").models, "smollm2-135m-instruct")


def tiny_llama(folder: Path, shape: dict[str, int], seed: int) -> Path:
    """A random Llama of ``shape`` with SmolLM2's tokenizer and chat template, saved once
    (tests/reliability/test_training_crash_resume.py builds the same kind)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir())
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=shape["hidden"],
        intermediate_size=shape["intermediate"],
        num_hidden_layers=shape["layers"],
        num_attention_heads=shape["heads"],
        num_key_value_heads=shape["kv_heads"],
        max_position_embeddings=8192,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def words(rng: random.Random, count: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(max(1, count)))


def lognormal(rng: random.Random, median: float, sigma: float, lo: int, hi: int) -> int:
    return int(min(hi, max(lo, rng.lognormvariate(0.0, sigma) * median)))


def conversations(count: int, median_words: int, seed: int) -> list[dict[str, Any]]:
    """Single-turn chats shaped like the bootstrapped set: a short query, a long answer
    (log-normal length, a long tail)."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        prompt = words(rng, lognormal(rng, 24, 0.5, 4, 200))
        answer = words(rng, lognormal(rng, median_words, 0.8, 8, 20 * median_words))
        out.append({"id": f"q{i}", "prompt": prompt, "answer": answer})
    return out


def step_timer():
    """A TrainerCallback recording the seconds of each optimizer step (from the end of
    the one before: data collation included) and the tokens of each collated
    micro-batch (the data loader runs one batch ahead, so tokens are attributed to steps
    by the accumulation count, not by when they were collated)."""
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self) -> None:
            self.batches: list[int] = []
            self.seconds: list[float] = []
            self.accumulation = 1

        def count(self, collate: Callable, size: Callable[[dict], int] | None = None) -> Callable:
            """``collate`` counting the tokens of each row (``size``: its input ids)."""
            size = size or (lambda row: len(row["input_ids"]))

            def counted(rows):
                self.batches.append(sum(size(row) for row in rows))
                return collate(rows)

            return counted

        def on_train_begin(self, args, state, control, **kwargs):
            self.accumulation = args.gradient_accumulation_steps
            self.last = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            now = time.perf_counter()
            self.seconds.append(now - self.last)
            self.last = now

        def figures(self) -> dict[str, float]:
            """Throughput over the steps after the first (warm-up: allocator, optimizer
            states, DeepSpeed buffers) and over all of them."""
            total_tokens, total_seconds = sum(self.batches), sum(self.seconds)
            warm_tokens = total_tokens - sum(self.batches[: self.accumulation])
            warm_seconds = sum(self.seconds[1:])
            if len(self.seconds) < 2:
                warm_tokens, warm_seconds = total_tokens, total_seconds
            return {
                "steps": len(self.seconds),
                "tokens": total_tokens,
                "tokens_per_s": round(warm_tokens / warm_seconds, 2),
                "tokens_per_s_all_steps": round(total_tokens / total_seconds, 2),
                "step_seconds": round(warm_seconds / max(1, len(self.seconds) - 1), 4),
                "first_step_seconds": round(self.seconds[0], 4),
                "train_seconds": round(total_seconds, 3),
            }

    return StepTimer()


def losses(log_history: list[dict]) -> list[float]:
    return [round(float(e["loss"]), 6) for e in log_history if "loss" in e and "step" in e]


def curve_agreement(a: Sequence[float], b: Sequence[float]) -> dict[str, float]:
    """The largest absolute and relative step-by-step difference of two curves."""
    pairs = list(zip(a, b, strict=False))
    if not pairs:
        return {"steps_compared": 0}
    diffs = [abs(x - y) for x, y in pairs]
    rel = [abs(x - y) / max(abs(y), 1e-12) for x, y in pairs]
    return {
        "steps_compared": len(pairs),
        "max_abs_diff": round(max(diffs), 6),
        "max_rel_diff": round(max(rel), 6),
        "mean_abs_diff": round(statistics.fmean(diffs), 6),
    }


def profile_step(trainer, step: int, top: int = 15) -> Callable[[], list[dict]]:
    """Profile optimizer step ``step`` of ``trainer`` with torch.profiler (CPU ops);
    returns a function giving the top ops by self CPU time once training ended."""
    import torch
    from transformers import TrainerCallback

    holder: dict[str, Any] = {}

    class Profile(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step + 1 == step:
                holder["prof"] = torch.profiler.profile(
                    activities=[torch.profiler.ProfilerActivity.CPU]
                )
                holder["prof"].__enter__()

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == step and "prof" in holder:
                holder["prof"].__exit__(None, None, None)

    trainer.add_callback(Profile())

    def table() -> list[dict]:
        if "prof" not in holder:
            return []
        events = sorted(holder["prof"].key_averages(), key=lambda e: -e.self_cpu_time_total)
        total = sum(e.self_cpu_time_total for e in events) or 1
        return [
            {
                "op": e.key,
                "self_cpu_ms": round(e.self_cpu_time_total / 1000, 2),
                "share": round(e.self_cpu_time_total / total, 4),
                "calls": e.count,
            }
            for e in events[:top]
        ]

    return table
