"""The pad-token fallback every collation shares (SFT, DPO, the reference pass), and
models fetched by id into a job's own scratch."""

from __future__ import annotations

import logging

import pytest

from bolt.config import StorageConfig
from bolt.config_loader import load_config
from bolt.records import Message, PreferencePair
from bolt.stages import Stage
from bolt.store import ArtifactStore, Manifest
from bolt.train.data import tokenize_with_labels
from bolt.train.model_ref import FETCHED, fetch_model, parse_model_id
from bolt.train.modeling import pad_token_id
from bolt.train.preference_data import collate_pairs, tokenize_pair
from tests.conftest import TINY_CONFIG


@pytest.fixture
def padless(smollm2_path):
    """SmolLM2's tokenizer with its pad token removed, as Llama-3.1 and Mistral-v0.3 ship."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2_path)
    tokenizer.pad_token = None
    assert tokenizer.pad_token_id is None
    return tokenizer


def test_no_pad_token_falls_back_to_eos_and_says_so(padless, caplog):
    with caplog.at_level(logging.WARNING, logger="bolt.train.modeling"):
        assert pad_token_id(padless) == padless.eos_token_id
    assert "no pad token: padding with its eos token" in caplog.text


def test_the_fallback_order_is_pad_eos_unk_then_zero(caplog):
    class Tok:
        def __init__(self, pad=None, eos=None, unk=None):
            self.pad_token_id, self.eos_token_id, self.unk_token_id = pad, eos, unk

    assert pad_token_id(Tok(pad=7, eos=2)) == 7
    assert pad_token_id(Tok(eos=2, unk=1)) == 2
    assert pad_token_id(Tok(unk=1)) == 1
    with caplog.at_level(logging.WARNING, logger="bolt.train.modeling"):
        assert pad_token_id(Tok()) == 0
    assert "padding with id 0" in caplog.text


def test_dpo_and_sft_collation_pad_with_the_fallback(padless):
    from bolt.train.data import collate_padded
    from bolt.train.dpo import make_collator

    pair = PreferencePair(
        prompt_id="p0",
        prompt=[Message(role="user", content="Name a colour.")],
        chosen="Blue, the colour of a clear sky at noon.",
        rejected="Red.",
        chosen_reward=1.0,
        rejected_reward=0.0,
        iteration=1,
    )
    tokenized = tokenize_pair(padless, pair, 64)
    pad = pad_token_id(padless)
    batch = collate_pairs([tokenized], pad)
    short = len(tokenized.rejected_ids)
    assert (batch["input_ids"][1, short:] == pad).all()
    row = {
        "chosen_ids": tokenized.chosen_ids,
        "chosen_labels": tokenized.chosen_labels,
        "rejected_ids": tokenized.rejected_ids,
        "rejected_labels": tokenized.rejected_labels,
        "ref_chosen_logp": -1.0,
        "ref_rejected_logp": -2.0,
    }
    assert make_collator(pad)([row])["input_ids"].shape[0] == 2
    example = tokenize_with_labels(padless, [{"role": "user", "content": "Hi"}], 32)
    other = tokenize_with_labels(padless, [{"role": "user", "content": "Hello there, you"}], 32)
    rows = [{"input_ids": e.input_ids, "labels": e.labels} for e in (example, other)]
    assert (collate_padded(rows, pad)["input_ids"][0, len(example.input_ids) :] == pad).all()


def test_model_ids():
    assert parse_model_id("sft/0123456789abcdef") == ("sft", "0123456789abcdef")
    assert parse_model_id("online-policy/fedcba") == ("online-policy", "fedcba")
    assert parse_model_id("catalog/tiny") == ("catalog", "tiny")
    assert parse_model_id("tiny") == ("catalog", "tiny")
    with pytest.raises(ValueError, match="names no model"):
        parse_model_id("online-pairs/abc")


def test_a_stored_model_is_fetched_once_into_the_job_scratch(tmp_path):
    store = ArtifactStore.from_config(StorageConfig(root=f"file://{tmp_path}/store"))
    source = tmp_path / "model"
    source.mkdir()
    (source / "config.json").write_text("{}")
    files = store.put_dir(Stage.sft, "0123456789abcdef", "model", source)
    store.commit(
        Manifest(
            stage=Stage.sft,
            fingerprint="0123456789abcdef",
            code_version="1",
            config={},
            files=files,
        )
    )
    cfg = load_config(TINY_CONFIG)
    folder = fetch_model(cfg, store, "sft/0123456789abcdef", tmp_path / "scratch")
    assert folder == str(tmp_path / "scratch/models/sft/0123456789abcdef")
    assert (tmp_path / "scratch/models/sft/0123456789abcdef/config.json").read_text() == "{}"
    marker = tmp_path / "scratch/models/sft/0123456789abcdef" / FETCHED
    assert marker.is_file()
    (tmp_path / "scratch/models/sft/0123456789abcdef/config.json").write_text("changed")
    fetch_model(cfg, store, "sft/0123456789abcdef", tmp_path / "scratch")  # fetched once
    assert (tmp_path / "scratch/models/sft/0123456789abcdef/config.json").read_text() == "changed"
    marker.unlink()  # an interrupted fetch is redone whole
    fetch_model(cfg, store, "sft/0123456789abcdef", tmp_path / "scratch")
    assert (tmp_path / "scratch/models/sft/0123456789abcdef/config.json").read_text() == "{}"
