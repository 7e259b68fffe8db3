"""Build the few-shot bootstrapping prompt (BOLT §3.1).

Each query gets ``k`` of the in-context LongCoT examples (3 of 10 in the paper),
chosen by a seeded hash of the query id, so the choice survives reruns and resharding.
The prompt is a chat: the instruction as the system turn, then each example as a
user/assistant exchange, then the query. Queries with the same example subset share
their whole prefix up to the query, which is what prefix caching reuses; ``group_key``
is what the stage sorts by so such queries sit next to each other.
"""

from __future__ import annotations

import hashlib
import random
import re

from bolt import longcot
from bolt.prompts import LongCoTExample, render_template


def choose_examples(
    query_id: str, examples: list[LongCoTExample], k: int, seed: int
) -> list[LongCoTExample]:
    """``k`` examples for this query, in a stable order; same id and seed, same choice."""
    if k > len(examples):
        raise ValueError(
            f"bootstrap.examples_per_prompt = {k} but only {len(examples)} examples exist"
        )
    digest = hashlib.sha256(f"{seed}:{query_id}".encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    # Sample from a canonical order: the choice must not depend on how files were listed.
    return sorted(rng.sample(sorted(examples, key=lambda e: e.id), k), key=lambda e: e.id)


def group_key(chosen: list[LongCoTExample]) -> str:
    return "+".join(e.id for e in chosen)


def system_text() -> str:
    return render_template(
        "bootstrap_system.j2",
        thoughts_open=longcot.THOUGHTS_OPEN,
        thoughts_close=longcot.THOUGHTS_CLOSE,
        response_open=longcot.RESPONSE_OPEN,
        response_close=longcot.RESPONSE_CLOSE,
    )


def build_messages(
    query: str, chosen: list[LongCoTExample], instruction: str
) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": instruction}]
    for example in chosen:
        messages.append({"role": "user", "content": example.query})
        messages.append({"role": "assistant", "content": example.assistant_text()})
    messages.append({"role": "user", "content": query})
    return messages


def longcot_regex(max_chars: tuple[int, int] | None = None) -> str:
    """The shape guided decoding forces: thoughts, then a response, nothing after.

    Structured-output backends (xgrammar, outlines) take no look-arounds, so a part's
    body may hold "<" only before a space, "=" or a digit (comparisons survive; HTML
    tags inside answers do not: leave guided decoding off for markup-heavy queries).
    ``max_chars`` bounds (thoughts, response) so a small token budget still closes
    both parts instead of truncating every sample.
    """
    char, first = r"([^<]|<[ =0-9])", r"[^<\s]"  # a part starts with a visible character

    def body(limit: int | None) -> str:
        return f"{first}{char}{{0,{limit - 1}}}" if limit else f"{first}{char}*"

    thoughts, response = (body(limit) for limit in (max_chars or (None, None)))
    return (
        f"{re.escape(longcot.THOUGHTS_OPEN)}\\n{thoughts}{re.escape(longcot.THOUGHTS_CLOSE)}\\n\\n"
        f"{re.escape(longcot.RESPONSE_OPEN)}\\n{response}{re.escape(longcot.RESPONSE_CLOSE)}"
    )
