"""The sequence-classification reward path for real, on a small randomly initialised
Llama reward model saved locally with SmolLM2's tokenizer and chat template, loaded by
the code that loads ArmoRM and Skywork (CPU, seconds)."""

from __future__ import annotations

import json
import shutil
import sys

import pytest

from bolt.config import ModelEntry, ModelsConfig
from bolt.longcot import render_longcot
from bolt.rewards import RewardError, RewardItem
from bolt.rewards.sequence_classifier import SequenceClassifierReward
from tests.random_reward_model import save_random_reward_model

pytestmark = pytest.mark.integration

SENTENCE = "the quick brown fox jumps over a lazy dog while rain falls on quiet hills "


def items() -> list[RewardItem]:
    """Answers of very different lengths, in an order that is not sorted by length."""
    lengths = [40, 3, 250, 17, 120, 1, 60, 9, 400]
    return [
        RewardItem(
            query=f"Question {i}: tell me about foxes.",
            response=render_longcot("private reasoning " * 5, (SENTENCE * 30)[: n * 6]),
            reference=None,
            key=f"q{i}:0",
        )
        for i, n in enumerate(lengths)
    ]


@pytest.fixture(scope="module")
def rm_dir(smollm2_path, tmp_path_factory):
    return save_random_reward_model(smollm2_path, tmp_path_factory.mktemp("random-rm") / "rm")


def catalog(path, **entry) -> ModelsConfig:
    return ModelsConfig(catalog={"rm": ModelEntry(path=str(path), **entry)})


@pytest.fixture(scope="module")
def reward(rm_dir) -> SequenceClassifierReward:
    return SequenceClassifierReward.from_catalog(catalog(rm_dir), "rm", batch_size=4)


def test_length_sorted_batches_score_as_one_by_one(reward):
    batched = reward.score(items())
    alone = SequenceClassifierReward(reward.model, reward.tokenizer, batch_size=1).score(items())
    assert max(abs(a - b) for a, b in zip(batched, alone, strict=True)) < 1e-4
    assert max(batched) - min(batched) > 1e-3  # the items really score differently


def test_a_model_without_pad_token_batches_exactly(rm_dir, tmp_path):
    """Llama-3 / Mistral reward models may ship no pad token: each batch pads with an id
    none of its sequences contains, so batched scores equal one-by-one scores."""
    folder = tmp_path / "no-pad"
    shutil.copytree(rm_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["pad_token_id"] = None
    (folder / "config.json").write_text(json.dumps(config))
    tokenizer_config = json.loads((folder / "tokenizer_config.json").read_text())
    tokenizer_config["pad_token"] = None
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    reward = SequenceClassifierReward.from_catalog(catalog(folder), "rm", batch_size=4)
    assert reward.pad_id is None and reward.tokenizer.pad_token is None
    batched = reward.score(items())
    alone = SequenceClassifierReward(reward.model, reward.tokenizer, batch_size=1).score(items())
    assert max(abs(a - b) for a, b in zip(batched, alone, strict=True)) < 1e-4


def test_input_order_batches_agree_too(reward):
    naive = SequenceClassifierReward(
        reward.model, reward.tokenizer, batch_size=4, sort_by_length=False
    )
    assert naive.score(items()) == pytest.approx(reward.score(items()), abs=1e-4)


def test_the_thoughts_are_never_scored(reward):
    with_thoughts = items()[:3]
    other_thoughts = [
        RewardItem(
            i.query,
            i.response.replace("private reasoning", "entirely different musing"),
            None,
            i.key,
        )
        for i in with_thoughts
    ]
    assert reward.score(other_thoughts) == pytest.approx(reward.score(with_thoughts), abs=1e-6)
    rendered = reward.tokenizer.decode(reward.token_ids(with_thoughts[0]))
    assert "private reasoning" not in rendered and "<response>" not in rendered
    assert "<|im_start|>user\nQuestion 0" in rendered and "<|im_start|>assistant\n" in rendered


def test_over_long_responses_are_shortened_to_fit(rm_dir):
    short = SequenceClassifierReward.from_catalog(
        catalog(rm_dir, context_length=96), "rm", batch_size=2
    )
    ids = short.token_ids(items()[-1])
    assert len(ids) <= 96
    assert short.tokenizer.decode(ids).endswith("<|im_end|>\n")  # the template's end is kept
    assert len(short.score(items())) == len(items())


def code_model_dir(rm_dir, tmp_path, sentinel):
    """``rm_dir`` plus ArmoRM-style own code: a class whose output carries ``score``
    (here minus the built-in head's logit), and a line that marks its import."""
    folder = tmp_path / "armo_like"
    shutil.copytree(rm_dir, folder)
    (folder / "modeling_armo_like.py").write_text(
        f"""
import pathlib
from dataclasses import dataclass

import torch
from transformers import LlamaForSequenceClassification
from transformers.utils import ModelOutput

pathlib.Path({str(sentinel)!r}).write_text("imported")


@dataclass
class ArmoLikeOutput(ModelOutput):
    score: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None


class ArmoLikeRewardModel(LlamaForSequenceClassification):
    def forward(self, input_ids=None, attention_mask=None, **kwargs):
        plain = super().forward(input_ids=input_ids, attention_mask=attention_mask)
        return ArmoLikeOutput(score=-plain.logits, logits=torch.zeros_like(plain.logits))
"""
    )
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {
        "AutoModelForSequenceClassification": "modeling_armo_like.ArmoLikeRewardModel"
    }
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_own_code_is_refused_unless_allow_listed(rm_dir, tmp_path):
    sentinel = tmp_path / "imported.txt"
    folder = code_model_dir(rm_dir, tmp_path, sentinel)
    with pytest.raises(RewardError, match=r"models\.catalog\.rm\.trust_remote_code: true"):
        SequenceClassifierReward.from_catalog(catalog(folder), "rm", batch_size=2)
    with pytest.raises(RewardError, match=r"is not in models\.remote_code_allowlist"):
        SequenceClassifierReward.from_catalog(
            catalog(folder, trust_remote_code=True), "rm", batch_size=2
        )
    assert not sentinel.exists()


def test_allow_listed_own_code_runs_and_its_score_is_used(rm_dir, reward, tmp_path, monkeypatch):
    import transformers.dynamic_module_utils as dynamic

    # transformers copies a model's own code into its modules cache; keep it in tmp_path.
    monkeypatch.setattr(dynamic, "HF_MODULES_CACHE", str(tmp_path / "modules"))
    monkeypatch.setattr(sys, "path", list(sys.path))
    sentinel = tmp_path / "imported.txt"
    folder = code_model_dir(rm_dir, tmp_path, sentinel)
    models = catalog(folder, trust_remote_code=True).model_copy(
        update={"remote_code_allowlist": [str(folder)]}
    )
    armo_like = SequenceClassifierReward.from_catalog(models, "rm", batch_size=4)
    assert sentinel.exists() and type(armo_like.model).__name__ == "ArmoLikeRewardModel"
    expected = [-s for s in reward.score(items())]
    assert armo_like.score(items()) == pytest.approx(expected, abs=1e-4)
