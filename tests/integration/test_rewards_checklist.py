"""The checklist reward for real on SmolLM2-135M-Instruct (CPU): its p(Yes) is the one the
model's own full-vocabulary softmax gives, batched or not, and it scores end to end,
checklists written by a real engine included."""

from __future__ import annotations

import pytest

from bolt.config import EngineConfig, ModelEntry, ModelsConfig, RewardBackend, RewardKind
from bolt.engines import make_engine
from bolt.engines.base import ChatRequest, Completion
from bolt.longcot import render_longcot
from bolt.rewards import RewardItem, make_reward
from bolt.rewards.base import judged_response
from bolt.rewards.checklist import ChecklistMaker
from bolt.rewards.lm_checklist import LMChecklistReward

# SmolLM2 forward passes on a shared 2-core CPU: about a minute for the module.
pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHECKLIST = (
    "1. Does the answer say that Paris is the capital of France?\n"
    "2. Is the answer one short sentence?"
)


class ScriptedEngine:
    """Writes the same checklist for every query (the judge is what is under test here)."""

    model = "scripted-writer"

    def generate(self, requests: list[ChatRequest], sampling) -> list[list[Completion]]:
        return [[Completion(r.id, 0, CHECKLIST, "stop", 10, 10, None)] for r in requests]


def items() -> list[RewardItem]:
    query = "What is the capital of France?"
    return [
        RewardItem(
            query, render_longcot("It is Paris.", "The capital of France is Paris."), None, "a"
        ),
        RewardItem(
            query, render_longcot("Hmm.", "Bananas are yellow and rich in potassium."), None, "b"
        ),
    ]


@pytest.fixture(scope="module")
def judge(smollm2_path, tmp_path_factory) -> LMChecklistReward:
    """Built by make_reward, as the stages build it, with a scripted checklist writer."""
    models = ModelsConfig(catalog={"smol": ModelEntry(path=str(smollm2_path))})
    backend = RewardBackend(
        kind=RewardKind.lm_checklist, name="checklist", model="smol", batch_size=3
    )
    return make_reward(
        backend,
        models,
        checklist_engine=ScriptedEngine(),
        checklist_cache_dir=tmp_path_factory.mktemp("checklists"),
    )


def direct_p_yes(judge: LMChecklistReward, prompt: list[int]) -> float:
    """p(Yes)/(p(Yes)+p(No)) from one unpadded forward pass and a full-vocabulary softmax."""
    import torch

    with torch.inference_mode():
        logits = judge.model(input_ids=torch.tensor([prompt])).logits[0, -1]
    probs = logits.double().softmax(-1)
    p_yes, p_no = probs[judge.yes_ids].sum(), probs[judge.no_ids].sum()
    return float(p_yes / (p_yes + p_no))


@pytest.fixture(scope="module")
def direct(judge) -> list[list[tuple[list[int], float]]]:
    """Per item, per checklist question: the judge's prompt and its directly computed p(Yes)."""
    questions = [line.split(". ", 1)[1] for line in CHECKLIST.splitlines()]
    prompts = [
        [judge.judge_prompt_ids(i.query, judged_response(i), q) for q in questions] for i in items()
    ]
    return [[(p, direct_p_yes(judge, p)) for p in per_item] for per_item in prompts]


def test_p_yes_matches_the_models_own_probabilities(judge, direct):
    assert len(judge.yes_ids) >= 2 and len(judge.no_ids) >= 2  # " Yes", "Yes", "yes", ...
    prompts = [p for per_item in direct for p, _ in per_item]
    assert len({len(p) for p in prompts}) > 1  # padding really happens in the batch
    batched = judge.yes_probabilities(prompts)
    assert batched == pytest.approx([v for per_item in direct for _, v in per_item], abs=1e-4)
    assert all(0.0 < p < 1.0 for p in batched)


def test_score_is_the_mean_p_yes_over_the_checklist(judge, direct):
    expected = [sum(v for _, v in per_item) / len(per_item) for per_item in direct]
    assert judge.score(items()) == pytest.approx(expected, abs=1e-4)


def test_the_judge_prompt_ends_where_the_answer_begins(judge):
    text = judge.tokenizer.decode(judge.judge_prompt_ids("Q?", "A.", "Is it A?"))
    assert text.endswith("Yes or No.\n<|im_end|>\n<|im_start|>assistant\n")
    assert "Q?" in text and "Is it A?" in text


def test_a_real_engine_writes_the_checklist(judge, smollm2_path, tmp_path):
    engine = make_engine(EngineConfig(kind="transformers"), str(smollm2_path), seed=0)
    try:
        maker = ChecklistMaker(engine, tmp_path, max_new_tokens=96)
        reward = LMChecklistReward(judge.model, judge.tokenizer, maker, batch_size=4, device="cpu")
        scores = reward.score(items())
    finally:
        engine.close()
    assert len(scores) == 2 and all(0.0 <= s <= 1.0 for s in scores)
    assert len(list(tmp_path.glob("*.json"))) == 1  # one query, one checklist
