"""Reading and checking final math answers, shared by the MATH500 evaluation and the
math-verify reward so that training and evaluation agree on what is correct.

The answer is the content of the last ``\\boxed{...}`` (or ``\\fbox{...}``) of a
response, braces balanced, as Hendrycks et al. (2021)'s ``last_boxed_only_string``
takes it; it is compared with a reference by Hugging Face's ``math-verify`` (``parse``
+ ``verify``), which knows that ``\\frac{1}{2}`` = ``0.5``, that ``x = 2`` answers
``2``, and the like. An empty box (``\\boxed{}``) is no answer.

math-verify alone misjudges answers that mix text, units, degrees or repeating decimals
(``\\text{5 cm}``, ``\\text{10:30 a.m.}``, whose ``10:30`` it reads as the ratio 1/3,
``0.\\overline{3}``), which the official MATH graders normalise away; so two answers
are equivalent when math-verify says so OR Hendrycks' normalised strings match OR the
PRM800K grader's rules say so (:mod:`bolt.math_official`). :func:`equivalence` names
the first that accepts; a grader that raises counts as a "no".

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

from bolt.math_official import FALLBACKS

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
            return rest[1:i].strip() or None  # an empty box is no answer
    return None


def math_verify_equal(reference: str, predicted: str) -> bool:
    """math-verify's verdict on two answers, each parsed as the content of a ``\\boxed{}``
    so that both go through its LaTeX extraction. Call it in a main thread (its timeouts
    are signal-based); ``check_answers`` does that for you."""
    from math_verify import parse, verify  # an optional dependency: the cpu/gpu extras

    gold = parse(f"\\boxed{{{reference}}}", parsing_timeout=CHECK_TIMEOUT_S)
    target = parse(f"\\boxed{{{predicted}}}", parsing_timeout=CHECK_TIMEOUT_S)
    return bool(gold) and bool(target) and verify(gold, target, timeout_seconds=CHECK_TIMEOUT_S)


GRADERS = (("math_verify", math_verify_equal), *FALLBACKS)


def equivalence(reference: str, predicted: str | None) -> str | None:
    """The name of the first grader (math-verify, Hendrycks, PRM800K) that finds
    ``predicted`` equivalent to ``reference``; None when none does, when there is no
    answer (None or blank) and when the reference is blank."""
    if predicted is None or not predicted.strip() or not reference.strip():
        return None
    for name, rule in GRADERS:
        try:
            accepted = rule(reference, predicted)
        except Exception:  # noqa: BLE001 -- a grader's crash on one odd answer is its "no"
            accepted = False
        if accepted:
            return name
    return None


def is_equivalent(reference: str, predicted: str | None) -> bool:
    return equivalence(reference, predicted) is not None


def judge_answers(pairs: Sequence[tuple[str, str]], max_workers: int = 2) -> list[str | None]:
    """``equivalence`` for each (reference, predicted) pair, in worker processes.

    ``spawn`` workers: forking a process that already runs threads (an engine, a Prefect
    task runner) can deadlock. Spawned workers re-import the caller's ``__main__``, so
    an entry script needs its ``if __name__ == "__main__":`` guard.
    """
    if not pairs:
        return []
    references, predictions = zip(*pairs, strict=True)
    with ProcessPoolExecutor(max_workers=max_workers, mp_context=get_context("spawn")) as pool:
        return list(pool.map(equivalence, references, predictions, chunksize=16))


def check_answers(pairs: Sequence[tuple[str, str]], max_workers: int = 2) -> list[bool]:
    """``is_equivalent`` for each (reference, predicted) pair, in worker processes."""
    return [name is not None for name in judge_answers(pairs, max_workers)]
