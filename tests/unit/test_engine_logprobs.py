"""Top log-probabilities from the engines, asked for by a caller only, and P(Yes) read from them.

Hand-built rows: vLLM's per-position ``{token id: Logprob}``, an OpenAI chat completion
with ``logprobs.content``, transformers' per-step logits; then the yes/no judge that
reads them and counts which path each verdict took.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from bolt.config import EngineConfig, ModelEntry, RewardBackend, RewardKind, SamplingConfig
from bolt.engines.base import (
    ChatRequest,
    Completion,
    Deadline,
    EngineBase,
    EngineError,
    TokenLogprobs,
)
from bolt.engines.hf_engine import top_logprobs
from bolt.engines.openai_engine import chat_arguments, to_completions
from bolt.engines.vllm_engine import position_logprobs, sampling_params
from bolt.engines.vllm_engine import to_completions as vllm_completions
from bolt.rewards.scoring import rewards_identity
from bolt.rewards.verdicts import (
    FROM_LOGPROBS,
    NO_VERDICT,
    PARSED,
    VERDICT_TOP_LOGPROBS,
    EngineYesNoJudge,
    p_yes_from_logprobs,
)

LN = math.log


def position(token: str, **probabilities: float) -> TokenLogprobs:
    return TokenLogprobs(token, {t.replace("_", " "): LN(p) for t, p in probabilities.items()})


# ---------------------------------------------------------------- reading P(Yes)


def test_p_yes_is_read_where_the_verdict_word_was_chosen():
    reply = (position("Yes", Yes=0.6, No=0.2, The=0.2),)
    assert p_yes_from_logprobs(reply) == pytest.approx(0.75)
    # "Answer", ":" and markdown are passed over as parse_verdict passes them over.
    lead = (
        position("Answer", Answer=0.9, Yes=0.05, No=0.05),
        position(":", **{":": 0.99}),
        position(" **", _No=0.1),
        position(" No", _No=0.3, _Yes=0.1, no=0.1),
    )
    assert p_yes_from_logprobs(lead) == pytest.approx(0.1 / 0.5)


def test_no_logprob_verdict_when_the_reply_opens_with_another_word():
    assert p_yes_from_logprobs((position("The", The=0.9, Yes=0.05, No=0.05),)) is None
    assert p_yes_from_logprobs(()) is None
    assert p_yes_from_logprobs((position(":", **{":": 1.0}),)) is None


class LogprobEngine:
    """Replies scripted as (text, logprobs or None); records what the judge asked for."""

    name = model = model_path = "scripted"

    def __init__(self, replies):
        self.replies, self.asked = replies, []

    def generate(self, requests, sampling, *, stop=None, guided_regex=None, logprobs=None):
        self.asked.append(logprobs)
        return [
            [Completion(r.id, 0, text, "stop", 20, 1, None, logprobs=positions)]
            for r, (text, positions) in zip(requests, self.replies, strict=True)
        ]


def test_engine_judge_reads_logprobs_where_given_and_parses_elsewhere_counting_each():
    engine = LogprobEngine(
        [
            ("Yes", (position("Yes", Yes=0.9, No=0.1),)),
            ("No", None),  # a server that ignored the request
            ("Hmm, hard to say.", (position("Hmm", Hmm=0.8, Yes=0.1, No=0.1),)),
        ]
    )
    judge = EngineYesNoJudge(engine)
    verdicts = judge.judge(["a", "b", "c"])
    assert engine.asked == [VERDICT_TOP_LOGPROBS]
    assert verdicts[0].source == FROM_LOGPROBS and verdicts[0].p_yes == pytest.approx(0.9)
    assert (verdicts[1].source, verdicts[1].p_yes) == (PARSED, 0.0)
    assert (verdicts[2].source, verdicts[2].p_yes, verdicts[2].reason) == (PARSED, None, NO_VERDICT)
    assert judge.stats[FROM_LOGPROBS] == 1 and judge.stats[PARSED] == 2
    assert judge.stats[f"rejected.{NO_VERDICT}"] == 1


# ---------------------------------------------------------------- engines


class Recorder(EngineBase):
    def __init__(self):
        self.calls: list[int | None] = []

    def _generate(self, requests, sampling, stop, guided_regex, deadline, logprobs):
        assert isinstance(deadline, Deadline)
        self.calls.append(logprobs)
        return [[Completion(r.id, 0, "x", "stop", 1, 1, None)] for r in requests]


def test_logprobs_are_passed_through_only_when_asked_and_bounded():
    engine, request = Recorder(), [ChatRequest("r", [{"role": "user", "content": "q"}])]
    engine.generate(request, SamplingConfig())
    engine.generate(request, SamplingConfig(), logprobs=5)
    assert engine.calls == [None, 5]
    for bad in (0, 21):
        with pytest.raises(EngineError, match="logprobs must be 1 to 20"):
            engine.generate(request, SamplingConfig(), logprobs=bad)


def test_vllm_sampling_params_ask_for_logprobs_only_when_told():
    assert sampling_params(SamplingConfig(), None, None).logprobs is None
    assert sampling_params(SamplingConfig(), None, None, 7).logprobs == 7


def logprob(value: float, text: str | None) -> SimpleNamespace:
    return SimpleNamespace(logprob=value, rank=1, decoded_token=text)


def test_vllm_positions_become_token_texts_with_the_chosen_token():
    positions = [
        {11: logprob(LN(0.7), "Yes"), 12: logprob(LN(0.2), " No"), 13: logprob(LN(0.1), "Yes")},
        {2: logprob(-0.01, "")},
    ]
    first, second = position_logprobs([11, 2], positions)
    assert first.token == "Yes"
    # Two ids that decode to the same text share one entry, probabilities summed.
    assert first.top["Yes"] == pytest.approx(LN(0.8)) and first.top[" No"] == pytest.approx(LN(0.2))
    assert second == TokenLogprobs("", {"": -0.01})


def test_vllm_completions_carry_logprobs_only_when_the_output_has_them():
    sample = SimpleNamespace(index=0, text="Yes", finish_reason="stop", token_ids=[11])
    plain = SimpleNamespace(
        prompt_token_ids=[1, 2], num_cached_tokens=0, outputs=[replace_ns(sample, logprobs=None)]
    )
    assert vllm_completions("r", plain)[0].logprobs is None
    rich = SimpleNamespace(
        prompt_token_ids=[1, 2],
        num_cached_tokens=0,
        outputs=[replace_ns(sample, logprobs=[{11: logprob(-0.1, "Yes")}])],
    )
    assert vllm_completions("r", rich)[0].logprobs == (TokenLogprobs("Yes", {"Yes": -0.1}),)


def replace_ns(ns: SimpleNamespace, **fields) -> SimpleNamespace:
    return SimpleNamespace(**{**vars(ns), **fields})


def test_openai_request_asks_for_top_logprobs_only_when_told():
    request, sampling = ChatRequest("r", [{"role": "user", "content": "q"}]), SamplingConfig()
    plain = chat_arguments("m", request, sampling, None, None)
    assert "logprobs" not in plain and "top_logprobs" not in plain
    asked = chat_arguments("m", request, sampling, None, None, 4)
    assert asked["logprobs"] is True and asked["top_logprobs"] == 4


def chat_response(choice_logprobs: dict | None) -> dict:
    choice = {
        "index": 0,
        "message": {"role": "assistant", "content": "Yes"},
        "finish_reason": "stop",
    }
    if choice_logprobs is not None:
        choice["logprobs"] = choice_logprobs
    return {"choices": [choice], "usage": {"prompt_tokens": 9, "completion_tokens": 1}}


def test_openai_choice_logprobs_become_positions_and_bad_candidates_are_left_out():
    content = [
        {
            "token": "Yes",
            "logprob": -0.2,
            "top_logprobs": [
                {"token": "Yes", "logprob": -0.2},
                {"token": "No", "logprob": -1.8},
                {"token": None, "logprob": -3.0},
                {"token": "Maybe", "logprob": "bad"},
            ],
        }
    ]
    (completion,) = to_completions("r", chat_response({"content": content}), 1)
    assert completion.logprobs == (TokenLogprobs("Yes", {"Yes": -0.2, "No": -1.8}),)
    (without,) = to_completions("r", chat_response(None), 1)
    assert without.logprobs is None


def test_transformers_step_logits_give_the_top_k_of_each_position():
    import torch

    vocab = ["<eos>", "Yes", "No", "Maybe"]
    decode = lambda ids: "".join(vocab[i] for i in ids)
    steps = [torch.log(torch.tensor([0.1, 0.6, 0.2, 0.1])), torch.tensor([5.0, 0.0, 0.0, 0.0])]
    first, second = top_logprobs(steps, [1, 0], 2, decode)
    assert first.token == "Yes" and set(first.top) == {"Yes", "No"}
    assert first.top["Yes"] == pytest.approx(LN(0.6)) and first.top["No"] == pytest.approx(LN(0.2))
    assert second.token == "<eos>"


# ---------------------------------------------------------------- fingerprints


def test_only_an_engine_judged_principles_backend_gains_the_verdict_reading():
    catalog = {"judge": ModelEntry(path="/m")}
    plain = [RewardBackend(kind=RewardKind.format, name="format")]
    assert set(rewards_identity(plain, catalog)) == {"rewards", "reward_models"}
    local = RewardBackend(
        kind=RewardKind.principles, name="p", model="judge", principles=[{"text": "x"}]
    )
    assert "engine_verdicts" not in rewards_identity([local], catalog)
    served = local.model_copy(update={"judge_engine": EngineConfig(kind="transformers")})
    assert "engine_verdicts" in rewards_identity([served], catalog)
