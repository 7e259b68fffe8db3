"""Finding a JSON object inside free text written by a model or a judge.

Judges asked for JSON (WildBench) and models asked for a JSON grid (ZebraLogic) wrap it
in prose or in a fenced block. ZeroEval's ``extract_last_complete_json`` takes the last
balanced ``{...}`` of the text; we do the same, but skip braces inside JSON strings and
accept raw newlines inside strings (ZeroEval deletes every newline before ``json.loads``
for that reason, which also joins words split across lines).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

_FENCED_JSON = re.compile(r"```(?:json|JSON)?\s*\n(.*?)```", re.DOTALL)


def _balanced_objects(text: str) -> Iterator[str]:
    """Every top-level ``{...}`` span of ``text``, in order, ignoring braces in strings.

    A brace that never closes (``\\boxed{`` cut off, a stray ``{`` in prose) would hide
    every object after it, so the scan restarts just after such a brace.
    """
    pos = 0
    while pos < len(text):
        depth, start, in_string, escaped = 0, -1, False, False
        for i in range(pos, len(text)):
            char = text[i]
            if in_string:
                if escaped:
                    escaped = False
                elif char == "\\":
                    escaped = True
                elif char == '"':
                    in_string = False
            elif char == '"' and depth > 0:
                in_string = True
            elif char == "{":
                if depth == 0:
                    start = i
                depth += 1
            elif char == "}" and depth > 0:
                depth -= 1
                if depth == 0:
                    yield text[start : i + 1]
        if depth == 0:
            return
        pos = start + 1


def _loads_object(candidate: str) -> dict[str, Any] | None:
    try:
        value = json.loads(candidate, strict=False)  # strict=False: raw newlines in strings
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def last_json_object(text: str, required_key: str) -> dict[str, Any] | None:
    """The last JSON object in ``text`` that has ``required_key``; None when there is none.

    Fenced blocks (```json ... ```) are tried first, last to first, then every balanced
    object of the whole text, last to first: a model often shows an example object
    before its real answer, and the answer comes last.
    """
    fenced = [obj for m in _FENCED_JSON.finditer(text) for obj in _balanced_objects(m.group(1))]
    anywhere = list(_balanced_objects(text))
    for candidate in [*reversed(fenced), *reversed(anywhere)]:
        parsed = _loads_object(candidate)
        if parsed is not None and required_key in parsed:
            return parsed
    return None
