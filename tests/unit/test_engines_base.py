"""Engine records, running stats, and the transformers engine's pure finish rules."""

from __future__ import annotations

import pytest

from bolt.config import EngineConfig, SamplingConfig
from bolt.engines import open_engine
from bolt.engines.base import Completion, Engine, EngineStats, tally
from bolt.engines.hf_engine import decoding_kwargs, eos_token_ids, finish

EOS = 2


def completion(
    request_id: str, index: int, prompt: int, output: int, cached: int | None
) -> Completion:
    return Completion(request_id, index, "text", "stop", prompt, output, cached)


def test_tally_counts_each_prompt_once_and_every_sample():
    outputs = [
        [completion("a", 0, 100, 5, 64), completion("a", 1, 100, 7, 64)],
        [completion("b", 0, 50, 3, None), completion("b", 1, 50, 4, None)],
    ]
    stats = tally(outputs, seconds=2.0)
    assert stats == EngineStats(
        requests=2, prompt_tokens=150, output_tokens=19, cached_prompt_tokens=64, seconds=2.0
    )
    assert stats.prefix_cache_hit_rate == pytest.approx(64 / 150)
    assert stats.output_tokens_per_s == pytest.approx(9.5)


def test_stats_add_up_and_start_empty():
    one = EngineStats(1, 10, 5, 4, 1.0)
    assert one + one == EngineStats(2, 20, 10, 8, 2.0)
    assert EngineStats().prefix_cache_hit_rate == 0.0 and EngineStats().output_tokens_per_s == 0.0
    assert tally([], 0.0) == EngineStats()


def decode(tokens: list[int]) -> str:
    """A toy tokenizer: token t is the letter chr(ord('a') + t); EOS (2) is special, unshown."""
    return "".join("" if t == EOS else chr(ord("a") + t) for t in tokens)


def test_a_row_ended_by_eos_stops_and_counts_the_eos():
    assert finish([0, 1, EOS, EOS, EOS], {EOS}, [], decode) == ("ab", "stop", 3)


def test_a_row_ended_by_a_stop_string_loses_it_and_the_padding():
    # "abd" holds the stop "bd": generation halted there and the row was padded with EOS.
    assert finish([0, 1, 3, EOS, EOS], {EOS}, ["bd"], decode) == ("a", "stop", 3)


def test_a_row_without_an_end_ran_out_of_length():
    assert finish([0, 1, 0, 1], {EOS}, ["zz"], decode) == ("abab", "length", 4)


def test_eos_ids_merge_generation_config_and_tokenizer():
    assert eos_token_ids([2, 7], 2) == {2, 7}
    assert eos_token_ids(None, 0) == {0}


def test_decoding_is_greedy_at_temperature_zero_and_plain_nucleus_otherwise():
    assert decoding_kwargs(SamplingConfig(temperature=0, max_new_tokens=9)) == {
        "do_sample": False,
        "max_new_tokens": 9,
    }
    sampled = decoding_kwargs(SamplingConfig(temperature=0.7, top_p=0.9, max_new_tokens=9))
    assert sampled["do_sample"] and sampled["top_k"] == 0 and sampled["top_p"] == 0.9


def test_open_engine_closes_on_the_way_out():
    cfg = EngineConfig(kind="openai", base_url="http://127.0.0.1:9/v1")
    with pytest.raises(RuntimeError, match="boom"), open_engine(cfg, "m", seed=0) as engine:
        assert isinstance(engine, Engine)
        raise RuntimeError("boom")
    assert engine._client.is_closed()
