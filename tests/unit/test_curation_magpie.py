"""Magpie's pre-query prefix and bad-generation check (Xu et al., 2024, arXiv 2406.08464)."""

from __future__ import annotations

import jinja2
import pytest

from bolt.config.data import MagpieSource
from bolt.curation.magpie import (
    MagpieError,
    bad_generation,
    magpie_queries,
    pre_query_template,
    template_of_tokenizer,
)
from bolt.engines.base import Completion

# Llama-3-Instruct's template, as its tokenizer_config.json writes it.
LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    "+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"
    "{% endif %}"
)
LLAMA3_SPECIALS = ("<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")


def _render(source: str):
    template = jinja2.Environment().from_string(source)

    def render(messages, add_generation_prompt):
        return template.render(
            messages=messages,
            add_generation_prompt=add_generation_prompt,
            bos_token="<|begin_of_text|>",
        )

    return render


def test_llama3_prefix_is_the_published_one():
    t = pre_query_template(_render(LLAMA3), "llama-3-8b-instruct", special_tokens=LLAMA3_SPECIALS)
    assert t.prefix == "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"
    assert t.end_marker == "<|eot_id|>"
    assert t.assistant_header == "<|start_header_id|>assistant<|end_header_id|>"
    assert t.user_header == "<|begin_of_text|><|start_header_id|>user<|end_header_id|>"


def test_llama3_system_prompt_sits_before_the_user_slot():
    t = pre_query_template(
        _render(LLAMA3), "llama-3", "You are a math tutor.", special_tokens=LLAMA3_SPECIALS
    )
    assert t.prefix == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a math tutor."
        "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
    )
    assert t.user_header == "<|start_header_id|>user<|end_header_id|>"


@pytest.fixture(scope="module")
def smollm2_tokenizer(smollm2_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smollm2_path)


def test_smollm2_prefix_from_its_real_template(smollm2_tokenizer):
    t = template_of_tokenizer(smollm2_tokenizer, "smollm2-135m-instruct")
    # SmolLM2's template writes its default system prompt when none is given.
    assert t.prefix.startswith("<|im_start|>system\n")
    assert t.prefix.endswith("<|im_end|>\n<|im_start|>user\n")
    assert t.end_marker == "<|im_end|>"
    assert t.assistant_header == "<|im_start|>assistant"
    assert "<|im_start|>" in t.special_tokens
    steered = template_of_tokenizer(smollm2_tokenizer, "smollm2", "You write Python puzzles.")
    assert steered.prefix == (
        "<|im_start|>system\nYou write Python puzzles.<|im_end|>\n<|im_start|>user\n"
    )


def test_a_template_without_a_user_slot_fails_naming_the_model():
    no_user = "{% for m in messages %}{% if m['role'] == 'system' %}{{ m['content'] }}{% endif %}{% endfor %}"
    with pytest.raises(MagpieError, match="'base-model'.*no user slot"):
        pre_query_template(_render(no_user), "base-model")

    def render(messages, add):
        raise jinja2.TemplateError("Conversation roles must alternate")

    with pytest.raises(MagpieError, match="'odd-model'.*cannot render"):
        pre_query_template(render, "odd-model")
    with pytest.raises(MagpieError, match="'plain'.*nothing after a user message"):
        pre_query_template(
            _render("{% for m in messages %}{{ m['content'] }}{% endfor %}"), "plain"
        )


def test_a_tokenizer_without_a_template_fails_naming_the_model():
    class Bare:
        chat_template = None

    with pytest.raises(MagpieError, match="'gpt2-base' has no chat template"):
        template_of_tokenizer(Bare(), "gpt2-base")


@pytest.fixture(scope="module")
def chatml(smollm2_tokenizer):
    return template_of_tokenizer(smollm2_tokenizer, "smollm2", "You write math problems.")


@pytest.mark.parametrize(
    ("text", "finish", "reason"),
    [
        ("", "stop", "empty_generation"),
        ("  \n ", "stop", "empty_generation"),
        ("What is 2 + 2?\nassistant\n2 + 2 = 4.", "stop", "assistant_answered"),
        ("What is 2+2?<|im_start|>assistant\n4", "stop", "assistant_answered"),
        ("user\nWhat is 2 + 2?", "stop", "template_echo"),
        ("You write math problems. Here is one.", "stop", "template_echo"),
        ("Solve <|im_end|> this", "stop", "template_echo"),
        ("Find all primes p such that p + 2 and", "length", "unfinished_query"),
    ],
)
def test_bad_generations_are_named(chatml, text, finish, reason):
    assert bad_generation(text, chatml, finish)[0] == reason


def test_good_generations_pass(chatml):
    assert bad_generation("Find all primes p such that p + 2 is prime too.", chatml, "stop") is None
    # "assistant" inside a sentence is not a turn header.
    assert bad_generation("Act as my assistant and plan a trip.", chatml, "stop") is None


def test_llama3_bad_generation_on_bare_headers():
    t = pre_query_template(_render(LLAMA3), "llama-3", special_tokens=LLAMA3_SPECIALS)
    # The header's words count only alone on their line.
    assert bad_generation("How do I sort?assistant\n\nUse sorted().", t) is None
    assert bad_generation("How do I sort a list?\nassistant\n\nUse sorted().", t)[0] == (
        "assistant_answered"
    )


class FakeEngine:
    """Records the token ids each raw request renders to; answers from a script."""

    name = "transformers"

    def __init__(self, texts, tokenizer):
        self.texts, self._tokenizer, self.rendered = list(texts), tokenizer, []

    def render_prompt(self, messages):
        raise AssertionError("a raw prompt must not be chat-rendered")

    def generate(self, requests, sampling, *, stop=None, guided_regex=None):
        self.stop = stop
        out = []
        for r in requests:
            self.rendered.append(self.render_prompt(r.messages))
            out.append(
                [
                    Completion(r.id, i, self.texts.pop(0), "stop", 3, 5, None)
                    for i in range(sampling.n)
                ]
            )
        return out


def test_magpie_queries_split_good_and_bad(smollm2_tokenizer, chatml):
    engine = FakeEngine(
        ["What is 7 * 8?", "", "user\nhi", "Prove that sqrt(2) is irrational."], smollm2_tokenizer
    )
    source = MagpieSource(kind="magpie", name="mp", model="smollm2", queries=4)
    queries, rejects = magpie_queries(engine, source, chatml)
    assert [q.text for q in queries] == ["What is 7 * 8?", "Prove that sqrt(2) is irrational."]
    assert [(r.reason, r.source) for r in rejects] == [
        ("empty_generation", "mp#1"),
        ("template_echo", "mp#2"),
    ]
    assert engine.stop == ["<|im_end|>"]
    assert engine.rendered[0] == smollm2_tokenizer.encode(chatml.prefix, add_special_tokens=False)
    assert queries[0].id.startswith("mp-") and queries[1].meta["sample"] == 3
