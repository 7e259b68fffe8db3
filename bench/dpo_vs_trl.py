"""DPO against TRL's DPOTrainer, side by side on the same model, pairs, seed and settings,
reference log-probs precomputed on both sides.

Ours is the path of ``bolt.train.dpo`` driven in-process as the entrypoint builds it:
``tokenize_pair`` (chat template, assistant-only labels), the reference pass's
``reference_logps`` (run once, in a process of its own, as ``bolt.train.reference`` runs
in a job of its own), ``dataset_rows``/``make_collator``, ``trainer_arguments``
(DeepSpeed ZeRO-2 in one CPU process, gradient checkpointing as configured) and
``CachedReferenceDpoTrainer`` with the job's progress callback. TRL's is ``DPOTrainer``
with ``precompute_ref_log_probs=True`` (its own pass over the pairs at construction,
timed apart from the steps), sigmoid loss, the same beta, on conversational
prompt/chosen/rejected rows, built from the very same ``TrainingArguments``.

Each side runs in a child process of its own, alternating which runs first across
repeats. Figures: seconds per optimizer step after the first, peak RSS during training,
the loss and reward-margin curves step by step, the two sides' reference log-probs
against each other, and a torch.profiler table of one step each side.

    .venv/bin/python bench/dpo_vs_trl.py [--pairs 32] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import shlex
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from common import write_result
from sft_packing import PeakRss
from versus import (
    alternate,
    curve_agreement,
    load,
    lognormal,
    losses,
    peak_rss_gib,
    profile_step,
    run_child,
    spread,
    step_timer,
    tiny_llama,
    words,
)

# trl_no_deepspeed: TRL as a one-device user runs it, without DeepSpeed (secondary).
SIDES = ("ours", "trl", "trl_no_deepspeed")
LOSS_TOLERANCE = 1e-3


def online_config(spec: dict):
    from bolt.config import OnlineConfig

    return OnlineConfig(
        lr=spec["lr"],
        epochs=1,
        global_batch_size=spec["global_batch"],
        micro_batch_size=spec["micro_batch"],
        max_length=spec["max_length"],
        precision="fp32",
        zero="zero2",
        gradient_checkpointing=spec["gradient_checkpointing"],
        seed=spec["seed"],
        save_steps=10**6,
        max_steps=spec["profile_step"] if spec["profile"] else None,
        beta=spec["beta"],
        rewards=[{"kind": "format", "name": "format", "weight": 1.0}],
    )


def pair_rows(count: int, median_words: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    answer = lambda: words(rng, lognormal(rng, median_words, 0.6, 8, 6 * median_words))
    return [
        {
            "id": f"p{i}",
            "prompt": words(rng, lognormal(rng, 24, 0.5, 4, 120)),
            "chosen": answer(),
            "rejected": answer(),
        }
        for i in range(count)
    ]


def tokenized(spec: dict):
    from transformers import AutoTokenizer

    from bolt.records import PreferencePair
    from bolt.train.preference_data import tokenize_pair

    tokenizer = AutoTokenizer.from_pretrained(spec["model"])
    records = [
        PreferencePair(
            prompt_id=p["id"],
            prompt=[{"role": "user", "content": p["prompt"]}],
            chosen=p["chosen"],
            rejected=p["rejected"],
            chosen_reward=1.0,
            rejected_reward=0.0,
            iteration=1,
        )
        for p in spec["pairs"]
    ]
    return tokenizer, records, [tokenize_pair(tokenizer, r, spec["max_length"]) for r in records]


def reference(spec: dict) -> dict:
    """The reference pass (the initial model, no gradients), as its own job would run it."""
    from bolt.train.modeling import load_model, pad_token_id
    from bolt.train.preference_data import reference_logps

    tokenizer, _, pairs = tokenized(spec)
    started = time.perf_counter()
    model = load_model(spec["model"], "fp32", "cpu")
    logps = reference_logps(model, pairs, pad_token_id(tokenizer), spec["micro_batch"])
    return {
        "logps": logps,
        "seconds": round(time.perf_counter() - started, 2),
        "peak_rss_gib": peak_rss_gib(),
    }


def ours(spec: dict, out: Path, timer):
    import datasets

    from bolt.train.dpo import dataset_rows, dpo_progress, dpo_trainer_class, make_collator
    from bolt.train.modeling import load_model, pad_token_id
    from bolt.train.preference_data import ReferenceLogps
    from bolt.train.trainer import Dist, trainer_arguments

    cfg = online_config(spec)
    tokenizer, records, pairs = tokenized(spec)
    refs = [
        ReferenceLogps(prompt_id=r.prompt_id, chosen_logp=c, rejected_logp=j)
        for r, (c, j) in zip(records, spec["reference_logps"], strict=True)
    ]
    args = trainer_arguments(cfg, "cpu", out, Dist.from_env())
    trainer = dpo_trainer_class()(
        model=load_model(spec["model"], cfg.precision, "cpu"),
        args=args,
        train_dataset=datasets.Dataset.from_list(dataset_rows(pairs, refs)),
        data_collator=make_collator(pad_token_id(tokenizer)),
        processing_class=tokenizer,
        callbacks=[dpo_progress(), timer],
        beta=cfg.beta,
        loss_type=cfg.loss_type,
    )
    trainer.data_collator = timer.count(
        trainer.data_collator, lambda r: len(r["chosen_ids"]) + len(r["rejected_ids"])
    )
    return trainer, [list(p) for p in spec["reference_logps"]]


def trl(spec: dict, out: Path, timer, deepspeed: bool = True):
    import datasets
    from transformers import AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    from bolt.train.modeling import load_model
    from bolt.train.trainer import Dist, trainer_arguments

    cfg = online_config(spec)
    if not deepspeed:  # one device, no launcher: no process group, no DeepSpeed
        import os

        for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
            os.environ.pop(name, None)
    # "cpu" makes trainer_arguments start the CPU process group DeepSpeed needs.
    base = trainer_arguments(cfg, "cpu" if deepspeed else "plain", out, Dist.from_env())
    same = {k: v for k, v in base.to_dict().items() if k in DPOConfig.__dataclass_fields__}
    same |= {"deepspeed": base.deepspeed if deepspeed else None}
    same |= {"accelerator_config": {"use_configured_state": deepspeed}}
    args = DPOConfig(
        **same,
        beta=cfg.beta,
        loss_type=["sigmoid"],
        max_length=cfg.max_length,
        precompute_ref_log_probs=True,
        precompute_ref_batch_size=cfg.micro_batch_size,
        dataset_num_proc=None,
    )
    rows = [
        {
            "prompt": [{"role": "user", "content": p["prompt"]}],
            "chosen": [{"role": "assistant", "content": p["chosen"]}],
            "rejected": [{"role": "assistant", "content": p["rejected"]}],
        }
        for p in spec["pairs"]
    ]
    trainer = DPOTrainer(
        model=load_model(spec["model"], cfg.precision, "cpu"),
        args=args,
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=AutoTokenizer.from_pretrained(spec["model"]),
        callbacks=[timer],
    )
    trainer.data_collator = timer.count(
        trainer.data_collator,
        lambda r: 2 * len(r["prompt_ids"]) + len(r["chosen_ids"]) + len(r["rejected_ids"]),
    )
    ds = trainer.train_dataset
    return trainer, [
        list(x) for x in zip(ds["ref_chosen_logps"], ds["ref_rejected_logps"], strict=True)
    ]


def child(side: str, spec: dict) -> dict:
    import torch

    torch.set_num_threads(spec["threads"])
    if side == "reference":
        return reference(spec)
    timer = step_timer()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        trainer, refs = (
            ours(spec, Path(tmp), timer)
            if side == "ours"
            else trl(spec, Path(tmp), timer, deepspeed=side == "trl")
        )
        prepare_seconds = time.perf_counter() - started
        table = profile_step(trainer, spec["profile_step"]) if spec["profile"] else None
        with PeakRss() as memory:
            trainer.train()
    history = trainer.state.log_history
    margin_key = "reward_margin" if side == "ours" else "rewards/margins"
    return {
        "side": side,
        **timer.figures(),
        "prepare_seconds": round(prepare_seconds, 2),
        "peak_rss_gib": memory.gib,
        "peak_rss_lifetime_gib": peak_rss_gib(),
        "losses": losses(history),
        "margins": [round(float(e[margin_key]), 6) for e in history if margin_key in e],
        "reference_logps": refs,
        "profile": table() if table else None,
    }


def compare(results: dict[str, list[dict]], profiles: dict[str, dict], ref: dict) -> dict:
    ratios = [
        b["step_seconds"] / a["step_seconds"]
        for a, b in zip(results["ours"], results["trl"], strict=True)
    ]
    plain = [
        b["step_seconds"] / a["step_seconds"]
        for a, b in zip(results["ours"], results["trl_no_deepspeed"], strict=True)
    ]
    first = {s: results[s][0] for s in SIDES}
    ours_refs = [x for pair in first["ours"]["reference_logps"] for x in pair]
    trl_refs = [x for pair in first["trl"]["reference_logps"] for x in pair]
    loss_agreement = curve_agreement(first["ours"]["losses"], first["trl"]["losses"])
    return {
        "ratio_vs_trl": round(statistics.median(ratios), 3),
        "ratio_spread": spread(ratios),
        "ratio_vs_trl_no_deepspeed": round(statistics.median(plain), 3),
        "ratio_vs_trl_no_deepspeed_spread": spread(plain),
        "loss_agreement_vs_trl_no_deepspeed": curve_agreement(
            first["ours"]["losses"], first["trl_no_deepspeed"]["losses"]
        ),
        "step_seconds": {s: spread([r["step_seconds"] for r in results[s]]) for s in SIDES},
        "peak_rss_gib": {s: spread([r["peak_rss_gib"] for r in results[s]]) for s in SIDES},
        "peak_rss_lifetime_gib": {
            s: spread([r["peak_rss_lifetime_gib"] for r in results[s]]) for s in SIDES
        },
        "reference_pass": {
            "ours_separate_job_seconds": ref["seconds"],
            "ours_peak_rss_gib": ref["peak_rss_gib"],
            "trl_in_trainer_init_seconds": spread([r["prepare_seconds"] for r in results["trl"]]),
            "max_abs_diff_ours_vs_trl": round(
                max(abs(a - b) for a, b in zip(ours_refs, trl_refs, strict=True)), 6
            ),
        },
        "loss_curves": {s: first[s]["losses"] for s in SIDES},
        "margin_curves": {s: first[s]["margins"] for s in SIDES},
        "loss_agreement": loss_agreement
        | {
            "tolerance_abs": LOSS_TOLERANCE,
            "within_tolerance": loss_agreement.get("max_abs_diff", 1.0) <= LOSS_TOLERANCE,
        },
        "margin_agreement": curve_agreement(first["ours"]["margins"], first["trl"]["margins"]),
        "profile_one_step": {s: p["profile"] for s, p in profiles.items()},
        "profile_step_seconds": {s: p["step_seconds"] for s, p in profiles.items()},
        "runs": {
            s: [{k: v for k, v in r.items() if k != "reference_logps"} for r in results[s]]
            for s in SIDES
        },
    }


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=32)
    parser.add_argument("--median-words", type=int, default=120)
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--micro-batch", type=int, default=2, help="Pairs per forward.")
    parser.add_argument("--global-batch", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--beta", type=float, default=0.1)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--no-gradient-checkpointing", action="store_true")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--child", choices=(*SIDES, "reference"), help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = parse()
    if args.child:
        print(json.dumps(child(args.child, json.loads(Path(args.spec).read_text()))))
        return
    shape = {"hidden": args.hidden, "intermediate": 3 * args.hidden, "layers": args.layers}
    shape |= {"heads": max(1, args.hidden // 64), "kv_heads": max(1, args.hidden // 128)}
    with tempfile.TemporaryDirectory() as tmp:
        spec = {
            "model": str(tiny_llama(Path(tmp) / "model", shape, args.seed)),
            "pairs": pair_rows(args.pairs, args.median_words, args.seed),
            "gradient_checkpointing": not args.no_gradient_checkpointing,
            "profile": False,
            "profile_step": 3,
        } | {
            k: getattr(args, k)
            for k in ("lr", "beta", "global_batch", "micro_batch", "max_length", "seed", "threads")
        }
        spec_file = Path(tmp) / "spec.json"
        spec_file.write_text(json.dumps(spec))
        before = load()
        ref = run_child(__file__, "reference", spec_file, args.threads, 1800)
        spec["reference_logps"] = ref["logps"]
        spec_file.write_text(json.dumps(spec))
        run = lambda side, _: run_child(__file__, side, spec_file, args.threads, 1800)
        results = alternate(SIDES, args.repeats, run)
        profiles = {}
        if not args.no_profile:
            (Path(tmp) / "profile.json").write_text(json.dumps(spec | {"profile": True}))
            for side in SIDES[:2]:
                profiles[side] = run_child(
                    __file__, side, Path(tmp) / "profile.json", args.threads, 1800
                )
        after = load()
    settings = {k: v for k, v in spec.items() if k not in {"pairs", "model", "reference_logps"}}
    report(args, shape, settings, compare(results, profiles, ref), before, after)


def report(args, shape, settings, figures, before, after) -> None:
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "goal": ">= 1.0 (TRL step seconds / ours)",
        "load": {"before": before, "after": after},
        "settings": settings
        | {"pairs": args.pairs, "median_words": args.median_words, "repeats": args.repeats},
        "model": f"random Llama {shape} with SmolLM2's tokenizer (vocab 49152), fp32, sdpa",
        "ours": "bolt.train.dpo path: tokenize_pair, reference_logps (separate pass), "
        "CachedReferenceDpoTrainer, trainer_arguments (DeepSpeed ZeRO-2, 1 CPU process)",
        "trl": "trl.DPOTrainer: precompute_ref_log_probs=True, sigmoid loss, the same TrainingArguments",
        **figures,
        "machine": platform.platform(),
    }
    step = figures["step_seconds"]
    summary = (
        f"DPO step ours {step['ours']['median']} s vs TRL DPOTrainer {step['trl']['median']} s: "
        f"**ratio_vs_trl {figures['ratio_vs_trl']}** (spread {figures['ratio_spread']['min']}-"
        f"{figures['ratio_spread']['max']}, {args.repeats} alternating repeats, load "
        f"{before['load1']:.1f}/{after['load1']:.1f} on {before['cpus']} CPUs); peak RSS "
        f"{figures['peak_rss_gib']['ours']['median']} / {figures['peak_rss_gib']['trl']['median']} GiB; "
        f"loss max |diff| {figures['loss_agreement'].get('max_abs_diff')}, margin max |diff| "
        f"{figures['margin_agreement'].get('max_abs_diff')}"
    )
    write_result(
        "dpo_vs_trl", result, summary, shlex.join(["python", "bench/dpo_vs_trl.py", *sys.argv[1:]])
    )
    print(summary)


if __name__ == "__main__":
    main()
