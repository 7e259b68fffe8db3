"""Tiny stand-ins for catalog models, built here from a config (nothing downloaded).

A stand-in is a randomly initialised model of its family's architecture (two layers,
hidden size 128: it runs on a CPU in milliseconds per token and on vLLM's CPU backend),
saved as a Hugging Face folder like the real one: a causal LM, or a one-label sequence
classifier for a reward model. Its tokenizer is a real BPE vocabulary (SmolLM2's, the
*vocabulary donor*) with the family's control tokens, chat template, BOS behaviour and
pad token (none where the real model has none) from ``bolt.rehearsal.families``, and the
context length of the catalog entry. Its outputs are noise; what it keeps is every
property the pipeline's code reads from a model folder.

Stand-ins are cached by what they are made from (catalog name, family, role, context
length, donor), so a rerun of a rehearsal finds them and its fingerprints hit. Each
catalog model gets its own, as each real model gets its own engine.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from bolt.rehearsal.families import Family

# Dimensions of every stand-in. head_dim 64 is one vLLM's CPU attention supports.
HIDDEN_SIZE = 128
INTERMEDIATE_SIZE = 256
NUM_LAYERS = 2
NUM_HEADS = 2
NUM_KV_HEADS = 1  # grouped-query attention, as the Llama-3 / Mistral / Qwen2 families use
SEED = 0
BUILD_VERSION = "1"  # bump when a stand-in's contents change, so cached ones are rebuilt


class Role(StrEnum):
    causal_lm = "causal_lm"  # teachers, labellers, the base model, checklist judges
    reward_model = "reward_model"  # sequence-classifier reward backends


@dataclass(frozen=True)
class StandInSpec:
    name: str  # the catalog model it stands in for: each gets its own folder and engine
    family: Family
    role: Role
    base_model: bool  # a pretrained-only model: its turns end with the base EOS
    context_length: int

    def key(self, donor: Path) -> str:
        parts = [BUILD_VERSION, self.name, self.family.name, self.role, self.base_model]
        parts += [self.context_length, str(donor.resolve())]
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:12]


def build_stand_in(spec: StandInSpec, donor: Path, cache: Path) -> Path:
    """The stand-in folder for ``spec`` under ``cache``, built on first use."""
    folder = cache / f"{spec.name}-{spec.key(donor)}"
    if (folder / "config.json").is_file():
        return folder
    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=cache, prefix=f".{folder.name}."))
    try:
        tokenizer = family_tokenizer(spec, donor)
        tokenizer.save_pretrained(staging)
        _random_model(spec, tokenizer).save_pretrained(staging)
        staging.chmod(0o755)  # mkdtemp makes it private; Slurm jobs read it too
        staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def family_tokenizer(spec: StandInSpec, donor: Path):
    """The donor's vocabulary with the family's control tokens and chat behaviour."""
    from tokenizers import processors
    from transformers import AutoTokenizer

    family = spec.family
    tokenizer = AutoTokenizer.from_pretrained(str(donor))
    eos = family.base_eos if spec.base_model else family.eos
    tokenizer.add_special_tokens(
        {"additional_special_tokens": list(family.specials)},
        replace_extra_special_tokens=True,
    )
    tokenizer.bos_token = family.bos
    tokenizer.eos_token = eos
    tokenizer.unk_token = family.unk
    tokenizer.pad_token = family.pad
    tokenizer.chat_template = family.chat_template
    tokenizer.model_max_length = spec.context_length
    if family.prepends_bos:
        bos_id = tokenizer.convert_tokens_to_ids(family.bos)
        tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{family.bos} $A",
            pair=f"{family.bos} $A {family.bos} $B",
            special_tokens=[(family.bos, bos_id)],
        )
    else:
        tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(
            single="$A", pair="$A $B", special_tokens=[]
        )
    return tokenizer


def _random_model(spec: StandInSpec, tokenizer):
    import torch
    import transformers

    ids = tokenizer.convert_tokens_to_ids
    stop_ids = [ids(t) for t in spec.family.stop_tokens]
    config_class = getattr(transformers, spec.family.architecture)
    config = config_class(
        vocab_size=len(tokenizer),
        hidden_size=HIDDEN_SIZE,
        intermediate_size=INTERMEDIATE_SIZE,
        num_hidden_layers=NUM_LAYERS,
        num_attention_heads=NUM_HEADS,
        num_key_value_heads=NUM_KV_HEADS,
        max_position_embeddings=spec.context_length,
        bos_token_id=ids(spec.family.bos) if spec.family.bos else None,
        eos_token_id=ids(tokenizer.eos_token),
        pad_token_id=ids(spec.family.pad) if spec.family.pad else None,
        tie_word_embeddings=False,
        num_labels=1,
    )
    torch.manual_seed(SEED)
    if spec.role is Role.reward_model:
        model = transformers.AutoModelForSequenceClassification.from_config(config)
    else:
        model = transformers.AutoModelForCausalLM.from_config(config)
        model.generation_config.eos_token_id = stop_ids
        model.generation_config.bos_token_id = config.bos_token_id
        model.generation_config.pad_token_id = None
    return model.eval()
