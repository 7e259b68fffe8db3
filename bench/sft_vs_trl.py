"""SFT against TRL's SFTTrainer, side by side on the same model, data, seed and settings.

Ours is the training path of ``bolt.train.sft`` driven in-process, piece by piece as the
entrypoint builds it: chat-templated tokens with assistant-only labels
(``tokenize_with_labels``), best-fit packing with per-example position ids
(``build_dataset``/``make_collator``), ``trainer_arguments`` (DeepSpeed ZeRO-2 in one CPU
process, as the local launcher runs it; gradient checkpointing as configured) and the HF
Trainer with the job's progress callback. TRL's is ``SFTTrainer`` with ``packing=True``
(BFD), ``padding_free=True`` (position ids, one flattened row per micro-batch),
completion-only loss on conversational prompt/completion rows (SmolLM2's chat template
has no ``{% generation %}`` markers and TRL ships no training template for it, so
``assistant_only_loss`` does not apply; on single-turn chats the completion is the
assistant turn, the same tokens), built from the very same ``TrainingArguments``
(DeepSpeed config, batch, accumulation, lr schedule, optimizer, clipping, seed).

Each side runs in a child process of its own (peak RSS is its own), alternating which
runs first across repeats. Figures: tokens/s over the non-pad input tokens of the steps
after the first, peak RSS, the loss curve step by step, and a torch.profiler table of
one step each side.

    .venv/bin/python bench/sft_vs_trl.py [--examples 64] [--max-length 512] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import statistics
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from common import write_result
from sft_packing import PeakRss
from versus import (
    alternate,
    conversations,
    curve_agreement,
    load,
    losses,
    peak_rss_gib,
    profile_step,
    run_child,
    spread,
    step_timer,
    tiny_llama,
)

# trl_no_deepspeed: TRL as a one-device user runs it, without DeepSpeed (secondary).
SIDES = ("ours", "trl", "trl_no_deepspeed")
# Same data order and the same packed rows (checked): the curves may differ only by
# floating-point order (flattened vs per-row attention, loss reductions).
LOSS_TOLERANCE = 1e-3


def sft_config(spec: dict):
    from bolt.config import SftConfig

    return SftConfig(
        base_model="bench",
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
    )


def messages(conv: dict) -> list[dict[str, str]]:
    return [
        {"role": "user", "content": conv["prompt"]},
        {"role": "assistant", "content": conv["answer"]},
    ]


def ours(spec: dict, out: Path, timer) -> tuple:
    from transformers import AutoTokenizer, Trainer

    from bolt.train.data import tokenize_with_labels
    from bolt.train.modeling import load_model, pad_token_id
    from bolt.train.progress import TokenMeter
    from bolt.train.sft import build_dataset, make_collator, sft_progress
    from bolt.train.trainer import Dist, trainer_arguments

    cfg, dist = sft_config(spec), Dist.from_env()
    tokenizer = AutoTokenizer.from_pretrained(spec["model"])
    examples = [tokenize_with_labels(tokenizer, messages(c), cfg.max_length) for c in spec["convs"]]
    args = trainer_arguments(
        cfg,
        "cpu",
        out,
        dist,
        train_sampling_strategy="random",
        length_column_name="length",
    )
    meter = TokenMeter()
    dataset = build_dataset(examples, cfg.packing, cfg.max_length)
    trainer = Trainer(
        model=load_model(spec["model"], cfg.precision, "cpu"),
        args=args,
        train_dataset=dataset,
        data_collator=timer.count(make_collator(cfg.packing, pad_token_id(tokenizer), meter)),
        processing_class=tokenizer,
        callbacks=[sft_progress(meter, dist.world_size), timer],
    )
    return trainer, sorted(len(x) for x in dataset["input_ids"])


def trl(spec: dict, out: Path, timer, deepspeed: bool = True) -> tuple:
    import datasets
    from transformers import AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from bolt.train.modeling import load_model
    from bolt.train.trainer import Dist, trainer_arguments

    cfg = sft_config(spec)
    if not deepspeed:  # one device, no launcher: no process group, no DeepSpeed
        import os

        for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
            os.environ.pop(name, None)
    # "cpu" makes trainer_arguments start the CPU process group DeepSpeed needs.
    base = trainer_arguments(cfg, "cpu" if deepspeed else "plain", out, Dist.from_env())
    same = {k: v for k, v in base.to_dict().items() if k in SFTConfig.__dataclass_fields__}
    same |= {"deepspeed": base.deepspeed if deepspeed else None}
    same |= {"accelerator_config": {"use_configured_state": deepspeed}}
    args = SFTConfig(
        **same,
        max_length=cfg.max_length,
        packing=True,
        packing_strategy="bfd",
        padding_free=True,
        completion_only_loss=True,
        dataset_num_proc=None,
    )
    rows = [{"prompt": messages(c)[:1], "completion": messages(c)[1:]} for c in spec["convs"]]
    trainer = SFTTrainer(
        model=load_model(spec["model"], cfg.precision, "cpu"),
        args=args,
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=AutoTokenizer.from_pretrained(spec["model"]),
        callbacks=[timer],
    )
    trainer.data_collator = timer.count(trainer.data_collator)
    lengths = sorted(len(x) for x in trainer.train_dataset["input_ids"])
    return trainer, lengths


def child(side: str, spec: dict) -> dict:
    import time

    import torch

    torch.set_num_threads(spec["threads"])
    timer = step_timer()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        trainer, row_lengths = (
            ours(spec, Path(tmp), timer)
            if side == "ours"
            else trl(spec, Path(tmp), timer, deepspeed=side == "trl")
        )
        prepare_seconds = time.perf_counter() - started
        table = profile_step(trainer, spec["profile_step"]) if spec["profile"] else None
        with PeakRss() as memory:
            trainer.train()
    return {
        "side": side,
        **timer.figures(),
        "prepare_seconds": round(prepare_seconds, 2),
        "peak_rss_gib": memory.gib,
        "peak_rss_lifetime_gib": peak_rss_gib(),
        "packed_rows": len(row_lengths),
        "row_lengths": row_lengths,
        "losses": losses(trainer.state.log_history),
        "profile": table() if table else None,
    }


def compare(results: dict[str, list[dict]], profiles: dict[str, dict]) -> dict:
    ours_runs, trl_runs = results["ours"], results["trl"]
    ratios = [
        a["tokens_per_s"] / b["tokens_per_s"] for a, b in zip(ours_runs, trl_runs, strict=True)
    ]
    plain = [
        a["tokens_per_s"] / b["tokens_per_s"]
        for a, b in zip(ours_runs, results["trl_no_deepspeed"], strict=True)
    ]
    agreement = curve_agreement(ours_runs[0]["losses"], trl_runs[0]["losses"])
    same_rows = ours_runs[0]["row_lengths"] == trl_runs[0]["row_lengths"]
    return {
        "ratio_vs_trl": round(statistics.median(ratios), 3),
        "ratio_spread": spread(ratios),
        "ratio_vs_trl_no_deepspeed": round(statistics.median(plain), 3),
        "ratio_vs_trl_no_deepspeed_spread": spread(plain),
        "loss_agreement_vs_trl_no_deepspeed": curve_agreement(
            ours_runs[0]["losses"], results["trl_no_deepspeed"][0]["losses"]
        ),
        "tokens_per_s": {s: spread([r["tokens_per_s"] for r in results[s]]) for s in SIDES},
        "peak_rss_gib": {s: spread([r["peak_rss_gib"] for r in results[s]]) for s in SIDES},
        "loss_curves": {s: results[s][0]["losses"] for s in SIDES},
        "loss_agreement": agreement
        | {
            "tolerance_abs": LOSS_TOLERANCE,
            "within_tolerance": agreement.get("max_abs_diff", 1.0) <= LOSS_TOLERANCE,
            "same_packed_rows": same_rows,
        },
        "profile_one_step": {s: p["profile"] for s, p in profiles.items()},
        "profile_step_seconds": {s: p["step_seconds"] for s, p in profiles.items()},
        "runs": {
            s: [{k: v for k, v in r.items() if k != "row_lengths"} for r in results[s]]
            for s in SIDES
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=64)
    parser.add_argument("--median-words", type=int, default=150)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--micro-batch", type=int, default=2)
    parser.add_argument("--global-batch", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--no-gradient-checkpointing", action="store_true")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--child", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, json.loads(Path(args.spec).read_text()))))
        return
    shape = {
        "hidden": args.hidden,
        "intermediate": 3 * args.hidden,
        "layers": args.layers,
        "heads": max(1, args.hidden // 64),
        "kv_heads": max(1, args.hidden // 128),
    }
    with tempfile.TemporaryDirectory() as tmp:
        spec = {
            "model": str(tiny_llama(Path(tmp) / "model", shape, args.seed)),
            "convs": conversations(args.examples, args.median_words, args.seed),
            "lr": args.lr,
            "global_batch": args.global_batch,
            "micro_batch": args.micro_batch,
            "max_length": args.max_length,
            "gradient_checkpointing": not args.no_gradient_checkpointing,
            "seed": args.seed,
            "threads": args.threads,
            "profile": False,
            "profile_step": 3,
        }
        spec_file = Path(tmp) / "spec.json"
        spec_file.write_text(json.dumps(spec))
        before = load()
        results = alternate(
            SIDES,
            args.repeats,
            lambda side, _: run_child(__file__, side, spec_file, args.threads, 1800),
        )
        profiles = {}
        if not args.no_profile:
            (Path(tmp) / "profile.json").write_text(json.dumps(spec | {"profile": True}))
            for side in SIDES[:2]:
                profiles[side] = run_child(
                    __file__, side, Path(tmp) / "profile.json", args.threads, 1800
                )
        after = load()
    report(args, shape, spec, results, profiles, before, after)


def report(args, shape, spec, results, profiles, before, after) -> None:
    figures = compare(results, profiles)
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        **{k: figures[k] for k in ("ratio_vs_trl", "ratio_spread", "tokens_per_s", "peak_rss_gib")},
        "goal": ">= 1.0",
        "load": {"before": before, "after": after},
        "settings": {k: v for k, v in spec.items() if k not in {"convs", "model"}}
        | {"examples": args.examples, "median_words": args.median_words, "repeats": args.repeats},
        "model": f"random Llama {shape} with SmolLM2's tokenizer (vocab 49152), fp32, sdpa",
        "ours": "bolt.train.sft path: tokenize_with_labels, best-fit packing, per-row "
        "position ids, trainer_arguments (DeepSpeed ZeRO-2, 1 CPU process), HF Trainer",
        "trl": "trl.SFTTrainer: packing bfd, padding_free (flattened row), completion-only "
        "loss on conversational prompt/completion, the same TrainingArguments",
        **{k: v for k, v in figures.items() if k not in result_keys()},
        "machine": platform.platform(),
    }
    tok = figures["tokens_per_s"]
    summary = (
        f"ours {tok['ours']['median']} vs TRL SFTTrainer {tok['trl']['median']} tok/s: "
        f"**ratio_vs_trl {figures['ratio_vs_trl']}** (spread {figures['ratio_spread']['min']}-"
        f"{figures['ratio_spread']['max']}, {args.repeats} alternating repeats, load "
        f"{before['load1']:.1f}/{after['load1']:.1f} on {before['cpus']} CPUs); peak RSS "
        f"{figures['peak_rss_gib']['ours']['median']} / {figures['peak_rss_gib']['trl']['median']} GiB; "
        f"loss curves max |diff| {figures['loss_agreement'].get('max_abs_diff')}"
    )
    command = shlex.join(["python", "bench/sft_vs_trl.py", *sys.argv[1:]])
    write_result("sft_vs_trl", result, summary, command)
    print(summary)


def result_keys() -> set[str]:
    return {"ratio_vs_trl", "ratio_spread", "tokens_per_s", "peak_rss_gib"}


if __name__ == "__main__":
    main()
