"""One GRPO step's wall time and peak memory: ours (``bolt.train.grpo``: the loss of
``bolt.train.grpo_loss`` on stored samples, the sampling policy's and the reference's
per-token log-probs computed once, before training) against TRL's ``GRPOTrainer`` (which
generates the group inside its step and holds the reference model beside the policy).

Both train the same random model (SmolLM2-135M-Instruct's architecture cut to
``--layers`` layers, as bench/dpo_reference_cache.py) on the same prompts, with groups
of ``--group`` samples of ``--completion`` tokens and the k3 KL term on; each runs in a
child process of its own, so its peak resident memory is its own. TRL's step includes
its generation (ours was done by the engines, before the job), so its ``_generate`` is
timed inside each step and taken out: the headline, ``ratio_vs_trl``, sets TRL's step
without its generation (its reference log-probs and update) beside ours with the
pre-pass's share (the reference's and the sampling policy's log-probs: one forward more
than TRL does on-policy). The whole TRL step against our step alone is reported too.

    .venv/bin/python bench/grpo_step.py [--prompts 2] [--group 4] [--completion 128] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from datetime import UTC, datetime

from common import write_result
from dpo_reference_cache import VOCAB, model
from sft_packing import PeakRss
from versus import alternate, spread

MODES = ("ours", "trl")


def prompts(count: int, length: int, seed: int = 0) -> list[list[int]]:
    import random

    rng = random.Random(seed)
    return [[rng.randrange(3, VOCAB) for _ in range(length)] for _ in range(count)]


def stored_samples(args: argparse.Namespace):
    """The groups as our job reads them: prompt + completion tokens, an advantage each."""
    import random

    from bolt.online.grpo_data import group_advantages
    from bolt.train.data import IGNORE_INDEX
    from bolt.train.grpo_batches import TokenizedSample

    rng = random.Random(1)
    out = []
    for prompt in prompts(args.prompts, args.prompt_length):
        rewards = [rng.random() for _ in range(args.group)]
        for advantage in group_advantages(rewards):
            completion = [rng.randrange(3, VOCAB) for _ in range(args.completion)]
            labels = [IGNORE_INDEX] * len(prompt) + completion
            out.append(TokenizedSample(prompt + completion, labels, advantage, False))
    return out


def run_ours(args: argparse.Namespace) -> dict:
    import torch

    from bolt.train.grpo_batches import dataset_rows, make_collator, sample_token_logps
    from bolt.train.grpo_loss import grpo_loss, per_token_logps

    samples = stored_samples(args)
    with PeakRss() as memory:
        # The pre-pass: the forwards only (building a model is not part of TRL's step either).
        reference = model(args.layers, seed=0)
        started = time.perf_counter()
        ref = sample_token_logps(reference, samples, 0, args.group)
        prepass = time.perf_counter() - started
        del reference
        policy = model(args.layers, seed=0)
        started = time.perf_counter()
        old = sample_token_logps(policy, samples, 0, args.group)
        prepass += time.perf_counter() - started
        policy.train()
        optimizer = torch.optim.AdamW(policy.parameters(), lr=1e-6)
        rows, collate = dataset_rows(samples, old, ref), make_collator(0)
        batch_size = args.prompts * args.group // args.steps
        step_seconds = []
        for step in range(args.steps + 1):  # the first step warms up
            start = (step % args.steps) * batch_size
            began = time.perf_counter()
            batch = collate(rows[start : start + batch_size])
            logits = policy(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
            ).logits
            logps, mask = per_token_logps(logits, batch["labels"], batch["loss_mask"])
            out = grpo_loss(
                logps,
                batch["old_logps"],
                batch["ref_logps"],
                batch["advantages"],
                mask,
                kl_coef=args.kl,
            )
            out.loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if step:
                step_seconds.append(time.perf_counter() - began)
    return {
        "mode": "ours",
        "steps_timed": len(step_seconds),
        "step_seconds": round(sum(step_seconds) / len(step_seconds), 3),
        "prepass_seconds": round(prepass, 3),
        "step_seconds_with_prepass_share": round(
            sum(step_seconds) / len(step_seconds) + prepass / args.steps, 3
        ),
        "peak_rss_gib": memory.gib,
    }


def trl_step_timers():
    """A callback recording each TRL step's wall time and the part of it spent in
    ``GRPOTrainer._generate``, and the trainer class that reports that part to it."""
    from transformers import TrainerCallback
    from trl import GRPOTrainer

    class StepTimes(TrainerCallback):
        """Each step's wall time and the part of it spent in TRL's generation."""

        def __init__(self):
            self.started, self.generating = 0.0, 0.0
            self.seconds: list[float] = []
            self.generation: list[float] = []

        def on_step_begin(self, *a, **k):
            self.started, self.generating = time.perf_counter(), 0.0

        def on_step_end(self, *a, **k):
            self.seconds.append(time.perf_counter() - self.started)
            self.generation.append(self.generating)

    times = StepTimes()

    class TimedGeneration(GRPOTrainer):
        def _generate(self, prompts):
            began = time.perf_counter()
            try:
                return super()._generate(prompts)
            finally:
                times.generating += time.perf_counter() - began

    return times, TimedGeneration


def run_trl(args: argparse.Namespace) -> dict:
    import datasets
    import torch
    from transformers import AutoTokenizer
    from trl import GRPOConfig

    from bolt.config_loader import load_config
    from bolt.models import prepare_model

    tiny = load_config("configs/tiny-cpu.yaml")
    tokenizer = AutoTokenizer.from_pretrained(prepare_model(tiny.models, "smollm2-135m-instruct"))
    tokenizer.padding_side = "left"
    # TRL loads its reference model from the policy's path: both from one saved folder.
    folder = f"{args.scratch}/model-{args.layers}"
    model(args.layers, seed=0).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    texts = [tokenizer.decode(p) for p in prompts(args.prompts * 4, args.prompt_length)]

    times, TimedGeneration = trl_step_timers()
    with PeakRss() as memory:
        config = GRPOConfig(
            output_dir=args.scratch,
            per_device_train_batch_size=args.prompts * args.group // args.steps,
            gradient_accumulation_steps=1,
            num_generations=args.group,
            max_completion_length=args.completion,
            beta=args.kl,
            learning_rate=1e-6,
            max_steps=args.steps + 1,
            logging_steps=1,
            report_to=[],
            use_cpu=True,
            bf16=False,
            save_strategy="no",
            temperature=1.0,
            disable_tqdm=True,
        )
        trainer = TimedGeneration(
            model=folder,
            reward_funcs=lambda completions, **kw: [float(len(c)) for c in completions],
            args=config,
            train_dataset=datasets.Dataset.from_list([{"prompt": t} for t in texts]),
            processing_class=tokenizer,
            callbacks=[times],
        )
        torch.manual_seed(0)
        trainer.train()
    timed, generation = times.seconds[1:], times.generation[1:]
    if not all(generation):
        raise RuntimeError(f"TRL generated in only some timed steps: {generation}")
    return {
        "mode": "trl",
        "steps_timed": len(timed),
        "step_seconds": round(sum(timed) / len(timed), 3),
        "generation_seconds": round(sum(generation) / len(timed), 3),
        "step_seconds_without_generation": round((sum(timed) - sum(generation)) / len(timed), 3),
        "peak_rss_gib": memory.gib,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=2, help="Prompts per step.")
    parser.add_argument("--group", type=int, default=4, help="Samples per prompt.")
    parser.add_argument("--prompt-length", type=int, default=32)
    parser.add_argument("--completion", type=int, default=128, help="Tokens per sample.")
    parser.add_argument("--steps", type=int, default=2, help="Timed steps (after a warm-up).")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--kl", type=float, default=0.001, help="KL coefficient (RLMT).")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2, help="Alternating runs of each side.")
    parser.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--scratch", default="/tmp/bolt-bench-grpo", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:
        import torch

        torch.set_num_threads(args.threads)
        run = run_ours if args.mode == "ours" else run_trl
        print(json.dumps(run(args)))
        return

    def run(mode: str, _repeat: int) -> dict:
        child = subprocess.run(
            [sys.executable, __file__, *sys.argv[1:], "--mode", mode],
            check=True,
            capture_output=True,
            text=True,
        )
        return json.loads(child.stdout.strip().splitlines()[-1])

    runs = alternate(MODES, args.repeats, run)
    median = lambda mode, key: spread([r[key] for r in runs[mode]])["median"]
    # Like for like, per repeat: neither side's generation, both sides' log-prob passes.
    ratios = [
        t["step_seconds_without_generation"] / o["step_seconds_with_prepass_share"]
        for o, t in zip(runs["ours"], runs["trl"], strict=True)
    ]
    ours = {k: median("ours", k) for k in ("step_seconds", "step_seconds_with_prepass_share")}
    ours["peak_rss_gib"] = median("ours", "peak_rss_gib")
    trl_keys = ("step_seconds", "generation_seconds", "step_seconds_without_generation")
    trl = {k: median("trl", k) for k in (*trl_keys, "peak_rss_gib")}
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": platform.platform(),
        "settings": {k: v for k, v in vars(args).items() if k not in {"mode", "scratch"}},
        "runs": runs,
        "ours": ours,
        "trl": trl,
        "ratio_vs_trl": round(spread(ratios)["median"], 2),
        "ratio_spread": spread(ratios),
        "speedup_whole_trl_step": round(trl["step_seconds"] / ours["step_seconds"], 2),
        "peak_rss_ratio": round(ours["peak_rss_gib"] / trl["peak_rss_gib"], 2),
    }
    loads = [r["load_before"]["load1"] for side in runs.values() for r in side]
    command = "python bench/grpo_step.py " + shlex.join(sys.argv[1:])
    summary = (
        f"GRPO step without generation: ours {ours['step_seconds_with_prepass_share']} s "
        f"(with the log-prob pre-pass share; {ours['step_seconds']} s the update alone) vs "
        f"TRL GRPOTrainer {trl['step_seconds_without_generation']} s "
        f"(its step {trl['step_seconds']} s, {trl['generation_seconds']} s of it generating): "
        f"**ratio_vs_trl {result['ratio_vs_trl']}** (spread {result['ratio_spread']['min']}-"
        f"{result['ratio_spread']['max']}, {args.repeats} alternating repeats, load "
        f"{min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} CPUs); peak RSS "
        f"{ours['peak_rss_gib']} / {trl['peak_rss_gib']} GiB"
    )
    write_result("grpo_step", result, summary, command.strip())
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
