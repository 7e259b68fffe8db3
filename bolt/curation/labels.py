"""Difficulty criteria and topic labels: prompts and strict, tolerant parsers.

BOLT §3.1 labels each query on 7 binary criteria with an LLM and keeps those meeting
at least 5. The parser accepts what instruct models actually write (bullets, bold,
"Yes"/"No", extra prose around the lines) but never guesses: a criterion that is
missing or ambiguous makes the whole answer unparsable, and the query is set aside
with the raw text.
"""

from __future__ import annotations

import re

from bolt.prompts import render_template

CRITERIA = (
    "specificity",
    "domain_knowledge",
    "complexity",
    "problem_solving",
    "creativity",
    "technical_accuracy",
    "real_world_application",
)

_VALUE_WORDS = {"1": 1, "0": 0, "yes": 1, "no": 0, "true": 1, "false": 0}
_LINE_RE = re.compile(
    r"^[\s*\-#>`\d.)]*\**\s*([a-z][a-z _-]*?)\s*\**\s*[:=]\s*\**\s*(1|0|yes|no|true|false)\b",
    re.IGNORECASE,
)
_TOPIC_RE = re.compile(r"topic\s*[:=]\s*\**\s*([^\n*]+)", re.IGNORECASE)


def difficulty_prompt(query: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": render_template("difficulty.j2", query=query)}]


def topic_prompt(query: str, topics: list[str]) -> list[dict[str, str]]:
    return [{"role": "user", "content": render_template("topic.j2", query=query, topics=topics)}]


def criteria_regex() -> str:
    """The answer shape guided decoding forces: one ``name: 0|1`` line per criterion."""
    return "\n".join(f"{c}: [01]" for c in CRITERIA)


def topic_regex(topics: list[str]) -> str:
    return "Topic: (" + "|".join(re.escape(t) for t in topics) + ")"


def parse_criteria(text: str) -> dict[str, int] | None:
    """{criterion: 0|1} for all 7 criteria, or None when any is missing or contradictory."""
    found: dict[str, int] = {}
    for line in text.splitlines():
        match = _LINE_RE.match(line.strip())
        if not match:
            continue
        name = re.sub(r"[\s-]+", "_", match.group(1).strip().lower())
        if name not in CRITERIA:
            continue
        value = _VALUE_WORDS[match.group(2).lower()]
        if found.get(name, value) != value:
            return None
        found[name] = value
    return found if len(found) == len(CRITERIA) else None


def parse_topic(text: str, topics: list[str]) -> str | None:
    """The topic named after ``Topic:`` (or alone on the answer), if it is in the list."""
    by_key = {_topic_key(t): t for t in topics}
    match = _TOPIC_RE.search(text)
    candidate = match.group(1) if match else text.strip().splitlines()[0] if text.strip() else ""
    return by_key.get(_topic_key(candidate))


def _topic_key(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.strip().strip(".`'\"").lower()).strip("_")
