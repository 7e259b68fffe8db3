"""Outcome reward models with a scalar head: ArmoRM-Llama3-8B, Skywork-Reward-Llama-3.1-8B, ...

BOLT (Pang et al., 2025) scores the *response only*, not the thoughts, with an outcome
reward model: in filtering (§3.1) to drop answers below the 30th percentile and keep
the best one per query, and in online DPO (§3.3) with ArmoRM-Llama3-8B to pick pairs.
The conversation ``[user: query, assistant: response]`` is rendered with the reward
model's own chat template, as its model card shows, and the score is read from
its output: ArmoRM's custom output carries ``score`` (the gated mix of its 19
objectives, Wang et al., 2024); a plain ``*ForSequenceClassification`` head gives
``logits[:, 0]``.

Batches are length-sorted: items are sorted by token length, batched, and the scores
put back in input order (:func:`bolt.rewards.batching.length_sorted_batches`); the
benchmark ``bench/reward_batching.py`` measures what that saves. Padding is on the
right with the pad id the model itself uses to find each sequence's last token
(ArmoRM takes the position before the first pad token; transformers' heads take the
last non-pad token), so a padded sequence scores as it would alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bolt.config import ModelsConfig, S3Options
from bolt.rewards.base import RewardError, RewardItem, judged_response
from bolt.rewards.batching import (
    input_order_batches,
    length_sorted_batches,
    padded,
    score_in_batches,
)
from bolt.rewards.loading import checked_model_path, dtype_for

AUTO_CLASS = "AutoModelForSequenceClassification"


class SequenceClassifierReward:
    """A transformers sequence-classification reward model, scored in length-sorted batches.

    ``max_length`` (tokens) shortens over-long responses to fit the model's context,
    keeping the query and the chat template intact; ``sort_by_length=False`` batches
    in input order (only the benchmark wants that).
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        batch_size: int,
        device: str = "cpu",
        max_length: int | None = None,
        sort_by_length: bool = True,
    ):
        self.model, self.tokenizer = model, tokenizer
        self.batch_size, self.device = batch_size, device
        self.max_length, self.sort_by_length = max_length, sort_by_length
        self.pad_id = _pad_token_id(model, tokenizer)

    @classmethod
    def from_catalog(
        cls,
        models: ModelsConfig,
        name: str,
        *,
        batch_size: int,
        device: str = "cpu",
        s3: S3Options | None = None,
        sort_by_length: bool = True,
    ) -> SequenceClassifierReward:
        """Load catalog model ``name`` as ArmoRM and Skywork are loaded (remote code only
        when allow-listed; see :mod:`bolt.rewards.loading`)."""
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        path, trust = checked_model_path(models, name, AUTO_CLASS, s3=s3)
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust)
        model = AutoModelForSequenceClassification.from_pretrained(
            path, dtype=dtype_for(device), trust_remote_code=trust
        )
        return cls(
            model.to(device).eval(),
            tokenizer,
            batch_size=batch_size,
            device=device,
            max_length=models.catalog[name].context_length,
            sort_by_length=sort_by_length,
        )

    def token_ids(self, item: RewardItem) -> list[int]:
        """The conversation [user: query, assistant: response] in the model's chat template."""
        response = judged_response(item)
        ids = self._render(item.query, response)
        if self.max_length is None or len(ids) <= self.max_length:
            return ids
        return self._render(item.query, self._shortened(item.query, response))

    def score(self, items: Sequence[RewardItem]) -> list[float]:
        sequences = [self.token_ids(item) for item in items]
        if self.sort_by_length:
            batches = length_sorted_batches([len(s) for s in sequences], self.batch_size)
        else:
            batches = input_order_batches(len(sequences), self.batch_size)
        return score_in_batches(sequences, batches, self._score_batch)

    def _score_batch(self, sequences: list[list[int]]) -> list[float]:
        import torch

        pad_id = self.pad_id if self.pad_id is not None else _absent_id(sequences, self.model)
        self.model.config.pad_token_id = pad_id  # the head finds each sequence's end by it
        input_ids, attention_mask = padded(sequences, pad_id, left=False)
        with torch.inference_mode():
            output = self.model(
                input_ids=input_ids.to(self.device), attention_mask=attention_mask.to(self.device)
            )
        return reward_from_output(output).tolist()

    def _render(self, query: str, response: str) -> list[int]:
        messages = [{"role": "user", "content": query}, {"role": "assistant", "content": response}]
        text = self.tokenizer.apply_chat_template(messages, tokenize=False)
        # The template already holds BOS and the turn markers; adding them again would
        # double the BOS, which the reward model never saw in training.
        return self.tokenizer.encode(text, add_special_tokens=False)

    def _shortened(self, query: str, response: str) -> str:
        """``response`` cut (at the end) to the tokens the template and query leave free.

        Re-tokenising the cut text can merge a token or two across the cut, hence the
        small margin.
        """
        assert self.max_length is not None
        overhead = len(self._render(query, ""))
        budget = self.max_length - overhead - 8
        if budget <= 0:
            raise RewardError(
                f"the query alone takes {overhead} tokens, more than the reward model's "
                f"{self.max_length}"
            )
        kept = self.tokenizer.encode(response, add_special_tokens=False)[:budget]
        return self.tokenizer.decode(kept)


def reward_from_output(output: Any) -> Any:
    """The scalar reward per sequence (a float32 tensor of shape [batch]).

    ArmoRM's ``CustomOutput`` has ``score`` (shape [batch, 1]); transformers'
    classification outputs have only ``logits`` (shape [batch, num_labels]), of
    which reward models use the first.
    """
    score = getattr(output, "score", None)
    values = score if score is not None else output.logits[:, 0]
    return values.float().reshape(-1)


def _pad_token_id(model: Any, tokenizer: Any) -> int | None:
    """The id to pad with: the model's own (it finds sequence ends by it), else the
    tokenizer's; None when neither has one (Llama-3 and Mistral tokenizers, and reward
    models built on them without adding one): then each batch pads with ``_absent_id``."""
    pad_id = model.config.pad_token_id
    return pad_id if pad_id is not None else tokenizer.pad_token_id


def _absent_id(sequences: Sequence[Sequence[int]], model: Any) -> int:
    """A token id that no sequence of the batch contains (the highest such id of the
    vocabulary: reserved tokens sit there). Padding with it, the head's search for the
    first pad (ArmoRM) or last non-pad token (transformers) finds each sequence's true
    end, so every sequence scores exactly as it would alone."""
    present = {t for s in sequences for t in s}
    for candidate in range(model.config.vocab_size - 1, -1, -1):
        if candidate not in present:
            return candidate
    raise RewardError("every vocabulary id occurs in the batch: nothing left to pad with")
