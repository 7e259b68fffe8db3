"""Reward scoring throughput: length-sorted batching against input-order batching.

Scores the same long-tailed set of answers twice in one run with one model, once in
batches taken in input order (each padded to its longest member) and once in
length-sorted batches (``bolt.rewards.batching.length_sorted_batches``), and reports
samples/s of each and the speedup. The answers follow the shape of bootstrapped
LongCoT responses: log-normal token lengths (median ~250, a tail past 1,500 tokens),
cut from real prose (the hand-written in-context examples of ``prompts/longcot``).
The reward model is a small randomly initialised Llama sequence classifier on the
CPU, loaded through the code that loads ArmoRM/Skywork (``tests/random_reward_model.py``).

    .venv/bin/python bench/reward_batching.py [--items 256] [--batch-size 16]

Writes ``bench/results/reward_batching.json`` (headline under ``speedup``) and its line
in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import REPO, write_result

# The reward model is the tests' random one (tests/random_reward_model.py).
sys.path.insert(0, str(REPO))


def sample_lengths(n: int, median: int, sigma: float, seed: int) -> list[int]:
    """Log-normal token lengths, clipped to [8, 4096], as bootstrapped answers are shaped."""
    import numpy as np

    rng = np.random.default_rng(seed)
    lengths = rng.lognormal(mean=np.log(median), sigma=sigma, size=n)
    return [int(x) for x in np.clip(lengths, 8, 4096)]


def build_items(tokenizer, lengths: list[int], seed: int):
    """One item per length: a real query and a response of that many tokens of real prose."""
    import numpy as np

    from bolt.prompts import load_examples
    from bolt.rewards import RewardItem

    examples = load_examples()
    prose = "\n\n".join(f"{e.thoughts}\n\n{e.response}" for e in examples)
    corpus = tokenizer.encode(prose, add_special_tokens=False)
    rng = np.random.default_rng(seed)
    items = []
    for i, length in enumerate(lengths):
        start = int(rng.integers(len(corpus)))
        window = [corpus[(start + k) % len(corpus)] for k in range(length)]
        query = examples[i % len(examples)].query
        items.append(RewardItem(query, tokenizer.decode(window), None, f"item-{i}"))
    return items


def padded_tokens(lengths: list[int], batches: list[list[int]]) -> int:
    """Tokens the model processes when every batch is padded to its longest sequence."""
    return sum(len(b) * max(lengths[i] for i in b) for b in batches)


def timed_passes(rewards: dict, items, repeats: int) -> tuple[dict, dict]:
    """Each reward's scores and the wall seconds of its ``repeats`` full scoring passes.

    The modes alternate pass by pass, so that load from other processes on a shared
    machine falls on both alike.
    """
    scores = {name: [] for name in rewards}
    seconds = {name: [] for name in rewards}
    for _ in range(repeats):
        for name, reward in rewards.items():
            started = time.perf_counter()
            scores[name] = reward.score(items)
            seconds[name].append(time.perf_counter() - started)
    return scores, seconds


def random_reward_models(args: argparse.Namespace) -> tuple[Any, Any]:
    """One random reward model (SmolLM2's tokenizer) twice: length-sorted, input order."""
    from bolt.config import ModelEntry, ModelsConfig
    from bolt.config_loader import load_config
    from bolt.models import prepare_model
    from bolt.rewards.sequence_classifier import SequenceClassifierReward
    from tests.random_reward_model import save_random_reward_model

    tokenizer_dir = prepare_model(
        load_config(REPO / "configs" / "tiny-cpu.yaml").models, "smollm2-135m-instruct"
    )
    with tempfile.TemporaryDirectory() as tmp:
        rm_dir = save_random_reward_model(
            tokenizer_dir,
            Path(tmp) / "rm",
            hidden_size=args.hidden_size,
            num_layers=args.layers,
            num_heads=args.heads,
        )
        models = ModelsConfig(catalog={"random-rm": ModelEntry(path=str(rm_dir))})
        sorted_rm = SequenceClassifierReward.from_catalog(
            models, "random-rm", batch_size=args.batch_size
        )
    naive_rm = SequenceClassifierReward(
        sorted_rm.model, sorted_rm.tokenizer, batch_size=args.batch_size, sort_by_length=False
    )
    return sorted_rm, naive_rm


def run(args: argparse.Namespace) -> dict:
    import torch

    torch.set_num_threads(args.threads)

    from bolt.rewards.batching import input_order_batches, length_sorted_batches

    sorted_rm, naive_rm = random_reward_models(args)
    response_lengths = sample_lengths(args.items, args.median, args.sigma, args.seed)
    items = build_items(sorted_rm.tokenizer, response_lengths, args.seed)
    lengths = [len(sorted_rm.token_ids(item)) for item in items]
    # Warm-up on the longest batch: the first pass at a new size pays for allocating
    # the largest attention buffers, which would otherwise fall on whichever mode ran first.
    longest = length_sorted_batches(lengths, args.batch_size)[0]
    sorted_rm.score([items[i] for i in longest])
    scores, seconds = timed_passes({"naive": naive_rm, "sorted": sorted_rm}, items, args.repeats)
    naive_sps = len(items) / statistics.median(seconds["naive"])
    sorted_sps = len(items) / statistics.median(seconds["sorted"])
    return {
        "speedup": round(sorted_sps / naive_sps, 3),
        "sorted_samples_per_s": round(sorted_sps, 2),
        "naive_samples_per_s": round(naive_sps, 2),
        "sorted_seconds": [round(s, 3) for s in seconds["sorted"]],
        "naive_seconds": [round(s, 3) for s in seconds["naive"]],
        "max_abs_score_difference": max(
            abs(a - b) for a, b in zip(scores["sorted"], scores["naive"], strict=True)
        ),
        "tokens": {
            "real": sum(lengths),
            "padded_naive": padded_tokens(
                lengths, input_order_batches(len(lengths), args.batch_size)
            ),
            "padded_sorted": padded_tokens(
                lengths, length_sorted_batches(lengths, args.batch_size)
            ),
        },
        "response_tokens": {
            "median": statistics.median(response_lengths),
            "max": max(response_lengths),
            "over_1500": sum(n > 1500 for n in response_lengths),
        },
        "sequence_tokens": {
            "median": statistics.median(lengths),
            "mean": round(statistics.fmean(lengths), 1),
            "max": max(lengths),
        },
        "settings": {
            **vars(args),
            "model": f"random LlamaForSequenceClassification, hidden {args.hidden_size}, "
            f"{args.layers} layers, {args.heads} heads, SmolLM2 tokenizer",
            "device": "cpu",
            "dtype": "float32",
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "machine": platform.processor() or platform.machine(),
            "timing": f"median of {args.repeats} full passes per mode, alternating, after a "
            "warm-up on the longest batch",
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=256, help="answers scored per pass")
    parser.add_argument("--batch-size", type=int, default=16, help="paper-8b.yaml's ArmoRM batch")
    parser.add_argument("--median", type=int, default=250, help="median response tokens")
    parser.add_argument("--sigma", type=float, default=0.9, help="log-normal shape")
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--heads", type=int, default=2)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads; 1 because on a shared machine more threads than free cores "
        "make OpenMP spin and timings swing several-fold",
    )
    result = run(parser.parse_args())
    result["date"] = datetime.now(UTC).isoformat(timespec="seconds")
    s, lengths = result["settings"], result["response_tokens"]
    summary = (
        f"length-sorted {result['sorted_samples_per_s']:.1f} vs input-order "
        f"{result['naive_samples_per_s']:.1f} samples/s: **{result['speedup']:.2f}x** "
        f"({s['items']} answers, median {lengths['median']:.0f} / max {lengths['max']} "
        f"response tokens, batch {s['batch_size']}, random Llama RM, CPU fp32, "
        f"{s['torch_threads']} thread)"
    )
    write_result("reward_batching", result, summary, "python bench/reward_batching.py")
    print(summary)


if __name__ == "__main__":
    main()
