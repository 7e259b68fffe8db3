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
mean over its questions, in [0, 1], or, with RocketEval's supervised item weights of its
query (``checklist_weights``, :mod:`bolt.rewards.reweighting`), their blend with that
mean. Any causal LM in transformers can judge. A checklist without questions is an
error naming the item, never a score.

Prompts are scored in length-sorted batches, padded on the left so that the last
position of every row is its next-token position; position ids follow the attention
mask, as ``generate`` sets them, so a padded row scores as it would alone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from bolt.config import ModelsConfig, S3Options
from bolt.prompts import render_template
from bolt.rewards.base import CountedScores, RewardError, RewardItem, judged_response
from bolt.rewards.batching import length_sorted_batches, padded, score_in_batches
from bolt.rewards.checklist import ChecklistMaker
from bolt.rewards.loading import checked_model_path, dtype_for
from bolt.rewards.reweighting import ChecklistWeights

AUTO_CLASS = "AutoModelForCausalLM"
YES_SPELLINGS = ("Yes", " Yes", "yes", " yes", "YES", " YES")
NO_SPELLINGS = ("No", " No", "no", " no", "NO", " NO")


class LMChecklistReward:
    """Scores items by the judge's mean normalised p(Yes) over their query's checklist."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        maker: ChecklistMaker,
        *,
        batch_size: int,
        device: str,
        weights: ChecklistWeights | None = None,
    ):
        self.model, self.tokenizer, self.maker = model, tokenizer, maker
        self.batch_size, self.device = batch_size, device
        self.weights = weights
        self.yes_ids = answer_token_ids(tokenizer, YES_SPELLINGS)
        self.no_ids = answer_token_ids(tokenizer, NO_SPELLINGS)
        pad_id = tokenizer.pad_token_id
        self.pad_id = tokenizer.eos_token_id if pad_id is None else pad_id
        # How each item was scored: "mean", or which of the weights ("query", "pooled",
        # "stale": weights fitted on another checklist, so the mean was used), and
        # "fallback_checklist" for each item judged on the generic checklist because
        # the writer's answer held no question.
        self.stats: Counter[str] = Counter()

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
        weights: ChecklistWeights | None = None,
    ) -> LMChecklistReward:
        """Load catalog model ``name`` as the judge (remote code only when allow-listed)."""
        model, tokenizer = load_causal_lm(models, name, device=device, s3=s3)
        return cls(model, tokenizer, maker, batch_size=batch_size, device=device, weights=weights)

    def score(self, items: Sequence[RewardItem]) -> list[float]:
        return self.score_counted(items).scores

    def score_counted(self, items: Sequence[RewardItem]) -> CountedScores:
        """The scores and this batch's counts (keyed as :attr:`stats` is); every item
        has a verdict (a checklist without questions raises)."""
        checklists = self.maker.checklists([(item.query, item.reference) for item in items])
        questions = [checklist.questions for checklist in checklists]
        answers = self.item_probabilities(items, questions)
        counts: Counter[str] = Counter(
            "fallback_checklist" for checklist in checklists if checklist.fallback
        )
        scores = []
        for item, asked, p_yes in zip(items, questions, answers, strict=True):
            if self.weights is None:
                counts["mean"] += 1
                scores.append(sum(p_yes) / len(p_yes))
                continue
            score, source = self.weights.score(item.query_id, asked, p_yes)
            counts[source] += 1
            scores.append(score)
        self.stats.update(counts)
        return CountedScores(scores, {}, dict(counts))

    def item_probabilities(
        self, items: Sequence[RewardItem], questions: Sequence[Sequence[str]]
    ) -> list[list[float]]:
        """Per item, the normalised p(Yes) of each of its questions, in their order.

        The judge sees each item's external response only (:func:`judged_response`).
        """
        owners, prompts = [], []
        for index, (item, asked) in enumerate(zip(items, questions, strict=True)):
            if not asked:
                raise RewardError(f"item {item.key!r}: its checklist has no question to answer")
            response = judged_response(item)
            for question in asked:
                owners.append(index)
                prompts.append(self.judge_prompt_ids(item.query, response, question))
        out: list[list[float]] = [[] for _ in items]
        for owner, p_yes in zip(owners, self.yes_probabilities(prompts), strict=True):
            out[owner].append(p_yes)
        return out

    def judge_prompt_ids(self, query: str, response: str, question: str) -> list[int]:
        """The judge's prompt, ending where its answer (Yes or No) begins."""
        content = render_template(
            "checklist_judge.j2", query=query, response=response, question=question
        )
        return prompt_ids(self.tokenizer, content)

    def yes_probabilities(self, prompts: Sequence[list[int]]) -> list[float]:
        """Normalised p(Yes) of the next token after each prompt, in the prompts' order."""
        return next_token_yes(
            self.model,
            prompts,
            self.pad_id,
            (self.yes_ids, self.no_ids),
            self.batch_size,
            self.device,
        )


def load_causal_lm(
    models: ModelsConfig, name: str, *, device: str, s3: S3Options | None
) -> tuple[Any, Any]:
    """Catalog model ``name`` as a causal LM in eval mode on ``device``, and its tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path, trust = checked_model_path(models, name, AUTO_CLASS, s3=s3)
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust)
    model = AutoModelForCausalLM.from_pretrained(
        path, dtype=dtype_for(device), trust_remote_code=trust
    )
    return model.to(device).eval(), tokenizer


def prompt_ids(tokenizer: Any, content: str) -> list[int]:
    """One user turn in the chat template, ending in the assistant header."""
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True
    )
    # The template already holds any special tokens; adding them again would double a BOS.
    return tokenizer.encode(text, add_special_tokens=False)


def next_token_yes(
    model: Any,
    prompts: Sequence[list[int]],
    pad_id: int,
    answer_ids: tuple[list[int], list[int]],
    batch_size: int,
    device: str,
) -> list[float]:
    """P(Yes) / (P(Yes) + P(No)) of the next token after each prompt, in length-sorted
    batches, returned in the prompts' order. ``answer_ids`` is (yes ids, no ids)."""
    import torch

    yes_ids, no_ids = answer_ids

    def batch_yes(batch: list[list[int]]) -> list[float]:
        input_ids, attention_mask = padded(batch, pad_id, left=True)
        position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            # logits_to_keep=1: only the last position's logits, not [batch, length, vocab].
            logits = (
                model(
                    input_ids=input_ids.to(device),
                    attention_mask=attention_mask.to(device),
                    position_ids=position_ids.to(device),
                    logits_to_keep=1,
                )
                .logits[:, -1, :]
                .float()
            )
        return normalised_yes(logits, yes_ids, no_ids).tolist()

    batches = length_sorted_batches([len(p) for p in prompts], batch_size)
    return score_in_batches(prompts, batches, batch_yes)


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
