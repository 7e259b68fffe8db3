"""SFT throughput: packing (padding-free rows, per-example positions) against padding
each micro-batch to its longest sequence, in one run on the same examples and model.

Counts trained non-pad tokens per second (forward, backward and AdamW step) and the
peak resident memory of each mode. The lengths follow the bootstrapped set: the SFT
examples of a committed ``filter`` stage in ``--store`` (tokenised with the chat
template), or, without one, the shape of bootstrapped LongCoT answers (log-normal, median
~250 tokens, a long tail; as in bench/reward_batching.py). Both modes use the trainer's
own collators (``bolt.train.data``); the padded mode draws micro-batches in random order,
as the trainer does when packing is off and lengths are not grouped.

The model is SmolLM2-135M-Instruct's architecture cut to ``--layers`` layers with random
weights (the ratio of the two modes is what is measured; a full model on a 2-core CPU
would take an hour for the same figure); ``--layers 30`` is the real depth.

    .venv/bin/python bench/sft_packing.py [--examples 32] [--max-length 1024] [--layers 4]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shlex
import statistics
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Self

from common import write_result

from bolt.train.data import (
    IGNORE_INDEX,
    TokenizedExample,
    collate_packed,
    collate_padded,
    input_tokens,
    pack_examples,
)


def lognormal_lengths(n: int, median: int, sigma: float, seed: int, max_length: int) -> list[int]:
    import numpy as np

    rng = np.random.default_rng(seed)
    return [int(x) for x in np.clip(rng.lognormal(np.log(median), sigma, n), 16, max_length)]


def store_lengths(root: str, tokenizer, max_length: int) -> list[int]:
    """Token lengths of the newest committed SFT set under ``root``."""
    from bolt.config import StorageConfig
    from bolt.records import SftExample
    from bolt.store import ArtifactStore
    from bolt.train.data import tokenize_with_labels

    store = ArtifactStore.from_config(StorageConfig(root=root))
    manifests = store.list_manifests("filter")
    if not manifests:
        raise SystemExit(f"no committed filter stage under {root}")
    return [
        len(tokenize_with_labels(tokenizer, [m.model_dump() for m in r.messages], max_length))
        for r in store.read_records(manifests[-1], SftExample)
    ]


def synthetic_examples(lengths: list[int], vocab: int, seed: int) -> list[TokenizedExample]:
    """Token rows of the given lengths; the first quarter of each is the (unlearned) prompt."""
    rng = random.Random(seed)
    examples = []
    for n in lengths:
        ids = [rng.randrange(3, vocab) for _ in range(n)]
        prompt = n // 4
        examples.append(TokenizedExample(ids, [IGNORE_INDEX] * prompt + ids[prompt:]))
    return examples


class PeakRss:
    """Peak resident memory while the block runs, sampled every 5 ms from /proc (the
    process-lifetime maximum of getrusage could not tell the two modes apart)."""

    def __enter__(self) -> Self:
        self.peak, self.running = 0, True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while self.running:
            with open("/proc/self/statm") as f:
                self.peak = max(self.peak, int(f.read().split()[1]) * page)
            time.sleep(0.005)

    def __exit__(self, *exc) -> None:
        self.running = False
        self.thread.join()

    @property
    def gib(self) -> float:
        return round(self.peak / 1024**3, 3)


def run_mode(model, batches: list[dict]) -> dict:
    """Train on every batch once; tokens/s over non-pad input tokens."""
    import torch

    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    tokens, started = 0, time.perf_counter()
    with PeakRss() as memory:
        for rows, batch in batches:
            model(**batch).loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            tokens += input_tokens(rows)
    seconds = time.perf_counter() - started
    return {
        "tokens": tokens,
        "seconds": round(seconds, 2),
        "tokens_per_s": round(tokens / seconds, 1),
        "steps": len(batches),
        "peak_rss_gib": memory.gib,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--micro-batch", type=int, default=4)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--store", help="A storage root with a committed filter stage.")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from bolt.config_loader import load_config
    from bolt.models import prepare_model

    torch.manual_seed(args.seed)
    model_dir = prepare_model(load_config("configs/tiny-cpu.yaml").models, "smollm2-135m-instruct")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    config = AutoConfig.from_pretrained(model_dir, num_hidden_layers=args.layers, use_cache=False)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa").train()

    if args.store:
        lengths, source = store_lengths(args.store, tokenizer, args.max_length), args.store
    else:
        lengths = lognormal_lengths(args.examples, 250, 0.8, args.seed, args.max_length)
        source = "log-normal, median 250 tokens, sigma 0.8 (bootstrapped LongCoT shape)"
    examples = synthetic_examples(lengths, config.vocab_size, args.seed)

    shuffled = random.Random(args.seed).sample(range(len(examples)), len(examples))
    rows = [{"input_ids": examples[i].input_ids, "labels": examples[i].labels} for i in shuffled]
    mb = args.micro_batch
    pad = tokenizer.pad_token_id
    padded = [
        (rows[i : i + mb], collate_padded(rows[i : i + mb], pad)) for i in range(0, len(rows), mb)
    ]
    # The same micro-batch size in sequences of max_length: rows of packed examples.
    packed_rows = pack_examples(examples, args.max_length)
    packed = [
        (packed_rows[i : i + mb], collate_packed(packed_rows[i : i + mb], pad))
        for i in range(0, len(packed_rows), mb)
    ]

    run_mode(model, padded[:1])  # warm-up (allocator, optimizer states), not measured
    packing = run_mode(model, packed)
    padding = run_mode(model, padded)
    speedup = round(packing["tokens_per_s"] / padding["tokens_per_s"], 2)
    padded_positions = sum(int(b["input_ids"].numel()) for _, b in padded)
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "speedup": speedup,
        "packing": packing,
        "padding_to_longest": padding,
        "pad_fraction_padded": round(1 - padding["tokens"] / padded_positions, 3),
        "examples": len(examples),
        "median_length": statistics.median(lengths),
        "max_length": args.max_length,
        "micro_batch": mb,
        "length_source": source,
        "model": f"SmolLM2-135M architecture, {args.layers} layers, random weights, fp32, sdpa",
        "threads": torch.get_num_threads(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
    }
    summary = (
        f"packing {packing['tokens_per_s']} vs padding {padding['tokens_per_s']} "
        f"tok/s: **{speedup}x** (peak RSS {packing['peak_rss_gib']} / "
        f"{padding['peak_rss_gib']} GiB)"
    )
    command = shlex.join(["python", "bench/sft_packing.py", *sys.argv[1:]])
    write_result("sft_packing", result, summary, command)
    print(summary)


if __name__ == "__main__":
    main()
