"""Rule verifier: 1.0 when the response's final answer equals the reference, else 0.0.

For queries with a known answer (math), a verifier is a reward that cannot be gamed
by style. The final answer is the content of the last ``\\boxed{...}`` of the response
(the MATH convention, Hendrycks et al., 2021), or, when there is none, what follows the
last "final answer is" / "Answer:" (an empty box is no answer); it is compared with
the reference by Hugging Face's ``math-verify``, with the official MATH graders' rules
as fallbacks, through :func:`bolt.math_answers.check_answers`, the same grader as the
MATH500 evaluation, so training and evaluation agree on what is correct.

math-verify bounds its parsing and comparison with ``signal.alarm``
(``math_verify.utils.timeout``, used by ``parse`` and ``verify`` in the installed
0.9), which raises outside a process's main thread, where Prefect and Ray run tasks.
``check_answers`` therefore runs every check in a spawned worker process, whose tasks
run on its main thread, and keeps math-verify's own 5-second limits.

Rule for items without a reference: they are an error, raised with their keys. A
missing reference means the prompt set is not a math set, and any fixed score
(0 or 0.5) would silently bias the percentile cut and the DPO pairs against, or for,
those prompts. Configure ``math_verify`` only on prompt sets that carry references.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bolt.math_answers import check_answers, last_boxed
from bolt.rewards.base import RewardError, RewardItem, judged_response

# "The final answer is $\frac{1}{2}$." / "Answer: 42" -> the rest of the line, without
# math delimiters or a closing full stop.
_FINAL_ANSWER_RE = re.compile(
    r"(?:final answer|answer)\s*(?:is|:)\s*\$*\s*(?P<answer>[^\n]+?)\s*\$*\s*\.?\s*$",
    re.IGNORECASE | re.MULTILINE,
)


def final_answer(response: str) -> str | None:
    """The last ``\\boxed{}`` of ``response``, else its last stated final answer, else None."""
    boxed = last_boxed(response)
    if boxed is not None:
        return boxed
    stated = list(_FINAL_ANSWER_RE.finditer(response))
    return stated[-1].group("answer") if stated else None


class MathVerifyReward:
    """1.0/0.0 by math-verify equivalence of the final answer with the reference."""

    def __init__(self, max_workers: int = 2):
        self.max_workers = max_workers

    def score(self, items: Sequence[RewardItem]) -> list[float]:
        missing = [item.key for item in items if item.reference is None]
        if missing:
            raise RewardError(
                f"math_verify needs a reference answer; {len(missing)} item(s) have none "
                f"(first: {missing[:5]}). Use it only on prompt sets with references."
            )
        answers = [final_answer(judged_response(item)) for item in items]
        to_check = [
            (item.reference, answer)
            for item, answer in zip(items, answers, strict=True)
            if answer is not None
        ]
        verdicts = iter(check_answers(to_check, self.max_workers))
        # Verdicts exist only for items with an answer, in order; no answer is wrong.
        return [float(answer is not None and next(verdicts)) for answer in answers]
