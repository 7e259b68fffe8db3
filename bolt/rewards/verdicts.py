"""Yes/no judges: a prompt in, the judge's probability of "Yes" out, and how it was read.

The principle reward (RLBFF, Wang et al., 2025) and STICK's self-check (Cook et al.,
2024) both ask a judge a yes/no question and want P(Yes), not the sampled word, which is
noisy for small judges (RocketEval, Wei et al., 2025). Where it comes from depends on
what the judge gives:

- a local model loaded with transformers (:class:`LogitYesNoJudge`): the exact
  normalised P(Yes) of its next token, as the checklist reward reads it;
- any :class:`~bolt.engines.base.Engine` (:class:`EngineYesNoJudge`): the judge asks
  for the top log-probabilities of the reply's tokens (``logprobs=``
  :data:`VERDICT_TOP_LOGPROBS`) and reads P(Yes) / (P(Yes) + P(No)) at the position
  where the verdict word was written (:func:`p_yes_from_logprobs`); where the engine
  gave none (a server that ignores the request) or the reply does not open with a
  verdict word, the reply is parsed (:func:`parse_verdict`, 1.0 for Yes, 0.0 for No).

The judge's ``stats`` count each path (``from_logprobs``, ``parsed``). A reply with no
readable verdict is not a "No": its :class:`Verdict` has ``p_yes`` None and a reason,
and ``stats`` count it under ``rejected.<reason>``.
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from bolt.config import SamplingConfig

if TYPE_CHECKING:
    from bolt.engines.base import Completion, Engine, TokenLogprobs

EMPTY_REPLY = "empty_reply"
NO_VERDICT = "no_verdict"
AMBIGUOUS_VERDICT = "ambiguous_verdict"

# How a verdict was read (the keys of a judge's ``stats``).
FROM_LOGITS, FROM_LOGPROBS, PARSED = "from_logits", "from_logprobs", "parsed"

_LEAD_FILLER = {"answer", "verdict", "final", "judgment", "judgement", "my", "the", "is", "a"}
# An explicit verdict anywhere in a reply: "Answer: Yes", "verdict is **No**", "[[Yes]]".
_EXPLICIT = re.compile(
    r"(?:\b(?:answer|verdict|judg(?:e)?ment)\b\s*(?:is)?\s*[:=-]?\s*[*_\"'`]*\s*|\[\[\s*)"
    r"(yes|no)\b",
    re.IGNORECASE,
)
VERDICT_MAX_NEW_TOKENS = 8
# Candidates read per position: the most the OpenAI API and vLLM's default give; the
# fewer, the likelier that "Yes" or "No" is missing from a confident judge's list.
VERDICT_TOP_LOGPROBS = 20
# How an engine judge's verdicts are read, for the fingerprints of the stages it judges in.
ENGINE_VERDICTS = f"logprobs-top{VERDICT_TOP_LOGPROBS}-then-parsed"


@dataclass(frozen=True)
class Verdict:
    """P(Yes) in [0, 1], or None with the reason no verdict could be read."""

    p_yes: float | None
    source: str
    reason: str | None = None
    prompt_tokens: int = 0
    output_tokens: int = 0


def parse_verdict(text: str) -> tuple[float | None, str | None]:
    """(1.0 for Yes, 0.0 for No, or None) and the reason when None.

    The verdict is the reply's first word (after "Answer:", markdown and quotes), or
    else an explicit "answer/verdict: yes|no" or "[[yes]]" anywhere; one explicit of
    each kind is ambiguous. A "no" inside prose ("there is no error") is not a verdict.
    """
    words = re.findall(r"[a-z]+", text.lower())
    if not words:
        return None, EMPTY_REPLY
    lead = [w for w in words[:4] if w not in _LEAD_FILLER]
    if lead and lead[0] in ("yes", "no"):
        return (1.0 if lead[0] == "yes" else 0.0), None
    found = {m.lower() for m in _EXPLICIT.findall(text)}
    if found == {"yes"}:
        return 1.0, None
    if found == {"no"}:
        return 0.0, None
    return None, AMBIGUOUS_VERDICT if found else NO_VERDICT


def p_yes_from_top_logprobs(top: Mapping[str, float]) -> float | None:
    """P(Yes) / (P(Yes) + P(No)) from the top log-probabilities of the first token, every
    spelling of each word summed (" Yes", "yes", ...); None when neither is among them."""
    yes = sum(math.exp(lp) for token, lp in top.items() if token.strip().lower() == "yes")
    no = sum(math.exp(lp) for token, lp in top.items() if token.strip().lower() == "no")
    return yes / (yes + no) if yes + no > 0 else None


def p_yes_from_logprobs(positions: Sequence[TokenLogprobs]) -> float | None:
    """P(Yes) at the position where the reply's verdict word was chosen, or None.

    As :func:`parse_verdict` reads a reply's lead, the positions whose chosen token is
    punctuation, markdown or a lead filler ("Answer", ":", "**") are passed over; the
    first other chosen token must be a spelling of yes or no, and that position's top
    candidates give :func:`p_yes_from_top_logprobs`. A reply that opens with anything
    else ("The answer ...") has no logprob verdict: it is parsed instead.
    """
    for position in positions:
        word = "".join(re.findall(r"[a-z]+", position.token.lower()))
        if not word or word in _LEAD_FILLER:
            continue
        return p_yes_from_top_logprobs(position.top) if word in ("yes", "no") else None
    return None


class YesNoJudge(Protocol):
    """Judges yes/no questions: one user message each, a :class:`Verdict` each, in order."""

    stats: Counter[str]

    def judge(self, contents: Sequence[str]) -> list[Verdict]: ...


def count(stats: Counter[str], verdicts: Sequence[Verdict], seconds: float) -> None:
    """Add a batch of verdicts to a judge's running ``stats``."""
    stats["prompts"] += len(verdicts)
    stats["prompt_tokens"] += sum(v.prompt_tokens for v in verdicts)
    stats["output_tokens"] += sum(v.output_tokens for v in verdicts)
    stats["milliseconds"] += round(seconds * 1000)
    for v in verdicts:
        stats[v.source] += 1
        if v.p_yes is None:
            stats[f"rejected.{v.reason}"] += 1


class LogitYesNoJudge:
    """A transformers causal LM: the exact normalised P(Yes) of its next token."""

    def __init__(self, model: Any, tokenizer: Any, *, batch_size: int, device: str):
        from bolt.rewards.lm_checklist import NO_SPELLINGS, YES_SPELLINGS, answer_token_ids

        self.model, self.tokenizer = model, tokenizer
        self.batch_size, self.device = batch_size, device
        self.answer_ids = (
            answer_token_ids(tokenizer, YES_SPELLINGS),
            answer_token_ids(tokenizer, NO_SPELLINGS),
        )
        pad_id = tokenizer.pad_token_id
        self.pad_id = tokenizer.eos_token_id if pad_id is None else pad_id
        self.stats: Counter[str] = Counter()

    def judge(self, contents: Sequence[str]) -> list[Verdict]:
        from bolt.rewards.lm_checklist import next_token_yes, prompt_ids

        started = time.perf_counter()
        prompts = [prompt_ids(self.tokenizer, content) for content in contents]
        p_yes = next_token_yes(
            self.model, prompts, self.pad_id, self.answer_ids, self.batch_size, self.device
        )
        verdicts = [
            Verdict(p, FROM_LOGITS, prompt_tokens=len(ids), output_tokens=1)
            for p, ids in zip(p_yes, prompts, strict=True)
        ]
        count(self.stats, verdicts, time.perf_counter() - started)
        return verdicts


class EngineYesNoJudge:
    """Any engine, greedy and short: P(Yes) from the reply's log-probabilities where the
    engine gives them, else the parsed reply (see the module docstring)."""

    def __init__(self, engine: Engine, *, max_new_tokens: int = VERDICT_MAX_NEW_TOKENS):
        self.engine = engine
        self.sampling = SamplingConfig(n=1, temperature=0.0, max_new_tokens=max_new_tokens)
        self.stats: Counter[str] = Counter()

    def judge(self, contents: Sequence[str]) -> list[Verdict]:
        from bolt.engines.base import ChatRequest

        started = time.perf_counter()
        requests = [
            ChatRequest(id=f"verdict-{i}", messages=[{"role": "user", "content": content}])
            for i, content in enumerate(contents)
        ]
        outputs = (
            self.engine.generate(requests, self.sampling, logprobs=VERDICT_TOP_LOGPROBS)
            if requests
            else []
        )
        verdicts = [completion_verdict(samples[0]) for samples in outputs]
        count(self.stats, verdicts, time.perf_counter() - started)
        return verdicts


def completion_verdict(completion: Completion) -> Verdict:
    """The verdict of one completion: from its log-probabilities where it has them and
    they hold one (:func:`p_yes_from_logprobs`), else from its parsed text."""
    tokens = {"prompt_tokens": completion.prompt_tokens, "output_tokens": completion.output_tokens}
    positions = completion.logprobs
    if positions and (p := p_yes_from_logprobs(positions)) is not None:
        return Verdict(p, FROM_LOGPROBS, **tokens)
    p_yes, reason = parse_verdict(completion.text)
    return Verdict(p_yes, PARSED, reason, **tokens)
