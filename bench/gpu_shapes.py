"""SFT and DPO training throughput and MFU at the paper's shapes on one accelerator.

Random-initialised Llama models built from a ``LlamaConfig`` (nothing is downloaded): the
largest Llama shape whose full fine-tuning state fits one device, computed before
anything is allocated (bf16 mixed precision as the HF Trainer runs it without DeepSpeed:
fp32 weights, fp32 gradients, fp32 AdamW moments = 16 bytes/param, plus the bf16 weight
copies autocast keeps, activations under activation checkpointing and the logits), then
verified by running it (an out-of-memory falls back to the next smaller shape).

SFT runs packing as the pipeline runs it (``bolt.train.data.pack_examples`` and
``collate_packed``: best-fit rows of at most ``--max-length`` tokens, per-example position
ids, no attention mask), DPO a chosen+rejected padded batch with precomputed reference
log-probs (``bolt.train.dpo_loss`` when importable). Gradient checkpointing is on, as
configured (``TrainCommon.gradient_checkpointing``). Each figure is printed beside the
device's peak dense bf16 FLOP/s and beside torchtitan's published Llama-3.1-8B figures.
Generation throughput is a computed roofline (weight bytes / memory bandwidth per decode
step), labelled as computed: vLLM is not on the measuring machine.

Plain torch + transformers only (no vLLM, no DeepSpeed, no network).

    python bench/gpu_shapes.py                      # one GPU, < 8 minutes
    python bench/gpu_shapes.py --device cpu --tiny  # the CPU check with tiny shapes
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import random
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

# bolt.train.data and the sibling modules, however the script is started.
sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]


from gpu_roofline import (
    LARGEST_FIRST,
    PAPER_SHAPES,
    PUBLISHED,
    SHAPES,
    TINY_FIRST,
    device_spec,
    fits,
    flops_per_token,
    memory_estimate,
    param_count,
    roofline,
)

try:
    from common import write_result
except ImportError:  # pragma: no cover - the script travels without bench/ on the path
    write_result = None


def llama(shape: dict, device: str, dtype):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=shape["vocab"],
        hidden_size=shape["hidden"],
        intermediate_size=shape["ffn"],
        num_hidden_layers=shape["layers"],
        num_attention_heads=shape["heads"],
        num_key_value_heads=shape["kv_heads"],
        max_position_embeddings=131072,
        rope_theta=500000.0,
        tie_word_embeddings=shape["tied"],
        use_cache=False,
    )
    with torch.device(device):
        model = LlamaForCausalLM._from_config(
            config, attn_implementation=attention(device), dtype=dtype
        )
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return model.train()


def attention(device: str) -> str:
    """As ``bolt.train.modeling.load_model``: flash attention on CUDA where installed."""
    if device.startswith("cuda"):
        from transformers.utils import is_flash_attn_2_available

        if is_flash_attn_2_available():
            return "flash_attention_2"
    return "sdpa"


def lengths(rng: random.Random, count: int, median: int, max_length: int) -> list[int]:
    return [
        int(min(max_length, max(16, rng.lognormvariate(0, 0.8) * median))) for _ in range(count)
    ]


def sft_batches(shape, args, rng) -> list[list[dict]]:
    """Micro-batches of packed rows (the pipeline's packing), enough for every step."""
    from bolt.train.data import IGNORE_INDEX, TokenizedExample, pack_examples

    rows: list[dict] = []
    need = (args.warmup + args.steps) * args.accumulation * args.micro_batch
    while len(rows) < need:
        examples = []
        for n in lengths(rng, 64, args.median_length, args.max_length):
            ids = [rng.randrange(3, shape["vocab"]) for _ in range(n)]
            prompt = n // 8
            examples.append(TokenizedExample(ids, [IGNORE_INDEX] * prompt + ids[prompt:]))
        rows += pack_examples(examples, args.max_length)
    mb = args.micro_batch
    return [rows[i : i + mb] for i in range(0, need, mb)]


def attended(rows: list[dict]) -> float:
    """Sum over examples of their squared length, over all tokens: the mean context a
    token attends to (block-diagonal attention), for the attention FLOPs."""
    total, squares = 0, 0
    for row in rows:
        positions = row.get("position_ids") or [0] + [1] * (len(row["input_ids"]) - 1)
        starts = [i for i, p in enumerate(positions) if p == 0] + [len(positions)]
        for a, b in itertools.pairwise(starts):
            squares += (b - a) ** 2
            total += b - a
    return squares / max(total, 1)


def train_steps(model, micro_batches, args, device, loss_fn) -> dict:
    """``args.warmup`` then ``args.steps`` optimizer steps of ``args.accumulation``
    micro-batches; tokens/s and step seconds over the measured steps."""
    import torch

    on_cuda = device.startswith("cuda")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=on_cuda)
    sync = torch.cuda.synchronize if on_cuda else (lambda: None)
    autocast = torch.autocast(
        device_type="cuda" if on_cuda else "cpu", dtype=torch.bfloat16, enabled=on_cuda
    )
    step_seconds, tokens, context = [], 0, []
    it = iter(micro_batches)
    for step in range(args.warmup + args.steps):
        sync()
        started = time.perf_counter()
        step_tokens = 0
        for _ in range(args.accumulation):
            rows = next(it)
            with autocast:
                loss = loss_fn(model, rows, device) / args.accumulation
            loss.backward()
            step_tokens += sum(len(r["input_ids"]) for r in rows)
            context.append(attended(rows))
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        sync()
        if step >= args.warmup:
            step_seconds.append(time.perf_counter() - started)
            tokens += step_tokens
    seconds = sum(step_seconds)
    return {
        "steps_measured": len(step_seconds),
        "tokens": tokens,
        "tokens_per_s": round(tokens / seconds, 1),
        "step_seconds": round(seconds / len(step_seconds), 4),
        "mean_attended_context": round(sum(context) / len(context), 1),
        "final_loss": round(float(loss.detach()) * args.accumulation, 4),
    }


def sft_loss(model, rows, device):
    from bolt.train.data import collate_packed

    batch = {k: v.to(device) for k, v in collate_packed(rows, 0).items()}
    return model(**batch).loss


def dpo_pairs(shape, args, rng) -> list[list[dict]]:
    need = (args.warmup + args.steps) * args.accumulation
    out = []
    for _ in range(need):
        chunk = []
        for _ in range(args.micro_batch):
            prompt = [
                rng.randrange(3, shape["vocab"]) for _ in range(max(8, args.median_length // 8))
            ]
            sides = [
                [rng.randrange(3, shape["vocab"]) for _ in range(n)]
                for n in lengths(rng, 2, args.median_length, args.max_length - len(prompt))
            ]
            chunk += [{"input_ids": prompt + s, "prompt": len(prompt)} for s in sides]
        out.append(chunk)  # chosen/rejected interleaved; reordered in dpo_step_loss
    return out


def dpo_step_loss(model, rows, device):
    """The pipeline's DPO step on cached reference log-probs: one forward over the chosen
    rows then the rejected rows, right-padded with an attention mask."""
    import torch

    try:
        from bolt.train.dpo_loss import dpo_loss, sequence_logps
    except ImportError:  # pydantic absent on the measuring machine
        from gpu_roofline import dpo_loss, sequence_logps
    ordered = rows[0::2] + rows[1::2]
    longest = max(len(r["input_ids"]) for r in ordered)
    ids = torch.zeros((len(ordered), longest), dtype=torch.long)
    attn = torch.zeros_like(ids)
    mask = torch.zeros_like(ids, dtype=torch.bool)
    for i, r in enumerate(ordered):
        n = len(r["input_ids"])
        ids[i, :n], attn[i, :n], mask[i, r["prompt"] : n] = torch.tensor(r["input_ids"]), 1, True
    ids, attn, mask = ids.to(device), attn.to(device), mask.to(device)
    logps = sequence_logps(model(input_ids=ids, attention_mask=attn).logits, ids, mask)
    half = logps.shape[0] // 2
    ref = logps.detach() - 0.01  # stands in for the cached reference pass
    return dpo_loss(logps[:half], logps[half:], ref[:half], ref[half:]).losses.mean()


def measure(shape_name: str, args, spec) -> dict:
    import torch

    shape = SHAPES[shape_name]
    rng = random.Random(args.seed)
    torch.manual_seed(args.seed)
    dtype = torch.float32  # fp32 master weights; bf16 compute under autocast
    started = time.perf_counter()
    model = llama(shape, args.device, dtype)
    build_seconds = time.perf_counter() - started
    out = {
        "shape": shape_name,
        "params": param_count(shape),
        "build_seconds": round(build_seconds, 1),
    }
    for task, batches, loss_fn in (
        ("sft", sft_batches(shape, args, rng), sft_loss),
        ("dpo", dpo_pairs(shape, args, rng), dpo_step_loss),
    ):
        if args.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        figures = train_steps(model, batches, args, args.device, loss_fn)
        per_token = flops_per_token(shape, figures["mean_attended_context"])
        achieved = figures["tokens_per_s"] * per_token
        figures |= {
            "model_flops_per_token": per_token,
            "achieved_tflops": round(achieved / 1e12, 2),
            "mfu": round(achieved / spec["bf16_flops"], 4) if spec["bf16_flops"] else None,
            "hfu_with_recompute": round(achieved * 4 / 3 / spec["bf16_flops"], 4)
            if spec["bf16_flops"]
            else None,
        }
        if args.device.startswith("cuda"):
            figures["peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        out[task] = figures
        print(f"  {shape_name} {task}: {json.dumps(figures)}", file=sys.stderr, flush=True)
    del model
    return out


def device_facts(device: str) -> tuple[dict, int]:
    import torch

    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(torch.device(device))
        return device_spec(props.name), props.total_memory
    import os

    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return device_spec(f"CPU ({platform.processor() or platform.machine()})"), total


def choose(args, device_bytes: int) -> tuple[list[str], dict]:
    """Shapes to try, largest first, from the largest whose estimate fits; and why."""
    names = TINY_FIRST if args.tiny else LARGEST_FIRST
    tokens = max(args.micro_batch * args.max_length, 2 * args.micro_batch * args.max_length)
    verdicts = {}
    for name in names:
        estimate = memory_estimate(SHAPES[name], tokens)
        verdicts[name] = {
            "params": param_count(SHAPES[name]),
            "estimate_gib": round(estimate["total"] / 2**30, 1),
            "states_gib": round(estimate["states"] / 2**30, 1),
            "fits": fits(SHAPES[name], tokens, device_bytes),
        }
    fitting = [n for n in names if verdicts[n]["fits"]]
    return (fitting if not args.shape else [args.shape]), verdicts


def run(args) -> dict:
    import torch

    spec, device_bytes = device_facts(args.device)
    candidates, verdicts = choose(args, device_bytes)
    measured, errors = None, {}
    for name in candidates:
        try:
            measured = measure(name, args, spec)
            break
        except torch.OutOfMemoryError as error:  # the estimate was optimistic: next shape
            errors[name] = str(error).splitlines()[0]
            torch.cuda.empty_cache()
    if measured is None:
        raise SystemExit(f"no shape could be trained on {spec['name']}: {errors or verdicts}")
    shape = SHAPES[measured["shape"]]
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": spec,
        "device_memory_gib": round(device_bytes / 2**30, 1),
        "tested_on": "CPU with tiny shapes: GPU figures pending" if args.tiny else spec["name"],
        "gpu_command": "python bench/gpu_shapes.py   (one accelerator, < 8 minutes)",
        "shape": measured["shape"],
        "why_this_shape": "the largest whose full fine-tuning state (16 bytes/param: fp32 weights, "
        "grads, AdamW m and v; + bf16 autocast copies, checkpointed activations, logits) fits "
        f"{int(100 * 0.9)}% of the device's memory",
        "shape_estimates": verdicts,
        "out_of_memory": errors,
        "paper_shapes": {n: verdicts.get(n) for n in PAPER_SHAPES},
        "settings": {k: v for k, v in vars(args).items() if k not in {"out", "no_benchmarks_line"}},
        "precision": "bf16 autocast, fp32 master weights and AdamW states (fused on CUDA), "
        "activation checkpointing (non-reentrant), attention " + attention(args.device),
        "sft": measured["sft"],
        "dpo": measured["dpo"],
        "params": measured["params"],
        "published": PUBLISHED,
        "generation_roofline_computed": roofline(shape, spec),
        "torch": torch.__version__,
        "transformers": __import__("transformers").__version__,
    }


def table(result: dict) -> str:
    peak = result["device"]["bf16_flops"]
    lines = [
        (
            f"device {result['device']['name']} (peak dense bf16 {peak / 1e12 if peak else 'n/a'} TFLOP/s), "
            f"shape {result['shape']} ({result['params'] / 1e9:.2f}B params), tested on {result['tested_on']}"
        ),
        f"{'task':<5} {'tok/s':>10} {'TFLOP/s':>9} {'MFU':>7} {'step s':>8}   published (torchtitan 8B, H100)",
    ]
    for task in ("sft", "dpo"):
        f = result[task]
        mfu = f"{f['mfu']:.1%}" if f["mfu"] is not None else "n/a"
        lines.append(
            f"{task:<5} {f['tokens_per_s']:>10} {f['achieved_tflops']:>9} {mfu:>7} {f['step_seconds']:>8}   "
            f"{PUBLISHED['tokens_per_s_per_gpu']} tok/s/GPU, MFU 33-39%"
        )
    roof = result["generation_roofline_computed"]
    if "tokens_per_s" in roof:
        lines.append(
            f"decode roofline (COMPUTED, not measured): {roof['tokens_per_s']} tok/s by batch size"
        )
    return "\n".join(lines)


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="Tiny shapes (the CPU check).")
    parser.add_argument("--shape", choices=sorted(SHAPES), help="Force one shape.")
    parser.add_argument("--max-length", type=int, default=8192)
    parser.add_argument("--median-length", type=int, default=1500, help="Median example tokens.")
    parser.add_argument(
        "--micro-batch", type=int, default=1, help="Packed rows (SFT) / pairs (DPO)."
    )
    parser.add_argument("--accumulation", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="Write the JSON here instead of bench/results/.")
    parser.add_argument("--no-benchmarks-line", action="store_true")
    args = parser.parse_args()
    if args.tiny and "--max-length" not in sys.argv:
        args.max_length, args.median_length, args.steps, args.warmup = 256, 60, 2, 1
    return args


def main() -> None:
    args = parse()
    started = time.perf_counter()
    result = run(args)
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    print(table(result))
    sft, dpo = result["sft"], result["dpo"]
    pct = lambda v: f"{v:.1%}" if v is not None else "n/a"
    summary = (
        f"{result['shape']} on {result['device']['name']}: SFT {sft['tokens_per_s']} tok/s "
        f"(MFU {pct(sft['mfu'])}), DPO {dpo['tokens_per_s']} tok/s (MFU {pct(dpo['mfu'])}); "
        f"torchtitan 8B/H100: 5762 tok/s/GPU, MFU 33-39%"
    )
    if args.tiny:
        summary = (
            "**GPU figures pending** (no accelerator lent yet); CPU check with tiny shapes ran: "
            + summary
        )
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    elif write_result is not None and not args.no_benchmarks_line:
        write_result(
            "gpu_shapes",
            result,
            summary,
            shlex.join(["python", "bench/gpu_shapes.py", *sys.argv[1:]]),
        )
    print(summary)


if __name__ == "__main__":
    main()
