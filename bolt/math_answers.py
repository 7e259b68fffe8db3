"""Reading and checking final math answers, shared by the MATH500 evaluation and the
math-verify reward so that training and evaluation agree on what is correct.

The answer is the content of the last ``\\boxed{...}`` (or ``\\fbox{...}``) of a
response, braces balanced, as Hendrycks et al. (2021)'s ``last_boxed_only_string``
takes it; it is compared with a reference by Hugging Face's ``math-verify`` (``parse``
+ ``verify``), which knows that ``\\frac{1}{2}`` = ``0.5``, that ``x = 2`` answers
``2``, and the like.

math-verify bounds its own parsing and comparison time with ``signal.alarm``, which
only works in a process's main thread; so every check runs in a worker process of a
``ProcessPoolExecutor`` (whose tasks run on the worker's main thread), which also keeps
a pathological expression from stalling the caller.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

CHECK_TIMEOUT_S = 5  # math-verify's own default for parse and for verify

_BOX_COMMAND = re.compile(r"\\(?:boxed|fbox)(?![a-zA-Z])")


def last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}``/``\\fbox{...}`` of ``text``, nested
    braces included; also ``\\boxed 5`` (a space, no braces), as Hendrycks' MATH code
    accepts. None when there is none or its braces never close."""
    matches = list(_BOX_COMMAND.finditer(text))
    if not matches:
        return None
    rest = text[matches[-1].end() :]
    if rest.startswith(" "):
        return rest[1:].split("$", 1)[0].strip() or None
    if not rest.startswith("{"):
        return None
    depth = 0
    for i, char in enumerate(rest):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth == 0:
            return rest[1:i].strip()
    return None


def is_equivalent(reference: str, predicted: str) -> bool:
    """math-verify's verdict on two answers, each parsed as the content of a ``\\boxed{}``
    so that both go through its LaTeX extraction. Call it in a main thread (its timeouts
    are signal-based); ``check_answers`` does that for you."""
    from math_verify import parse, verify  # an optional dependency: the cpu/gpu extras

    gold = parse(f"\\boxed{{{reference}}}", parsing_timeout=CHECK_TIMEOUT_S)
    target = parse(f"\\boxed{{{predicted}}}", parsing_timeout=CHECK_TIMEOUT_S)
    return bool(gold) and bool(target) and verify(gold, target, timeout_seconds=CHECK_TIMEOUT_S)


def check_answers(pairs: Sequence[tuple[str, str]], max_workers: int = 2) -> list[bool]:
    """``is_equivalent`` for each (reference, predicted) pair, in worker processes.

    ``spawn`` workers: forking a process that already runs threads (an engine, a Prefect
    task runner) can deadlock. Spawned workers re-import the caller's ``__main__``, so
    an entry script needs its ``if __name__ == "__main__":`` guard.
    """
    if not pairs:
        return []
    references, predictions = zip(*pairs, strict=True)
    with ProcessPoolExecutor(max_workers=max_workers, mp_context=get_context("spawn")) as pool:
        return list(pool.map(is_equivalent, references, predictions, chunksize=16))
