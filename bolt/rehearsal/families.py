"""What a tiny stand-in keeps of a model family: chat template, special tokens, pad token.

A rehearsal (``bolt.rehearsal``) replaces every catalog model by a randomly initialised
model of a few hundred thousand parameters. The code paths a real model exercises and a
tiny one could hide are those of its tokenizer, so each family here is written from the
behaviour of the real tokenizer files:

- **llama-3.1** (Llama-3.1/3.2/3.3 Instruct, and the base models' tokenizers): a
  ``<|begin_of_text|>`` the tokenizer itself prepends on encoding, and that the chat
  template writes too; a system block with the knowledge-cutoff and date lines on every
  conversation; ``<|eot_id|>`` ending each turn; **no pad token**.
- **llama-3** (Meta-Llama-3 Instruct): the same tokens without the date system block.
- **mistral** (Mistral-7B-Instruct v0.3): ``<s>`` prepended on encoding, ``[INST] ...
  [/INST]`` turns, the system prompt folded into the last user turn, roles that must
  alternate (the template raises otherwise), no generation prompt, **no pad token**.
- **qwen2** (Qwen2 / Qwen2.5 Instruct): ChatML with a default system prompt, no BOS
  token at all, ``<|endoftext|>`` as the pad token.

The templates are our own Jinja, written to render what the real ones render for the
messages the pipeline sends (no tool calls). A family is recognised from the catalog
entry's ``hf_id``; a model of another family needs its own stand-in (``--stand-in``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

_LLAMA3_TURNS = (
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
    " + message['content'] | trim + '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
    "{%- endif %}"
)

LLAMA3_TEMPLATE = "{{- bos_token }}" + _LLAMA3_TURNS

# Llama-3.1 writes a system block on every conversation: the knowledge cutoff, the date
# (a fixed one unless the caller passes date_string) and the user's system prompt, if any.
LLAMA31_TEMPLATE = (
    "{{- bos_token }}"
    "{%- if date_string is not defined %}{%- set date_string = '26 Jul 2024' %}{%- endif %}"
    "{%- if messages and messages[0]['role'] == 'system' %}"
    "{%- set system_message = messages[0]['content'] | trim %}"
    "{%- set messages = messages[1:] %}"
    "{%- else %}{%- set system_message = '' %}{%- endif %}"
    "{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' }}"
    "{{- 'Cutting Knowledge Date: December 2023\\n' }}"
    "{{- 'Today Date: ' + date_string + '\\n\\n' }}"
    "{{- system_message + '<|eot_id|>' }}" + _LLAMA3_TURNS
)

MISTRAL_TEMPLATE = (
    "{%- if messages and messages[0]['role'] == 'system' %}"
    "{%- set system_message = messages[0]['content'] %}"
    "{%- set loop_messages = messages[1:] %}"
    "{%- else %}{%- set loop_messages = messages %}{%- endif %}"
    "{{- bos_token }}"
    "{%- for message in loop_messages %}"
    "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{- raise_exception('After the optional system message, conversation roles must "
    "alternate user/assistant/user/assistant/...') }}"
    "{%- endif %}"
    "{%- if message['role'] == 'user' %}"
    "{%- if loop.last and system_message is defined %}"
    "{{- '[INST] ' + system_message + '\\n\\n' + message['content'] + '[/INST]' }}"
    "{%- else %}{{- '[INST] ' + message['content'] + '[/INST]' }}{%- endif %}"
    "{%- elif message['role'] == 'assistant' %}"
    "{{- ' ' + message['content'] + eos_token }}"
    "{%- else %}"
    "{{- raise_exception('Only user and assistant roles are supported, with the exception "
    "of an initial optional system message!') }}"
    "{%- endif %}"
    "{%- endfor %}"
)

QWEN2_TEMPLATE = (
    "{%- if messages and messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
    "assistant.<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if not (message['role'] == 'system' and loop.first) %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


@dataclass(frozen=True)
class Family:
    """The tokenizer behaviour a stand-in of this family reproduces."""

    name: str
    architecture: str  # the transformers config class the family's models use
    chat_template: str
    bos: str | None
    eos: str  # the instruct models' end of turn; base models end with ``base_eos``
    base_eos: str
    pad: str | None
    unk: str | None
    specials: tuple[str, ...]  # every control token the real vocabulary has
    prepends_bos: bool  # the tokenizer writes ``bos`` itself when encoding
    # generation stops at any of these (the real generation_config.json's eos_token_id)
    stop_tokens: tuple[str, ...]


_LLAMA3_SPECIALS = (
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
    "<|eom_id|>",
    "<|python_tag|>",
    "<|finetune_right_pad_id|>",
)

LLAMA31 = Family(
    name="llama-3.1",
    architecture="LlamaConfig",
    chat_template=LLAMA31_TEMPLATE,
    bos="<|begin_of_text|>",
    eos="<|eot_id|>",
    base_eos="<|end_of_text|>",
    pad=None,
    unk=None,
    specials=_LLAMA3_SPECIALS,
    prepends_bos=True,
    stop_tokens=("<|end_of_text|>", "<|eom_id|>", "<|eot_id|>"),
)

FAMILIES = {
    f.name: f
    for f in (
        LLAMA31,
        # Llama-3 has the same tokens, fewer control tokens and no date system block.
        replace(
            LLAMA31,
            name="llama-3",
            chat_template=LLAMA3_TEMPLATE,
            specials=_LLAMA3_SPECIALS[:5],
            stop_tokens=("<|end_of_text|>", "<|eot_id|>"),
        ),
        Family(
            name="mistral",
            architecture="MistralConfig",
            chat_template=MISTRAL_TEMPLATE,
            bos="<s>",
            eos="</s>",
            base_eos="</s>",
            pad=None,
            unk="<unk>",
            specials=("<unk>", "<s>", "</s>", "[INST]", "[/INST]"),
            prepends_bos=True,
            stop_tokens=("</s>",),
        ),
        Family(
            name="qwen2",
            architecture="Qwen2Config",
            chat_template=QWEN2_TEMPLATE,
            bos=None,
            eos="<|im_end|>",
            base_eos="<|endoftext|>",
            pad="<|endoftext|>",
            unk=None,
            specials=("<|endoftext|>", "<|im_start|>", "<|im_end|>"),
            prepends_bos=False,
            stop_tokens=("<|im_end|>", "<|endoftext|>"),
        ),
    )
}

# hub id (lower case) -> family; the first pattern that matches wins.
_PATTERNS = (
    (re.compile(r"llama-?3[.-]?[123]|llama3[.-]?[123]"), "llama-3.1"),
    (re.compile(r"llama-?3"), "llama-3"),
    (re.compile(r"mistral|mixtral"), "mistral"),
    (re.compile(r"qwen-?2"), "qwen2"),
)


def family_of(hf_id: str) -> Family | None:
    """The family of the model at hub id ``hf_id``, or None when none is known."""
    lowered = hf_id.lower()
    for pattern, name in _PATTERNS:
        if pattern.search(lowered):
            return FAMILIES[name]
    return None


def is_base_model(hf_id: str) -> bool:
    """Whether ``hf_id`` names a pretrained-only model (it ends turns with the base EOS)."""
    return not re.search(r"instruct|chat|-it\b|rlhf|reward|armorm", hf_id.lower())
