"""Checklist reward: an instruct LM answers each yes/no question; score = mean p(Yes).

RocketEval (Wei et al., 2025) shows that a lightweight judge grades well when it
answers an instance-specific checklist (TICK, Cook et al., 2024) one question at a
time and its *probability* of "Yes" is used instead of its sampled word, which is
noisy for small models. Here every (item, question) becomes one prompt
(``prompts/checklist_judge.j2``) that ends in the judge's assistant turn, so its next
token is the answer. From the logits at that position:

    p(Yes) normalised = P(Yes) / (P(Yes) + P(No)),

where P(Yes) sums the probabilities of every single-token spelling of the word
(" Yes", "Yes", "yes", ...) and likewise P(No). The softmax normaliser cancels, so this
is ``sigmoid(logsumexp(yes logits) - logsumexp(no logits))``. An item's reward is the
mean over its questions, in [0, 1]. Any causal LM in transformers can judge.

Prompts are scored in length-sorted batches, padded on the left so that the last
position of every row is its next-token position; position ids follow the attention
mask, as ``generate`` sets them, so a padded row scores as it would alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bolt.config import ModelsConfig, S3Options
from bolt.prompts import render_template
from bolt.rewards.base import RewardError, RewardItem, judged_response
from bolt.rewards.batching import length_sorted_batches, padded, score_in_batches
from bolt.rewards.checklist import ChecklistMaker
from bolt.rewards.loading import checked_model_path, dtype_for

AUTO_CLASS = "AutoModelForCausalLM"
YES_SPELLINGS = ("Yes", " Yes", "yes", " yes", "YES", " YES")
NO_SPELLINGS = ("No", " No", "no", " no", "NO", " NO")


class LMChecklistReward:
    """Scores items by the judge's mean normalised p(Yes) over their query's checklist."""

    def __init__(
        self, model: Any, tokenizer: Any, maker: ChecklistMaker, *, batch_size: int, device: str
    ):
        self.model, self.tokenizer, self.maker = model, tokenizer, maker
        self.batch_size, self.device = batch_size, device
        self.yes_ids = answer_token_ids(tokenizer, YES_SPELLINGS)
        self.no_ids = answer_token_ids(tokenizer, NO_SPELLINGS)
        pad_id = tokenizer.pad_token_id
        self.pad_id = tokenizer.eos_token_id if pad_id is None else pad_id

    @classmethod
    def from_catalog(
        cls,
        models: ModelsConfig,
        name: str,
        maker: ChecklistMaker,
        *,
        batch_size: int,
        device: str = "cpu",
        s3: S3Options | None = None,
    ) -> LMChecklistReward:
        """Load catalog model ``name`` as the judge (remote code only when allow-listed)."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path, trust = checked_model_path(models, name, AUTO_CLASS, s3=s3)
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust)
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=dtype_for(device), trust_remote_code=trust
        )
        return cls(model.to(device).eval(), tokenizer, maker, batch_size=batch_size, device=device)

    def score(self, items: Sequence[RewardItem]) -> list[float]:
        checklists = self.maker.checklists([(item.query, item.reference) for item in items])
        owners, prompts = [], []
        for index, (item, checklist) in enumerate(zip(items, checklists, strict=True)):
            response = judged_response(item)
            for question in checklist.questions:
                owners.append(index)
                prompts.append(self.judge_prompt_ids(item.query, response, question))
        answers = self.yes_probabilities(prompts)
        totals, counts = [0.0] * len(items), [0] * len(items)
        for owner, p_yes in zip(owners, answers, strict=True):
            totals[owner] += p_yes
            counts[owner] += 1
        return [total / count for total, count in zip(totals, counts, strict=True)]

    def judge_prompt_ids(self, query: str, response: str, question: str) -> list[int]:
        """The judge's prompt, ending where its answer (Yes or No) begins."""
        content = render_template(
            "checklist_judge.j2", query=query, response=response, question=question
        )
        text = self.tokenizer.apply_chat_template(
            [{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True
        )
        # The template already holds any special tokens; adding them again would double a BOS.
        return self.tokenizer.encode(text, add_special_tokens=False)

    def yes_probabilities(self, prompts: Sequence[list[int]]) -> list[float]:
        """Normalised p(Yes) of the next token after each prompt, in the prompts' order."""
        batches = length_sorted_batches([len(p) for p in prompts], self.batch_size)
        return score_in_batches(prompts, batches, self._batch_yes)

    def _batch_yes(self, prompts: list[list[int]]) -> list[float]:
        import torch

        input_ids, attention_mask = padded(prompts, self.pad_id, left=True)
        position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            # logits_to_keep=1: only the last position's logits, not [batch, length, vocab].
            logits = (
                self.model(
                    input_ids=input_ids.to(self.device),
                    attention_mask=attention_mask.to(self.device),
                    position_ids=position_ids.to(self.device),
                    logits_to_keep=1,
                )
                .logits[:, -1, :]
                .float()
            )
        return normalised_yes(logits, self.yes_ids, self.no_ids).tolist()


def normalised_yes(logits: Any, yes_ids: list[int], no_ids: list[int]) -> Any:
    """P(Yes) / (P(Yes) + P(No)) per row of next-token ``logits`` [batch, vocab]."""
    log_yes = logits[:, yes_ids].logsumexp(-1)
    log_no = logits[:, no_ids].logsumexp(-1)
    return (log_yes - log_no).sigmoid()


def answer_token_ids(tokenizer: Any, spellings: Sequence[str]) -> list[int]:
    """The distinct token ids of the spellings that are one token in this vocabulary."""
    ids = []
    for spelling in spellings:
        tokens = tokenizer.encode(spelling, add_special_tokens=False)
        if len(tokens) == 1 and tokens[0] not in ids:
            ids.append(tokens[0])
    if not ids:
        raise RewardError(f"none of {list(spellings)} is a single token for this judge's tokenizer")
    return ids
