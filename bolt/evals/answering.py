"""Answer generation for each benchmark, with each benchmark's usual settings.

- MT-Bench (FastChat ``gen_model_answer.py``): two turns, the second asked after the
  model's first answer; temperature by category (``temperature_config`` of
  ``llm_judge/common.py``). A LongCoT model's first answer goes back into the
  conversation without its thoughts, as reasoning models' chat templates do.
- Arena-Hard (``gen_answer.py``, v0.1) and WildBench (``run_scripts``): greedy, the
  conversation as given.
- ZebraLogic (ZeroEval ``zebra_grid`` template): greedy, a one-shot example and a JSON
  solution template.
- MATH500: greedy, "reason step by step, and put your final answer within \\boxed{}".

The output limit and engine seed come from ``eval.sampling``; temperatures are the
benchmark's own.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, assert_never

from bolt.config import SamplingConfig
from bolt.engines.base import ChatRequest, Completion, Engine, Messages
from bolt.evals import Benchmark
from bolt.evals.data import item_id
from bolt.longcot import strip_thoughts
from bolt.prompts import render_template
from bolt.records import EvalAnswer

# FastChat llm_judge/common.py temperature_config (MT-Bench answer generation).
MT_BENCH_TEMPERATURE = {
    "writing": 0.7,
    "roleplay": 0.7,
    "extraction": 0.0,
    "math": 0.0,
    "coding": 0.0,
    "reasoning": 0.0,
    "stem": 0.1,
    "humanities": 0.1,
}
GREEDY = 0.0


def zebra_json_template(solution_header: Sequence[str], houses: int) -> str:
    """ZeroEval's answer template: reasoning, then one blank per house and attribute."""
    row = {column: "___" for column in solution_header[1:]}
    template = {"reasoning": "___", "solution": {f"House {i}": row for i in range(1, houses + 1)}}
    return json.dumps(template, indent=4)


def first_turn_messages(benchmark: Benchmark, item: Any) -> Messages:
    """The chat the model answers (its first turn for MT-Bench)."""
    match benchmark:
        case Benchmark.mt_bench:
            return [{"role": "user", "content": item.turns[0]}]
        case Benchmark.arena_hard:
            return [{"role": "user", "content": item.prompt}]
        case Benchmark.wildbench:
            return [{"role": t.role, "content": t.content} for t in item.conversation_input]
        case Benchmark.zebralogic:
            template = zebra_json_template(item.solution.header, len(item.solution.rows))
            content = render_template(
                "evals/zebralogic_user.j2", puzzle=item.puzzle, json_template=template
            )
            return [{"role": "user", "content": content}]
        case Benchmark.math500:
            return [
                {
                    "role": "user",
                    "content": render_template("evals/math500_user.j2", problem=item.problem),
                }
            ]
        case _:
            assert_never(benchmark)


def temperature(benchmark: Benchmark, item: Any) -> float:
    if benchmark is Benchmark.mt_bench:
        return MT_BENCH_TEMPERATURE.get(item.category, 0.7)  # FastChat's default for others
    return GREEDY


def _generate_by_temperature(
    engine: Engine, requests: list[tuple[ChatRequest, float]], sampling: SamplingConfig
) -> dict[str, Completion]:
    """One engine call per temperature (a call takes one sampling config); by request id."""
    groups: dict[float, list[ChatRequest]] = defaultdict(list)
    for request, temp in requests:
        groups[temp].append(request)
    out: dict[str, Completion] = {}
    for temp, group in sorted(groups.items()):
        settings = sampling.model_copy(update={"n": 1, "temperature": temp})
        for request, samples in zip(group, engine.generate(group, settings), strict=True):
            out[request.id] = samples[0]
    return out


def answer_items(
    benchmark: Benchmark, items: Sequence[Any], engine: Engine, sampling: SamplingConfig, model: str
) -> list[EvalAnswer]:
    """The model's answers to ``items``, in order (two turns each for MT-Bench)."""
    ids = [item_id(benchmark, item) for item in items]
    firsts = _generate_by_temperature(
        engine,
        [
            (
                ChatRequest(id=i, messages=first_turn_messages(benchmark, item)),
                temperature(benchmark, item),
            )
            for i, item in zip(ids, items, strict=True)
        ],
        sampling,
    )
    seconds: dict[str, Completion] = {}
    if benchmark is Benchmark.mt_bench:
        follow_ups = []
        for i, item in zip(ids, items, strict=True):
            history = first_turn_messages(benchmark, item) + [
                {"role": "assistant", "content": strip_thoughts(firsts[i].text)},
                {"role": "user", "content": item.turns[1]},
            ]
            follow_ups.append((ChatRequest(id=i, messages=history), temperature(benchmark, item)))
        seconds = _generate_by_temperature(engine, follow_ups, sampling)
    answers = []
    for i in ids:
        completions = [firsts[i]] + ([seconds[i]] if i in seconds else [])
        answers.append(
            EvalAnswer(
                benchmark=benchmark.value,
                item_id=i,
                model=model,
                turns=[c.text for c in completions],
                finish_reasons=[c.finish_reason for c in completions],
                prompt_tokens=sum(c.prompt_tokens for c in completions),
                output_tokens=sum(c.output_tokens for c in completions),
            )
        )
    return answers
