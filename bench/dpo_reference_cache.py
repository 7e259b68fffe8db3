"""DPO step time and peak memory with the reference log-probs cached (computed once in a
pass of their own, as ``bolt.train.reference.run_reference`` does) against computing them
on the fly (the reference model in memory beside the policy, one extra forward a step).

Each mode runs in its own child process, so its peak resident memory is its own; one
invocation runs both on the same synthetic pairs. The model is SmolLM2-135M-Instruct's
architecture cut to ``--layers`` layers with random weights (as bench/sft_packing.py):
the ratio of the modes is what is measured. Steps are timed after one warm-up step.

    .venv/bin/python bench/dpo_reference_cache.py [--pairs 8] [--length 256] [--layers 4]
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from common import write_result
from sft_packing import PeakRss

VOCAB = 49152  # SmolLM2's
# The reference pass first: the cached mode trains on what it wrote.
MODES = ("reference", "cached", "on_the_fly")


def model(layers: int, seed: int):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=576,
        intermediate_size=1536,
        num_hidden_layers=layers,
        num_attention_heads=9,
        num_key_value_heads=3,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(config)


def pairs(count: int, length: int):
    import random

    from bolt.train.data import IGNORE_INDEX
    from bolt.train.preference_data import TokenizedPair

    rng = random.Random(0)
    out = []
    for _ in range(count):
        prompt = [rng.randrange(3, VOCAB) for _ in range(length // 4)]
        chosen = [rng.randrange(3, VOCAB) for _ in range(length - len(prompt))]
        rejected = [rng.randrange(3, VOCAB) for _ in range(length - len(prompt) - 16)]
        ignore = [IGNORE_INDEX] * len(prompt)
        out.append(
            TokenizedPair(
                prompt + chosen, ignore + chosen, prompt + rejected, ignore + rejected, False
            )
        )
    return out


def run_mode(mode: str, args: argparse.Namespace) -> dict:
    import torch

    from bolt.train.dpo_loss import dpo_loss, sequence_logps
    from bolt.train.preference_data import batched, collate_pairs, reference_logps

    torch.set_num_threads(args.threads)
    data = pairs(args.pairs, args.length)
    batches = list(batched(data, args.batch))
    if mode == "reference":  # the separate pass, in a process of its own
        return {"logps": reference_logps(model(args.layers, seed=1), data, 0, args.batch)}
    with PeakRss() as memory:
        policy = model(args.layers, seed=0)
        optimizer = torch.optim.AdamW(policy.parameters(), lr=1e-6)
        if mode == "cached":
            cached = args.cached_logps
            refs = [
                torch.tensor(cached[i : i + args.batch]) for i in range(0, len(data), args.batch)
            ]
        else:
            reference = model(args.layers, seed=1).eval()
        step_seconds = []
        for epoch in range(args.epochs):
            for index, chunk in enumerate(batches):
                started = time.perf_counter()
                batch = collate_pairs(chunk, pad_token_id=0)
                inputs = {
                    "input_ids": batch["input_ids"],
                    "attention_mask": batch["attention_mask"],
                }
                if mode == "cached":
                    ref_chosen, ref_rejected = refs[index][:, 0], refs[index][:, 1]
                else:
                    with torch.no_grad():
                        ref = sequence_logps(
                            reference(**inputs).logits, batch["labels"], batch["loss_mask"]
                        )
                    ref_chosen, ref_rejected = ref[: len(chunk)], ref[len(chunk) :]
                logps = sequence_logps(policy(**inputs).logits, batch["labels"], batch["loss_mask"])
                loss = dpo_loss(
                    logps[: len(chunk)], logps[len(chunk) :], ref_chosen, ref_rejected
                ).losses.mean()
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                if epoch or index:  # the first step warms up allocators and kernels
                    step_seconds.append(time.perf_counter() - started)
    return {
        "mode": mode,
        "steps_timed": len(step_seconds),
        "step_seconds": round(sum(step_seconds) / len(step_seconds), 3),
        "peak_rss_gib": memory.gib,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--length", type=int, default=256, help="Tokens of a chosen sequence.")
    parser.add_argument("--batch", type=int, default=2, help="Pairs per step.")
    parser.add_argument("--epochs", type=int, default=2, help="Passes over the pairs (paper: 2).")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--cached-logps-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:
        if args.cached_logps_file:
            args.cached_logps = json.loads(Path(args.cached_logps_file).read_text())["logps"]
        print(json.dumps(run_mode(args.mode, args)))
        return
    modes = {}
    with tempfile.TemporaryDirectory() as tmp:
        logps_file = Path(tmp) / "reference.json"
        for mode in MODES:
            extra = ["--cached-logps-file", str(logps_file)] if mode == "cached" else []
            child = subprocess.run(
                [sys.executable, __file__, *sys.argv[1:], "--mode", mode, *extra],
                check=True,
                capture_output=True,
                text=True,
            )
            modes[mode] = json.loads(child.stdout.strip().splitlines()[-1])
            if mode == "reference":
                logps_file.write_text(json.dumps(modes[mode]))
    cached, fly = modes["cached"], modes["on_the_fly"]
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": platform.platform(),
        "settings": {k: v for k, v in vars(args).items() if k not in {"mode", "cached_logps_file"}},
        "cached": cached,
        "on_the_fly": fly,
        "speedup": round(fly["step_seconds"] / cached["step_seconds"], 2),
        "peak_rss_ratio": round(cached["peak_rss_gib"] / fly["peak_rss_gib"], 2),
    }
    command = "python bench/dpo_reference_cache.py " + shlex.join(sys.argv[1:])
    summary = (
        f"DPO step {cached['step_seconds']} s cached vs {fly['step_seconds']} s on the fly: "
        f"**{result['speedup']}x**; peak RSS {cached['peak_rss_gib']} / {fly['peak_rss_gib']} GiB "
        f"(ratio {result['peak_rss_ratio']})"
    )
    write_result("dpo_reference_cache", result, summary, command.strip())
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
