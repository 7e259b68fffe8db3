"""Judge cost: tokens per item of the local checklist judge against the API judge's prompt,
and what a cached rerun of the API judge costs.

On the same WildBench items and answers (``data/evals/wildbench.handmade.jsonl``, each with its
own checklist), the local checklist judge (SmolLM2-135M on the CPU, RocketEval-style:
one prompt per checklist question, one next-token distribution read per prompt) and
the API judge (WildBench's score.v2 prompt, sent to a real OpenAI-compatible HTTP
server serving SmolLM2, ``tests/openai_stub_server.py``) grade every item. Reported:
prompt and output tokens per item for each judge (both counted with SmolLM2's
tokenizer, so the two are comparable; a hosted judge's tokenizer differs by a few
percent), the dollar cost of the API judge at the paper config's gpt-4o prices, and
a rerun over the same reply cache: calls, new tokens, dollars and wall time. The
server caps outputs at ``--max-output`` tokens; the per-item output figure of the API
judge is also given at WildBench's typical judge output (``TYPICAL_API_OUTPUT``).
MT-Bench's 80 x 2 judge prompts are tokenized too (no call) for their prompt size.

    .venv/bin/python bench/judge_cost.py [--items 5] [--max-output 24]
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import write_result

USD_PER_1K_INPUT, USD_PER_1K_OUTPUT = 0.005, 0.015  # configs/paper-8b.yaml (gpt-4o)
TYPICAL_API_OUTPUT = 350  # tokens: strengths + weaknesses + score JSON of score.v2
ANSWER = (
    "Here is a short answer. First, restate the request. Second, give the main point "
    "with one example. Finally, summarise the answer in one sentence."
)


def _answers(items: list) -> list:
    """The same short answer to every item: the judges' cost, not the answer, is measured."""
    from bolt.records import EvalAnswer

    return [
        EvalAnswer(
            benchmark="wildbench",
            item_id=i.session_id,
            model="m",
            turns=[ANSWER],
            finish_reasons=["stop"],
            prompt_tokens=0,
            output_tokens=0,
        )
        for i in items
    ]


def _api_runs(model_path: str, items: list, answers: list, max_output: int) -> dict:
    """The API judge against a real HTTP server, then again over the same reply cache."""
    from bolt.config import EngineConfig, EngineKind, SamplingConfig
    from bolt.engines.openai_engine import OpenAIEngine, RetryPolicy
    from bolt.evals import Benchmark
    from bolt.evals.judges import ApiJudge, JudgeUsage, ReplyCache
    from bolt.evals.judging import grade
    from bolt.evals.spec import JudgingContext
    from tests.conftest import free_port
    from tests.openai_stub_server import StubServer

    sampling = SamplingConfig(n=1, temperature=0.0, max_new_tokens=max_output)
    with (
        tempfile.TemporaryDirectory() as cache,
        StubServer(model_path, free_port(), max_output) as server,
    ):
        engine_cfg = EngineConfig(kind=EngineKind.openai, base_url=server.base_url, max_retries=2)

        def api_run() -> tuple[JudgeUsage, float]:
            engine = OpenAIEngine(engine_cfg, "smollm2", policy=RetryPolicy(2, base_s=0.05))
            usage = JudgeUsage(
                usd_per_1k_input=USD_PER_1K_INPUT, usd_per_1k_output=USD_PER_1K_OUTPUT
            )
            judge = ApiJudge(engine, ReplyCache(Path(cache)), sampling, concurrency=2, usage=usage)
            t0 = time.perf_counter()
            grade(Benchmark.wildbench, items, answers, JudgingContext("m", judge, True))
            return usage, time.perf_counter() - t0

        first, first_seconds = api_run()
        calls_before = server.state.calls
        rerun, rerun_seconds = api_run()
        rerun_server_calls = server.state.calls - calls_before
    return {
        "first": first,
        "first_seconds": first_seconds,
        "rerun": rerun,
        "rerun_seconds": rerun_seconds,
        "rerun_server_calls": rerun_server_calls,
    }


def _mt_bench_prompt_tokens(tokenizer) -> list[int]:
    """The size of MT-Bench's 80 x 2 judge prompts (tokenized, not sent)."""
    from bolt.evals import mt_bench

    prompts = mt_bench.load_judge_prompts()
    tokens = []
    for q in mt_bench.load_questions():
        for turn in (1, 2):
            system, user = mt_bench.render_judge_prompt(
                prompts[mt_bench.judge_prompt_name(q.category, turn)], q, (ANSWER, ANSWER), turn
            )
            text = tokenizer.apply_chat_template(
                [{"role": "system", "content": system}, {"role": "user", "content": user}],
                tokenize=False,
                add_generation_prompt=True,
            )
            tokens.append(len(tokenizer.encode(text, add_special_tokens=False)))
    return tokens


def _api_result(api: dict, n: int) -> dict:
    first, rerun = api["first"], api["rerun"]
    api_prompt = first.prompt_tokens / n
    return {
        "prompt_tokens_per_item": round(api_prompt, 1),
        "output_tokens_per_item_capped": round(first.output_tokens / n, 1),
        "output_tokens_per_item_typical": TYPICAL_API_OUTPUT,
        "usd_per_item_at_gpt4o_prices_typical_output": round(
            (api_prompt * USD_PER_1K_INPUT + TYPICAL_API_OUTPUT * USD_PER_1K_OUTPUT) / 1000, 5
        ),
        "first_run": first.as_dict() | {"seconds": round(api["first_seconds"], 2)},
        "cached_rerun": rerun.as_dict()
        | {"seconds": round(api["rerun_seconds"], 3), "server_calls": api["rerun_server_calls"]},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=5)
    parser.add_argument("--max-output", type=int, default=24)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    from bolt.config_loader import load_config
    from bolt.evals import Benchmark
    from bolt.evals.data import load_items
    from bolt.evals.judges import make_judge
    from bolt.evals.judging import grade
    from bolt.evals.spec import JudgingContext
    from bolt.models import prepare_model

    cfg = load_config(REPO / "configs/tiny-cpu.yaml")
    model_path = str(prepare_model(cfg.models, "smollm2-135m-instruct"))
    items = load_items(
        Benchmark.wildbench, str(REPO / "data/evals/wildbench.handmade.jsonl"), args.items
    )
    answers = _answers(items)
    n = len(items)

    local = make_judge(cfg)  # no checklist writer needed: WildBench items carry checklists
    started = time.perf_counter()
    grade(Benchmark.wildbench, items, answers, JudgingContext("m", local, True))
    local_seconds = time.perf_counter() - started
    api = _api_runs(model_path, items, answers, args.max_output)
    mt_tokens = _mt_bench_prompt_tokens(local.reward.tokenizer)

    api_prompt = api["first"].prompt_tokens / n
    local_prompt = local.usage.prompt_tokens / n
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "local_over_api_prompt_tokens": round(local_prompt / api_prompt, 3),
        "items": n,
        "local_checklist": {
            "prompt_tokens_per_item": round(local_prompt, 1),
            "output_tokens_per_item": round(local.usage.output_tokens / n, 2),
            "checklist_questions_per_item": round(sum(len(i.checklist) for i in items) / n, 2),
            "seconds_per_item_cpu": round(local_seconds / n, 3),
            "usd": 0.0,
        },
        "api": _api_result(api, n),
        "mt_bench_api_prompt_tokens": {
            "judgements": len(mt_tokens),
            "mean": round(sum(mt_tokens) / len(mt_tokens), 1),
            "max": max(mt_tokens),
        },
        "machine": platform.platform(),
        "tokenizer": "SmolLM2-135M-Instruct (both judges)",
    }
    rerun = api["rerun"]
    summary = (
        f"WildBench, {n} items: local checklist judge {local_prompt:.0f} prompt tok/item "
        f"({result['local_checklist']['output_tokens_per_item']} read-outs), API judge prompt "
        f"{api_prompt:.0f} tok/item; cached rerun: {rerun.calls} calls, "
        f"{rerun.prompt_tokens + rerun.output_tokens} new tokens, ${rerun.usd:.4f}"
    )
    write_result("judge_cost", result, summary, "python bench/judge_cost.py")
    print(summary)


if __name__ == "__main__":
    main()
