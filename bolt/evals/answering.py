"""Answer generation for each benchmark, with each benchmark's usual settings.

The chat, the temperature and any follow-up turn are the benchmark's own (its
:class:`~bolt.evals.spec.BenchmarkSpec`): FastChat ``gen_model_answer.py`` for MT-Bench
(two turns, the second asked after the model's first answer, temperature by category),
greedy and the conversation as given for Arena-Hard (``gen_answer.py``, v0.1) and
WildBench, ZeroEval's ``zebra_grid`` template for ZebraLogic, "put your final answer
within \\boxed{}" for MATH500. A LongCoT model's first answer goes back into the
conversation without its thoughts, as reasoning models' chat templates do.

The output limit and engine seed come from ``eval.sampling``; temperatures are the
benchmark's own.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from bolt.config import SamplingConfig
from bolt.engines.base import ChatRequest, Completion, Engine
from bolt.evals import Benchmark
from bolt.evals.registry import BENCHMARKS
from bolt.evals.spec import BenchmarkSpec, user_turn
from bolt.longcot import strip_thoughts
from bolt.records import EvalAnswer


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


def _second_turns(
    spec: BenchmarkSpec,
    items: Sequence[Any],
    ids: list[str],
    firsts: dict[str, Completion],
    engine: Engine,
    sampling: SamplingConfig,
) -> dict[str, Completion]:
    """The follow-up turn of each item, asked after the model's first answer (thoughts
    stripped); none for a single-turn benchmark."""
    if spec.follow_up is None:
        return {}
    follow_ups = []
    for i, item in zip(ids, items, strict=True):
        history = [
            *spec.messages(item),
            {"role": "assistant", "content": strip_thoughts(firsts[i].text)},
            *user_turn(spec.follow_up(item)),
        ]
        follow_ups.append((ChatRequest(id=i, messages=history), spec.temperature(item)))
    return _generate_by_temperature(engine, follow_ups, sampling)


def answer_items(
    benchmark: Benchmark, items: Sequence[Any], engine: Engine, sampling: SamplingConfig, model: str
) -> list[EvalAnswer]:
    """The model's answers to ``items``, in order (two turns each for MT-Bench)."""
    spec = BENCHMARKS[benchmark]
    ids = [spec.item_id(item) for item in items]
    firsts = _generate_by_temperature(
        engine,
        [
            (ChatRequest(id=i, messages=spec.messages(item)), spec.temperature(item))
            for i, item in zip(ids, items, strict=True)
        ],
        sampling,
    )
    seconds = _second_turns(spec, items, ids, firsts, engine, sampling)
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
