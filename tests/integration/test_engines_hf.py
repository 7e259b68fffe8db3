"""The transformers engine on the real SmolLM2 (CPU, a few seconds)."""

from __future__ import annotations

import pytest

from bolt.config import EngineConfig, SamplingConfig
from bolt.engines import make_engine
from bolt.engines.base import ChatRequest, EngineError

QUESTIONS = ["What is 2 + 2?", "Name a primary colour.", "What is the capital of France?"]
MAX_TOKENS = 16


@pytest.fixture(scope="module")
def hf_engine(smollm2_path):
    import torch

    # One intra-op thread: on a machine whose two cores are shared, two OpenMP threads
    # spin-wait on each other and generate ~20x slower (measured: 82 s against 4 s).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    engine = make_engine(EngineConfig(kind="transformers"), str(smollm2_path), seed=0, device="cpu")
    yield engine
    engine.close()
    torch.set_num_threads(threads)


def requests() -> list[ChatRequest]:
    return [ChatRequest(f"q{i}", [{"role": "user", "content": q}]) for i, q in enumerate(QUESTIONS)]


def test_n_samples_per_request_with_counts_and_finish_reasons(hf_engine):
    batch = requests()
    out = hf_engine.generate(
        batch, SamplingConfig(n=2, temperature=0.8, top_p=0.95, max_new_tokens=MAX_TOKENS)
    )
    assert [[(c.request_id, c.index) for c in cs] for cs in out] == [
        [(r.id, 0), (r.id, 1)] for r in batch
    ]
    for request, completions in zip(batch, out, strict=True):
        for c in completions:
            assert c.prompt_tokens == hf_engine.count_prompt_tokens(request.messages) > 10
            assert 1 <= c.output_tokens <= MAX_TOKENS and c.text
            assert (c.finish_reason == "length") == (
                c.output_tokens == MAX_TOKENS and c.finish_reason != "stop"
            )
            assert c.cached_prompt_tokens is None
    assert hf_engine.stats.requests >= 3 and hf_engine.stats.output_tokens > 0


def test_stop_strings_end_the_sample_and_are_cut(hf_engine):
    out = hf_engine.generate(
        requests()[:1], SamplingConfig(n=1, temperature=0, max_new_tokens=MAX_TOKENS), stop=[" "]
    )
    assert out[0][0].finish_reason == "stop" and " " not in out[0][0].text


def test_greedy_samples_agree(hf_engine):
    out = hf_engine.generate(requests()[:1], SamplingConfig(n=2, temperature=0, max_new_tokens=8))
    assert out[0][0].text == out[0][1].text


def test_guided_decoding_is_refused_not_ignored(hf_engine):
    with pytest.raises(EngineError, match="guided"):
        hf_engine.generate(requests()[:1], SamplingConfig(), guided_regex="a+")
