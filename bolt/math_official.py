"""The MATH graders' rules, re-implemented: Hendrycks et al. (2021)'s string normalisation
and the PRM800K grader of Lightman et al. (2023), the two that MATH and MATH-500 numbers
are published with.

Written from reading their code (``hendrycks/math`` ``modeling/math_equivalence.py``:
``is_equiv`` and ``_strip_string``; ``openai/prm800k`` ``prm800k/grading/grader.py``:
``grade_answer``, and ``math_normalize.py``), not copied from it. What each does:

- :func:`strip_answer` (Hendrycks' ``_strip_string``): drop line breaks, ``\\!``,
  ``\\left``/``\\right``, ``^\\circ``/``^{\\circ}``, ``\\$``, ``\\%``, a right-hand
  unit written ``\\text{ unit}`` (with its leading space) and every space; ``dfrac``
  and ``tfrac`` -> ``frac``; ``.5`` -> ``0.5``; a short ``x =``/``k =`` prefix (at
  most two characters before the one ``=``) is dropped; ``\\sqrt3`` -> ``\\sqrt{3}``,
  ``\\frac12`` -> ``\\frac{1}{2}``, ``\\frac1b``; ``0.5`` -> ``\\frac{1}{2}``; ``a/b``
  of two plain integers -> ``\\frac{a}{b}``. :func:`mathd_normalize` first takes the
  inside of an enclosing ``\\text{...}``. :func:`hendrycks_equiv` compares the results.
- :func:`prm800k_grade` (``grade_answer``): equal when the Hendrycks forms match, or
  the PRM800K forms (:func:`prm800k_normalize`: ``\\text{}`` unwrapped, ``$``/``%``
  dropped, "and"/"or" read as commas, million/billion/trillion, unit words, degrees,
  thousands separators, LaTeX turned into plain text, spaces and braces dropped,
  lower case, integers canonical) match; otherwise tuples and intervals are compared
  element by element (their brackets must agree; ``1,000`` is a number, not a pair),
  where two plain fractions must be written identically (an unreduced fraction is
  wrong), an integer only matches an integer form, and the rest is equal when sympy
  simplifies the difference to 0 (at most two unknown letters, no nested powers).

Deliberate differences, each safer than the original on inputs the original handles
badly: LaTeX is read to text by our own small converter instead of ``pylatexenc``
(fractions keep their parentheses: ``\\frac{x+1}{2}`` -> ``(x+1)/2``); Python's
``float()`` is not used to recognise numbers, so ``1011_2`` is not read as the
number 10112 (``float("1011_2")`` is 10112.0); sympy only sees strings of digits,
letters, operators and brackets (no ``**``, ``!`` or ``_``: the parser evaluates
Python), under a time limit where the process allows one.
"""

from __future__ import annotations

import re
import signal
import threading
from collections.abc import Callable
from contextlib import contextmanager

SYMPY_TIMEOUT_S = 5

# ---------------------------------------------------------------- Hendrycks (MATH)


def _braced_sqrt(s: str) -> str:
    """``\\sqrt3`` -> ``\\sqrt{3}``: the one character after a brace-less ``\\sqrt``."""
    return re.sub(r"\\sqrt(?=[^{])(.)", r"\\sqrt{\1}", s)


def _braced_fracs(s: str) -> str:
    """``\\frac12`` -> ``\\frac{1}{2}``, ``\\frac1{72}`` -> ``\\frac{1}{72}``; a
    ``\\frac`` followed by fewer than two characters leaves the string as it was."""
    head, *tails = s.split("\\frac")
    out = [head]
    for tail in tails:
        if tail.startswith("{"):
            out.append("\\frac" + tail)
        elif len(tail) < 2:
            return s
        elif tail[1] == "{":
            out.append("\\frac{" + tail[0] + "}" + tail[1:])
        else:
            out.append("\\frac{" + tail[0] + "}{" + tail[1] + "}" + tail[2:])
    return "".join(out)


def _slash_to_frac(s: str) -> str:
    """``3/4`` (two plain integers, nothing else) -> ``\\frac{3}{4}``."""
    m = re.fullmatch(r"(-?\d+)/(-?\d+)", s)
    if m is None or s != f"{int(m[1])}/{int(m[2])}":
        return s
    return f"\\frac{{{int(m[1])}}}{{{int(m[2])}}}"


def strip_answer(s: str) -> str:
    """Hendrycks' normal form of an answer (see the module docstring)."""
    s = s.replace("\n", "").replace("\\!", "").replace("\\\\", "\\")
    s = s.replace("tfrac", "frac").replace("dfrac", "frac")
    s = s.replace("\\left", "").replace("\\right", "")
    s = s.replace("^{\\circ}", "").replace("^\\circ", "").replace("\\$", "")
    if "\\text{ " in s:  # a unit on the right: "10\text{ cm}"
        s = s.split("\\text{ ", 1)[0]
    s = s.replace("\\%", "")
    s = s.replace(" .", " 0.").replace("{.", "{0.")
    if not s:
        return s
    if s.startswith("."):
        s = "0" + s
    lhs, *rhs = s.split("=")
    if len(rhs) == 1 and len(lhs) <= 2:
        s = rhs[0]
    s = _braced_fracs(_braced_sqrt(s).replace(" ", ""))
    if s == "0.5":
        s = "\\frac{1}{2}"
    return _slash_to_frac(s)


def _unwrap_text(s: str) -> str:
    """The inside of an answer that is one ``\\text{...}`` from start to end."""
    return s[6:-1] if s.startswith("\\text{") and s.endswith("}") and len(s) > 7 else s


def mathd_normalize(answer: str | None) -> str | None:
    """PRM800K's ``normalize_answer``: Hendrycks' form of the stripped answer, after
    unwrapping an enclosing ``\\text{}``."""
    if answer is None:
        return None
    return strip_answer(_unwrap_text(answer.strip()).strip())


def hendrycks_equiv(reference: str, predicted: str | None) -> bool:
    """Hendrycks' ``is_equiv``: the normal forms are the same string. No answer is wrong."""
    if predicted is None:
        return False
    return strip_answer(reference) == strip_answer(predicted)


# ---------------------------------------------------------------- LaTeX -> plain text

_SYMBOLS = {
    "pi": "pi",
    "infty": "inf",
    "infinity": "inf",
    "cup": "U",
    "cap": "∩",
    "cdot": "*",
    "times": "*",
    "div": "/",
    "pm": "±",
    "mp": "∓",
    "le": "≤",
    "leq": "≤",
    "ge": "≥",
    "geq": "≥",
    "ne": "≠",
    "neq": "≠",
    "lt": "<",
    "gt": ">",
    "in": "∈",
    "circ": "∘",
    "degree": "°",
    "emptyset": "∅",
    "varnothing": "∅",
    "dots": "...",
    "ldots": "...",
    "cdots": "...",
    "%": "%",
    "$": "$",
    "{": "{",
    "}": "}",
    ",": " ",
    ";": " ",
    ":": " ",
    " ": " ",
    "quad": " ",
    "qquad": " ",
}
# Macros whose argument is the text (fonts, boxes, accents) or that only space or size.
_KEEP_ARGUMENT = {"text", "textbf", "textit", "mbox", "mathrm", "mathbf", "mathit", "mathsf"}
_KEEP_ARGUMENT |= {"operatorname", "overline", "bar", "hat", "vec", "boxed", "displaystyle"}
_DROPPED = {"left", "right", "big", "Big", "bigg", "Bigg", "displaystyle", "textstyle"}
_MACRO = re.compile(r"\\([a-zA-Z]+|.)")


def _group(s: str, start: int) -> tuple[str, int] | None:
    """The ``{...}`` group opening at ``s[start]`` (its inside) and the index after it."""
    if start >= len(s) or s[start] != "{":
        return None
    depth = 0
    for i in range(start, len(s)):
        depth += {"{": 1, "}": -1}.get(s[i], 0)
        if depth == 0:
            return s[start + 1 : i], i + 1
    return None


def _atomic(text: str) -> bool:
    return re.fullmatch(r"-?[0-9a-zA-Z.]+", text) is not None


def _wrapped(text: str) -> str:
    return text if _atomic(text) else f"({text})"


def _argument(s: str, pos: int) -> tuple[str, int] | None:
    """A macro's argument at ``s[pos]`` (spaces skipped): a ``{...}`` group or one
    character (``\\frac12``), and the index after it."""
    while pos < len(s) and s[pos] == " ":
        pos += 1
    if pos >= len(s) or s[pos] in "}\\":
        return None
    return _group(s, pos) if s[pos] == "{" else (s[pos], pos + 1)


def _macro(name: str, s: str, end: int) -> tuple[str, int]:
    """The plain text of macro ``name`` whose name ends at ``s[end]``, and where it stops."""
    if name == "frac" and (num := _argument(s, end)) and (den := _argument(s, num[1])):
        return f"{_wrapped(latex_to_text(num[0]))}/{_wrapped(latex_to_text(den[0]))}", den[1]
    if name == "sqrt":
        degree = re.match(r"\[([^\]]*)\]", s[end:])
        start = end + degree.end() if degree else end
        if (arg := _argument(s, start)) is not None:
            radicand = latex_to_text(arg[0])
            if degree:
                return f"root({radicand},{latex_to_text(degree[1])})", arg[1]
            return f"sqrt({radicand})", arg[1]
    if name in _KEEP_ARGUMENT and (arg := _argument(s, end)) is not None:
        return latex_to_text(arg[0]), arg[1]
    if name in _DROPPED:
        return "", end
    return _SYMBOLS.get(name, name), end


def _environment(s: str) -> str:
    """Matrices and arrays: rows ``;``-separated, cells ``,``-separated, in brackets."""

    def rows(m: re.Match) -> str:
        body = m.group(2).replace("\\\\", ";").replace("&", ",")
        return f"[{body}]"

    return re.sub(r"\\begin\{(\w+\*?)\}(?:\{[^}]*\})?(.*?)\\end\{\1\}", rows, s, flags=re.DOTALL)


def latex_to_text(s: str) -> str:
    """A plain-text reading of an answer's LaTeX, in the spirit of ``pylatexenc``'s
    ``latex_to_text`` as PRM800K uses it (see the module docstring)."""
    s = _environment(s)
    out, pos = [], 0
    while (m := _MACRO.search(s, pos)) is not None:
        out.append(s[pos : m.start()])
        text, pos = _macro(m.group(1), s, m.end())
        out.append(text)
    out.append(s[pos:])
    return "".join(out)


# ---------------------------------------------------------------- PRM800K

_UNITS = ("degree", "cm", "centimeter", "meter", "mile", "second", "minute", "hour", "day")
_UNITS += ("week", "month", "year", "foot", "feet", "inch", "yard")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?", re.IGNORECASE)
_THOUSANDS = re.compile(r"(\d),(\d\d\d)($|\D)")
_TUPLE_CHARS = "()[]"


def _drop_thousands_commas(s: str) -> str:
    """``1,000,000`` -> ``1000000``; ``(1,2)`` and ``1,23`` keep their commas."""
    while (nxt := _THOUSANDS.sub(r"\1\2\3", s)) != s:
        s = nxt
    return s


def _integer_text(s: str) -> str | None:
    """``s`` as an integer's digits when it is a number within 1e-7 of an integer."""
    s = _drop_thousands_commas(s)
    if _NUMBER.fullmatch(s) is None:
        return None
    value = float(s)
    return str(round(value)) if abs(value - round(value)) <= 1e-7 else None


def prm800k_normalize(expr: str) -> str:
    """PRM800K's ``_normalize`` (see the module docstring)."""
    s = _unwrap_text(expr)
    s = s.replace("\\%", "%").replace("\\$", "$").replace("$", "").replace("%", "")
    s = s.replace(" or ", " , ").replace(" and ", " , ")
    for word, power in (("million", 6), ("billion", 9), ("trillion", 12)):
        s = s.replace(word, f"*10^{power}")
    for unit in _UNITS:
        s = re.sub(unit + r"(es)?(s)? *(\^[0-9]+)?", "", s)
    s = re.sub(r"\^ *\\circ", "", s)
    if len(s) > 1 and s.startswith("{") and s.endswith("}"):
        s = s[1:-1]
    s = re.sub(r",\\! *", "", s)
    if _NUMBER.fullmatch(s) and (whole := _integer_text(s)) is not None:
        s = whole
    if "\\" in s:
        s = s.replace("\\tfrac", "\\frac").replace("\\dfrac", "\\frac")
        s = latex_to_text(s.replace("\\frac", " \\frac")).strip()  # " ": mixed numbers
    s = re.sub(r"- *", "-", s)
    s = re.sub(r"([0-9]) +([0-9])", r"\1+\2", s)  # a mixed number 7 3/4 -> 7+3/4
    s = s.replace(" ", "").replace("{", "").replace("}", "").lower()
    whole = _integer_text(s.replace(",", "")) if _integer_text(s) is not None else None
    return whole if whole is not None else s


def _split_tuple(s: str) -> list[str]:
    """A tuple's or interval's elements; any other answer is one element."""
    s = _drop_thousands_commas(s)
    if not s:
        return []
    inner = s[1:-1]
    bracketed = len(s) > 2 and s[0] in _TUPLE_CHARS and s[-1] in _TUPLE_CHARS
    if bracketed and not any(c in inner for c in _TUPLE_CHARS):
        return [e.strip() for e in inner.split(",")]
    return [s]


def _is_plain_fraction(s: str) -> bool:
    return re.search(r"^-?[0-9]+.?/0*[1-9][0-9]*.?$", s) is not None


_SYMPY_SAFE = re.compile(r"[0-9a-z+\-*/^()., ]*")


def _may_evaluate(expr: str) -> bool:
    """PRM800K's ``should_allow_eval`` plus our character allow-list."""
    letters = {c for c in expr.replace("sqrt", "").replace("frac", "") if c.isalpha()}
    if len(letters) > 2 or "^{" in expr or "^(" in expr:
        return False
    if re.search(r"\^[0-9]+\^", expr) or re.search(r"\^[0-9][0-9]+", expr):
        return False
    return _SYMPY_SAFE.fullmatch(expr) is not None and "**" not in expr and len(expr) <= 200


@contextmanager
def _time_limit(seconds: int):
    """Raise TimeoutError after ``seconds`` (SIGALRM: only in a main thread; elsewhere
    no limit)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expired(signum, frame):
        raise TimeoutError

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def sympy_equal(reference: str, predicted: str) -> bool:
    """sympy simplifies ``(reference) - (predicted)`` to 0 (implicit multiplication on)."""
    expr = f"({reference})-({predicted})"
    if not _may_evaluate(expr):
        return False
    from sympy import simplify
    from sympy.parsing import sympy_parser as sp

    rules = sp.standard_transformations + (sp.implicit_multiplication_application,)
    try:
        with _time_limit(SYMPY_TIMEOUT_S):
            return simplify(sp.parse_expr(expr.replace("^", "**"), transformations=rules)) == 0
    except Exception:  # noqa: BLE001 -- a parse error, a timeout, any sympy error: not equal
        return False


def _elements_equal(reference: str, predicted: str) -> bool:
    if _is_plain_fraction(reference) and _is_plain_fraction(predicted):
        return reference == predicted  # unreduced fractions are wrong: no sympy
    if (_integer_text(reference) is None) != (_integer_text(predicted) is None):
        return False  # an integer answer needs an integer
    return sympy_equal(reference, predicted)


def prm800k_grade(predicted: str | None, reference: str) -> bool:
    """PRM800K's ``grade_answer(given_answer, ground_truth)`` (see the module docstring)."""
    if predicted is None:
        return False
    if mathd_normalize(reference) == mathd_normalize(predicted):
        return True
    truth, given = prm800k_normalize(reference), prm800k_normalize(predicted)
    if truth == given:
        return True
    if not given:
        return False
    truth_elems, given_elems = _split_tuple(truth), _split_tuple(given)
    if len(truth_elems) > 1 and (truth[0] != given[0] or truth[-1] != given[-1]):
        return False  # (a, b) is not [a, b]
    if len(truth_elems) != len(given_elems):
        return False
    return all(_elements_equal(t, g) for t, g in zip(truth_elems, given_elems, strict=True))


# The fallbacks beside math-verify, cheapest first: (name, rule(reference, predicted)).
FALLBACKS: tuple[tuple[str, Callable[[str, str], bool]], ...] = (
    ("hendrycks", hendrycks_equiv),
    ("prm800k", lambda reference, predicted: prm800k_grade(predicted, reference)),
)
