"""Reward backends on hand-built items: combination, batching, dispatch, the rule rewards,
checklist parsing and caching, and the pieces of the model rewards that need no model."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest

from bolt.config import ModelEntry, ModelsConfig, RewardBackend, RewardKind
from bolt.engines.base import ChatRequest, Completion
from bolt.longcot import render_longcot
from bolt.models import ModelError
from bolt.records import Generation, Query
from bolt.rewards import RewardError, RewardItem, combine, make_reward
from bolt.rewards.base import judged_response, reward_item
from bolt.rewards.batching import input_order_batches, length_sorted_batches
from bolt.rewards.checklist import (
    FALLBACK_CHECKLIST,
    MAX_QUESTIONS,
    ChecklistMaker,
    cache_key,
    checklist_messages,
    parse_checklist,
)
from bolt.rewards.format_reward import FormatReward
from bolt.rewards.loading import needs_remote_code, remote_code_allowed
from bolt.rewards.math_verify_reward import MathVerifyReward, final_answer

GOOD = render_longcot("I should add the numbers.", "2 + 2 = 4.")


def item(response: str, reference: str | None = None, key: str = "q:0") -> RewardItem:
    return RewardItem(query="What is 2 + 2?", response=response, reference=reference, key=key)


# ---------------------------------------------------------------- combine and batching


def test_combine_is_the_weighted_sum_per_item():
    scores = {"armorm": [0.5, -1.0, 2.0], "format": [1.0, 0.0, 1.0]}
    assert combine(scores, {"armorm": 2.0, "format": 0.5}) == [1.5, -2.0, 4.5]


def test_combine_of_nothing_is_nothing():
    assert combine({}, {}) == []


@pytest.mark.parametrize(
    ("scores", "weights", "message"),
    [
        ({"a": [1.0]}, {"a": 1.0, "b": 1.0}, "weights for"),
        ({"a": [1.0], "b": [1.0, 2.0]}, {"a": 1.0, "b": 1.0}, "different numbers"),
        ({"a": [math.nan]}, {"a": 1.0}, "NaN"),
    ],
)
def test_combine_refuses_mismatches_and_nan(scores, weights, message):
    with pytest.raises(ValueError, match=message):
        combine(scores, weights)


def test_length_sorted_batches_group_similar_lengths_longest_first():
    lengths = [5, 100, 7, 90, 6, 100]
    batches = length_sorted_batches(lengths, 2)
    assert batches == [[1, 5], [3, 2], [4, 0]]
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))


def test_input_order_batches_keep_the_order():
    assert input_order_batches(5, 2) == [[0, 1], [2, 3], [4]]
    assert input_order_batches(0, 3) == []


def test_reward_item_from_records():
    query = Query(id="q1", text="What is 2 + 2?", source="demo", reference_answer="4", topic="math")
    generation = Generation(
        query_id="q1",
        sample_index=3,
        prompt_tokens=5,
        raw_text=GOOD,
        output_tokens=9,
        engine="vllm",
        model="m",
    )
    assert reward_item(generation, query) == RewardItem(
        "What is 2 + 2?", GOOD, "4", "q1:3", query_id="q1", topic="math"
    )
    with pytest.raises(ValueError, match="paired with"):
        reward_item(generation, query.model_copy(update={"id": "q2"}))


@pytest.mark.parametrize(
    ("response", "judged"),
    [
        (GOOD, "2 + 2 = 4."),
        ("<thoughts>\nadd\n</thoughts>\n<response>\n4, cut at the lim", "4, cut at the lim"),
        ("<thoughts>\nadd\n</thoughts>\nIt is 4.", "It is 4."),
        ("<thoughts>\nadd them, then", ""),
        ("plain answer", "plain answer"),
    ],
)
def test_judged_response_never_holds_the_thoughts(response, judged):
    assert judged_response(item(response)) == judged


# ---------------------------------------------------------------- make_reward


@pytest.mark.parametrize("kind", list(RewardKind))
def test_every_reward_kind_is_dispatched(kind):
    """Each kind either builds or names what it is missing; none falls through."""
    extra = (
        {"principles": [{"text": "The answer is correct."}], "model": "judge"}
        if kind == RewardKind.principles
        else {}
    )
    backend = RewardBackend(kind=kind, name=kind.value, **extra)
    try:
        reward = make_reward(backend, ModelsConfig())
    except RewardError as err:
        assert kind in (RewardKind.sequence_classifier, RewardKind.lm_checklist)
        assert "needs" in str(err)
    except ModelError as err:  # the principles judge is loaded: its model is not in the catalog
        assert kind == RewardKind.principles
        assert "judge" in str(err)
    else:
        assert callable(reward.score)


def test_lm_checklist_without_an_engine_says_so():
    backend = RewardBackend(kind=RewardKind.lm_checklist, name="checklist", model="judge")
    with pytest.raises(RewardError, match="engine to write its checklists"):
        make_reward(backend, ModelsConfig())


# ---------------------------------------------------------------- remote code


def test_remote_code_asked_but_not_allow_listed_is_refused():
    models = ModelsConfig(
        catalog={
            "armorm": ModelEntry(hf_id="RLHFlow/ArmoRM-Llama3-8B-v0.1", trust_remote_code=True)
        }
    )
    with pytest.raises(
        RewardError, match=r"models\.catalog\.armorm\.trust_remote_code.*remote_code_allowlist"
    ):
        remote_code_allowed(models, "armorm")
    allowed = models.model_copy(update={"remote_code_allowlist": ["RLHFlow/ArmoRM-Llama3-8B-v0.1"]})
    assert remote_code_allowed(allowed, "armorm") is True


def test_needs_remote_code_reads_the_auto_map(tmp_path):
    (tmp_path / "config.json").write_text(
        json.dumps(
            {
                "model_type": "llama",
                "auto_map": {"AutoModelForSequenceClassification": "m.RewardModel"},
            }
        )
    )
    assert needs_remote_code(str(tmp_path), "AutoModelForSequenceClassification")
    assert not needs_remote_code(str(tmp_path), "AutoModelForCausalLM")


def test_reward_from_output_prefers_armorm_score():
    torch = pytest.importorskip("torch")
    from bolt.rewards.sequence_classifier import reward_from_output

    armo = SimpleNamespace(score=torch.tensor([[0.25], [-1.5]]), logits=torch.zeros(2, 1))
    plain = SimpleNamespace(logits=torch.tensor([[0.5, 9.0], [-2.0, 9.0]]))
    assert reward_from_output(armo).tolist() == [0.25, -1.5]
    assert reward_from_output(plain).tolist() == [0.5, -2.0]


# ---------------------------------------------------------------- format reward


def test_format_reward_passes_well_formed_answers_only():
    items = [
        item(GOOD),
        item("no tags at all"),
        item("<thoughts>\nhmm\n</thoughts>\n<response>\ncut off at the token lim"),
    ]
    assert FormatReward().score(items) == [1.0, 0.0, 0.0]
    assert FormatReward(penalty=-1.0).score(items) == [1.0, -1.0, -1.0]
    assert FormatReward(allow_unclosed_response=True).score(items[2:]) == [1.0]


def test_format_reward_names_the_reason():
    assert str(FormatReward().reject_reason(item("no tags"))) == "missing_thoughts_tag"


# ---------------------------------------------------------------- math verify


@pytest.mark.parametrize(
    ("response", "answer"),
    [
        (r"So \boxed{1} or rather \boxed{\frac{1}{2}}.", r"\frac{1}{2}"),
        ("The final answer is $42$.", "42"),
        ("Answer: 3/4\nThat is all.", "3/4"),
        ("Some answer: 1\nFinal answer: 2", "2"),
        ("I do not know.", None),
    ],
)
def test_final_answer(response, answer):
    assert final_answer(response) == answer


def test_math_verify_scores_equivalence_of_the_response_only():
    pytest.importorskip("math_verify")
    items = [
        item(render_longcot(r"maybe \boxed{7}", r"It is \boxed{\frac{1}{2}}."), reference="0.5"),
        item(render_longcot(r"surely \boxed{0.5}", r"It is \boxed{3}."), reference="0.5"),
        item("The final answer is 10.", reference="10.0"),
        item("no idea", reference="1"),
    ]
    assert MathVerifyReward().score(items) == [1.0, 0.0, 1.0, 0.0]


def test_math_verify_refuses_items_without_reference():
    with pytest.raises(RewardError, match=r"q:7"):
        MathVerifyReward().score([item(r"\boxed{1}", reference="1"), item("x", key="q:7")])


# ---------------------------------------------------------------- checklists


def test_parse_checklist_tolerates_markers_and_prose():
    text = """Sure! Here is the checklist:
1. Does the answer state that 2 + 2 = 4?
2) **Is the arithmetic shown step by step?**
- Does the answer avoid unrelated content?
* Does the answer state that 2 + 2 = 4?
Q5: Is it short?
Yes?
These questions cover the request."""
    assert parse_checklist(text) == [
        "Does the answer state that 2 + 2 = 4?",
        "Is the arithmetic shown step by step?",
        "Does the answer avoid unrelated content?",
        "Is it short?",
    ]
    many = "\n".join(f"{i}. Is requirement number {i} met?" for i in range(20))
    assert len(parse_checklist(many)) == MAX_QUESTIONS
    assert parse_checklist("I cannot help with that.") == []


def test_cache_key_depends_on_model_and_prompt():
    messages = checklist_messages("What is 2 + 2?", None)
    assert cache_key("m", messages) == cache_key("m", checklist_messages("What is 2 + 2?", None))
    assert cache_key("m", messages) != cache_key("other", messages)
    assert cache_key("m", messages) != cache_key("m", checklist_messages("What is 2 + 2?", "4"))


class ScriptedEngine:
    """The part of the Engine protocol checklists use: ``generate``, answering from a script."""

    model = "scripted-writer"

    def __init__(self, answer: str):
        self.answer, self.prompts = answer, []

    def generate(self, requests: list[ChatRequest], sampling) -> list[list[Completion]]:
        assert sampling.temperature == 0 and sampling.n == 1
        self.prompts += [r.messages[0]["content"] for r in requests]
        return [[Completion(r.id, 0, self.answer, "stop", 10, 10, None)] for r in requests]


def test_checklists_are_written_once_per_prompt_and_cached(tmp_path):
    engine = ScriptedEngine("1. Does it say 4?\n2. Is it polite to the user?")
    queries = [("What is 2 + 2?", None), ("Say hi.", None), ("What is 2 + 2?", None)]
    lists = ChecklistMaker(engine, tmp_path).checklists(queries)
    assert len(engine.prompts) == 2 and "Say hi." in engine.prompts[1]
    assert lists[0] == lists[2] and lists[0].questions == (
        "Does it say 4?",
        "Is it polite to the user?",
    )
    assert not lists[0].fallback

    other_writer = ScriptedEngine("1. A different question entirely?")
    other_writer.model = "other-writer"
    assert ChecklistMaker(other_writer, tmp_path).checklists(queries[:1])[0].questions == (
        "A different question entirely?",
    )
    rerun = ScriptedEngine("unused")
    assert ChecklistMaker(rerun, tmp_path).checklists(queries) == lists and rerun.prompts == []
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_an_answer_without_questions_gets_the_fallback_checklist(tmp_path):
    checklist = ChecklistMaker(ScriptedEngine("I cannot."), tmp_path).checklists([("Q?", None)])[0]
    assert checklist.questions == FALLBACK_CHECKLIST and checklist.fallback
    entry = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert entry["raw"] == "I cannot." and entry["fallback"] is True


# ---------------------------------------------------------------- p(Yes) arithmetic


def test_normalised_yes_sums_spellings_and_ignores_other_tokens():
    torch = pytest.importorskip("torch")
    from bolt.rewards.lm_checklist import normalised_yes

    logits = torch.tensor([[2.0, 1.0, 0.5, 7.0], [0.0, 0.0, 0.0, -3.0]])
    probs = logits.softmax(-1)
    expected = (probs[:, 0] + probs[:, 1]) / (probs[:, 0] + probs[:, 1] + probs[:, 2])
    assert torch.allclose(normalised_yes(logits, [0, 1], [2]), expected, atol=1e-7)


def test_answer_token_ids_keep_single_token_spellings():
    from bolt.rewards.lm_checklist import answer_token_ids

    vocab = {"Yes": [5], " Yes": [6], "yes": [5], "YES": [8, 9]}
    tokenizer = SimpleNamespace(encode=lambda s, add_special_tokens: vocab.get(s, [1, 2]))
    assert answer_token_ids(tokenizer, ["Yes", " Yes", "yes", "YES"]) == [5, 6]
    with pytest.raises(RewardError, match="single token"):
        answer_token_ids(tokenizer, ["YES"])
