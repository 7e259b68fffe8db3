"""Magpie: an aligned model writes user queries from its own chat template.

Xu et al., 2024, "Magpie: Alignment Data Synthesis from Scratch by Prompting Aligned
LLMs with Nothing", arXiv 2406.08464 (code: magpie-align/magpie). Given only the left
part of its chat template, up to where a user message would begin (for Llama-3:
``<|begin_of_text|><|start_header_id|>user<|end_header_id|>\\n\\n``), an aligned model
continues with a plausible user query and ends it with its end-of-turn token. A system
prompt placed before the user slot steers the domain (math, code, ...). Published
settings: queries at temperature 0.9 / top-p 1.0.

The pre-query prefix is derived from the model's own template, never from a per-family
table: the template renders a conversation whose user message is a sentinel, and the
text before the sentinel is the prefix; the text after it is the end-of-user-turn
marker (the stop string); the generation prompt's addition is the assistant header. A
generation that is empty, echoes the template, runs into the assistant's turn or is cut
by the token limit becomes a reject with its reason.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bolt.config.data import MagpieSource
from bolt.curation.sources import query_id
from bolt.engines.base import ChatRequest, Completion, Engine
from bolt.records import Query, Reject
from bolt.stages import Stage

# Letters only: templates trim, escape or title-case content, and this survives them.
SENTINEL = "MAGPIEUSERSLOTSENTINEL"
# Role of a request whose one message is a raw prompt text (see ``raw_generate``).
RAW_ROLE = "bolt-raw-prompt"
MAX_RAW_CHARS = 2000

Render = Callable[[list[dict[str, str]], bool], str]


class MagpieError(ValueError):
    """A model whose chat template cannot give a pre-query prefix."""


@dataclass(frozen=True)
class PreQueryTemplate:
    model: str
    prefix: str  # everything before the user's text
    end_marker: str  # what closes a user turn: the stop string
    user_header: str  # the user turn's opening, as the template writes it
    assistant_header: str  # what the generation prompt adds after a user turn
    special_tokens: tuple[str, ...] = ()
    system_prompt: str | None = None

    def bare(self, text: str) -> str:
        """``text`` without the special tokens (what a decoded generation shows)."""
        for token in self.special_tokens:
            text = text.replace(token, "")
        return text.strip()


def pre_query_template(
    render: Render,
    model: str,
    system_prompt: str | None = None,
    special_tokens: tuple[str, ...] = (),
) -> PreQueryTemplate:
    """Cut the rendered template at the sentinel user message (see module doc).

    ``render(messages, add_generation_prompt)`` is the model's template; it fails with
    ``MagpieError`` naming ``model`` when no user slot can be found.
    """
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    messages.append({"role": "user", "content": SENTINEL})
    try:
        closed = render(messages, False)
        opened = render(messages, True)
    except Exception as error:  # noqa: BLE001 -- a template raises anything jinja can
        raise MagpieError(
            f"the chat template of {model!r} cannot render a user turn "
            f"({type(error).__name__}: {error}); Magpie needs an instruct model's template"
        ) from None
    if closed.count(SENTINEL) != 1:
        raise MagpieError(
            f"the chat template of {model!r} has no user slot (the user message appears "
            f"{closed.count(SENTINEL)} times in its rendering); Magpie needs an instruct "
            "model's template"
        )
    prefix, _, after = closed.partition(SENTINEL)
    end_marker = after.strip()
    if not end_marker:
        raise MagpieError(
            f"the chat template of {model!r} writes nothing after a user message, so a "
            "generated query has no end-of-turn marker to stop at"
        )
    if system_prompt and system_prompt.strip() not in prefix:
        raise MagpieError(f"the chat template of {model!r} drops the system prompt")
    assistant_header = opened[len(closed) :] if opened.startswith(closed) else ""
    cut = prefix.rfind(end_marker)
    user_header = prefix[cut + len(end_marker) :] if cut >= 0 else prefix
    return PreQueryTemplate(
        model=model,
        prefix=prefix,
        end_marker=end_marker,
        user_header=user_header.strip(),
        assistant_header=assistant_header.strip(),
        special_tokens=tuple(sorted(special_tokens, key=len, reverse=True)),
        system_prompt=system_prompt,
    )


def template_of_tokenizer(
    tokenizer: Any, model: str, system_prompt: str | None = None
) -> PreQueryTemplate:
    """``pre_query_template`` on a Hugging Face tokenizer's ``apply_chat_template``."""
    if not getattr(tokenizer, "chat_template", None):
        raise MagpieError(f"{model!r} has no chat template; Magpie needs an instruct model")

    def render(messages: list[dict[str, str]], add_generation_prompt: bool) -> str:
        return tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=add_generation_prompt
        )

    decoder = getattr(tokenizer, "added_tokens_decoder", {}) or {}
    specials = {t.content for t in decoder.values() if getattr(t, "special", False)}
    specials |= set(getattr(tokenizer, "all_special_tokens", []) or [])
    return pre_query_template(render, model, system_prompt, tuple(specials))


def _appears(marker: str, text: str, bare_marker: str) -> bool:
    """``marker`` in ``text`` as written, or its special-token-free words alone on a line
    (a decoded generation drops special tokens: ``<|im_start|>user`` shows as ``user``)."""
    if marker and marker in text:
        return True
    if not bare_marker:
        return False
    return re.search(rf"(?m)^[ \t]*{re.escape(bare_marker)}[ \t:]*$", text) is not None


def bad_generation(
    text: str, template: PreQueryTemplate, finish_reason: str | None = None
) -> tuple[str, str] | None:
    """(reason, detail) when a generated query is unusable, None when it is fine."""
    stripped = text.strip()
    if not stripped:
        return "empty_generation", "the model ended its turn at once"
    if _appears(template.assistant_header, text, template.bare(template.assistant_header)):
        return "assistant_answered", "the text runs into the assistant's turn"
    if _appears(template.user_header, text, template.bare(template.user_header)):
        return "template_echo", "the text repeats the user turn's header"
    if template.system_prompt and template.system_prompt.strip() in text:
        return "template_echo", "the text repeats the system prompt"
    if any(token in text for token in template.special_tokens) or SENTINEL in text:
        return "template_echo", "the text holds the template's special tokens"
    if finish_reason == "length":
        return "unfinished_query", "the token limit cut the query before its end of turn"
    return None


def raw_generate(
    engine: Engine, prompts: list[tuple[str, str]], sampling: Any, stop: list[str]
) -> list[list[Completion]]:
    """Generate from raw prompt texts (``(request id, text)``), no chat template applied.

    Bridge until the engines take raw prompts themselves: a local engine (vLLM,
    transformers) renders a request whose one message has role ``RAW_ROLE`` as the
    tokens of its text; every other request renders as before.
    """
    _accept_raw_prompts(engine)
    requests = [ChatRequest(rid, [{"role": RAW_ROLE, "content": text}]) for rid, text in prompts]
    return engine.generate(requests, sampling, stop=stop)


def _accept_raw_prompts(engine: Any) -> None:
    tokenizer = getattr(engine, "_tokenizer", None)
    original = getattr(engine, "render_prompt", None)
    if tokenizer is None or original is None:
        raise MagpieError(
            f"the {getattr(engine, 'name', type(engine).__name__)} engine cannot take a raw "
            "prompt; Magpie needs a local engine (kind vllm or transformers)"
        )
    if getattr(engine, "_bolt_raw_prompts", False):
        return

    def render(messages: list[dict[str, str]]) -> list[int]:
        if len(messages) == 1 and messages[0]["role"] == RAW_ROLE:
            # The prefix holds its special tokens (BOS included) as text already.
            return tokenizer.encode(messages[0]["content"], add_special_tokens=False)
        return original(messages)

    engine.render_prompt = render
    engine._bolt_raw_prompts = True


def magpie_queries(
    engine: Engine,
    source: MagpieSource,
    template: PreQueryTemplate,
    start: int = 0,
    count: int | None = None,
) -> tuple[list[Query], list[Reject]]:
    """Samples ``start .. start + count`` of ``source.queries`` (all by default), as
    queries, and the bad ones as rejects. The stage shards by ``start``/``count``."""
    count = source.queries - start if count is None else min(count, source.queries - start)
    per_request = source.sampling.n
    first_request = start // per_request
    n_requests = math.ceil((start + count) / per_request) - first_request
    prompts = [(f"{source.name}-{first_request + r}", template.prefix) for r in range(n_requests)]
    outputs = raw_generate(engine, prompts, source.sampling, stop=[template.end_marker])
    samples = [c for completions in outputs for c in completions]
    offset = start - first_request * per_request
    queries, rejects = [], []
    for k, completion in enumerate(samples[offset : offset + count], start=start):
        bad = bad_generation(completion.text, template, completion.finish_reason)
        if bad is not None:
            rejects.append(
                Reject(
                    stage=Stage.curation,
                    reason=bad[0],
                    source=f"{source.name}#{k}",
                    raw=completion.text[:MAX_RAW_CHARS],
                    detail=bad[1],
                )
            )
            continue
        text = completion.text.strip()
        queries.append(
            Query(
                id=query_id(source.name, text),
                text=text,
                source=source.name,
                meta={"generator": "magpie", "model": source.model, "sample": k},
            )
        )
    return queries, rejects
