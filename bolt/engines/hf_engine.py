"""transformers fallback: batched ``generate`` where vLLM is not available.

Slower than vLLM (ARCHITECTURE.md §6: ~66 against ~110 output tok/s for SmolLM2 on this
machine's CPUs) and without prefix caching or guided decoding, but it needs nothing
beyond transformers and gives the same ``Completion`` records.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from bolt.config import EngineKind, SamplingConfig
from bolt.engines.base import (
    ChatRequest,
    Completion,
    Deadline,
    EngineError,
    EngineTimeout,
    LocalEngine,
    TokenLogprobs,
    add_candidate,
)

# Prompts per generate call (each expanded to n rows): bounds the padded batch's memory.
PROMPTS_PER_BATCH = 8


class HFEngine(LocalEngine):
    name = EngineKind.transformers.value

    def __init__(
        self,
        model_path: str,
        *,
        seed: int,
        device: str = "cpu",
        shard_timeout_s: float | None = None,
    ):
        # Imported here: torch and transformers take seconds to import.
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.model = self.model_path = str(model_path)
        self.device = device
        # Checked between batches: a batch in transformers' generate cannot be interrupted.
        self.shard_timeout_s = shard_timeout_s
        self._tokenizer = AutoTokenizer.from_pretrained(self.model_path, padding_side="left")
        if self._tokenizer.pad_token_id is None:
            self._tokenizer.pad_token = self._tokenizer.eos_token
        dtype = torch.bfloat16 if device == "cuda" else torch.float32
        self._model = (
            AutoModelForCausalLM.from_pretrained(self.model_path, dtype=dtype).to(device).eval()
        )
        self._eos_ids = eos_token_ids(
            self._model.generation_config.eos_token_id, self._tokenizer.eos_token_id
        )
        # Seeded once, like vLLM's engine seed: the same calls on a fresh engine repeat.
        torch.manual_seed(seed)

    def _generate(
        self,
        requests: list[ChatRequest],
        sampling: SamplingConfig,
        stop: list[str] | None,
        guided_regex: str | None,
        deadline: Deadline,
        logprobs: int | None,
    ) -> list[list[Completion]]:
        if guided_regex is not None:
            raise EngineError(
                "the transformers engine has no guided decoding; use kind=vllm or an openai server"
            )
        if self._model is None:
            raise EngineError("this transformers engine is closed")
        completions: list[list[Completion]] = []
        for first in range(0, len(requests), PROMPTS_PER_BATCH):
            if first and deadline.expired():
                raise EngineTimeout(deadline.message(self.model))
            completions += self._generate_batch(
                requests[first : first + PROMPTS_PER_BATCH], sampling, stop or [], logprobs
            )
        return completions

    def close(self) -> None:
        self._model = None

    def _generate_batch(
        self,
        requests: list[ChatRequest],
        sampling: SamplingConfig,
        stop: list[str],
        logprobs: int | None,
    ) -> list[list[Completion]]:
        import torch

        prompts = [self.render_prompt(r.messages) for r in requests]
        inputs = self._tokenizer.pad({"input_ids": prompts}, return_tensors="pt").to(self.device)
        # Each prompt is repeated n times rather than using num_return_sequences, which
        # greedy decoding (temperature 0) refuses for n > 1.
        rows = {k: v.repeat_interleave(sampling.n, dim=0) for k, v in inputs.items()}
        # The raw logits of every step, only when asked for: they cost a [rows, vocab]
        # tensor per step.
        scores = {"output_logits": True, "return_dict_in_generate": True} if logprobs else {}
        with torch.inference_mode():
            out = self._model.generate(
                **rows,
                **decoding_kwargs(sampling),
                **scores,
                stop_strings=stop or None,
                tokenizer=self._tokenizer,
                pad_token_id=self._tokenizer.pad_token_id,
            )
        sequences = out.sequences if logprobs else out
        new_tokens = sequences[:, inputs["input_ids"].shape[1] :].tolist()

        def completion(i: int, index: int, request: ChatRequest, prompt: list[int]) -> Completion:
            row = i * sampling.n + index
            c = self._completion(request.id, index, len(prompt), new_tokens[row], stop)
            if not logprobs:
                return c
            steps = [step[row] for step in out.logits[: c.output_tokens]]
            return replace(c, logprobs=top_logprobs(steps, new_tokens[row], logprobs, self._decode))

        return [
            [completion(i, index, request, prompt) for index in range(sampling.n)]
            for i, (request, prompt) in enumerate(zip(requests, prompts, strict=True))
        ]

    def _completion(
        self, request_id: str, index: int, prompt_tokens: int, tokens: list[int], stop: list[str]
    ) -> Completion:
        text, finish_reason, output_tokens = finish(tokens, self._eos_ids, stop, self._decode)
        return Completion(
            request_id=request_id,
            index=index,
            text=text,
            finish_reason=finish_reason,
            prompt_tokens=prompt_tokens,
            output_tokens=output_tokens,
            cached_prompt_tokens=None,
        )

    def _decode(self, tokens: list[int]) -> str:
        return self._tokenizer.decode(tokens, skip_special_tokens=True)


def decoding_kwargs(sampling: SamplingConfig) -> dict[str, object]:
    """``generate`` arguments matching vLLM's sampling (top_k off, greedy at temperature 0)."""
    if sampling.temperature == 0:
        return {"do_sample": False, "max_new_tokens": sampling.max_new_tokens}
    return {
        "do_sample": True,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "top_k": 0,
        "max_new_tokens": sampling.max_new_tokens,
    }


def top_logprobs(
    step_logits: Sequence[Any], tokens: list[int], k: int, decode: Callable[[list[int]], str]
) -> tuple[TokenLogprobs, ...]:
    """The ``k`` most likely tokens of each generated position of one row and their
    log-probabilities, from the raw logits ``generate`` gave at each step ([vocab] each)."""
    positions = []
    for logits, token in zip(step_logits, tokens, strict=False):
        values, ids = logits.float().log_softmax(-1).topk(k)
        top: dict[str, float] = {}
        for value, candidate in zip(values.tolist(), ids.tolist(), strict=True):
            add_candidate(top, decode([candidate]), value)
        positions.append(TokenLogprobs(token=decode([token]), top=top))
    return tuple(positions)


def eos_token_ids(generation_eos: int | list[int] | None, tokenizer_eos: int | None) -> set[int]:
    ids = generation_eos if isinstance(generation_eos, list) else [generation_eos]
    return {i for i in [*ids, tokenizer_eos] if i is not None}


def finish(
    tokens: list[int], eos_ids: set[int], stop: list[str], decode: Callable[[list[int]], str]
) -> tuple[str, str, int]:
    """(text, finish_reason, output tokens) of one generated row, the way vLLM reports them.

    A row that ended is padded up to the batch's longest row. It ended on a stop string
    if its text holds one (generation halts right there; the stop string is cut from the
    text, as vLLM and OpenAI servers do), else on an end-of-sequence token (counted, not
    shown); a row with neither ran out of tokens.
    """
    end = next((i for i, t in enumerate(tokens) if t in eos_ids), None)
    text = decode(tokens[:end])
    cut = min((pos for pos in (text.find(s) for s in stop) if pos >= 0), default=None)
    if cut is not None:
        return text[:cut], "stop", len(tokens) if end is None else end
    if end is not None:
        return text, "stop", end + 1
    return text, "length", len(tokens)
