"""Binary principle rewards (RLBFF: Wang et al., NVIDIA, 2025, arXiv 2509.21319).

RLBFF grounds a reward model in principles that a response either satisfies or not
("the response is accurate", "the code is readable"), judged as an entailment task, and
lets users name the principles at inference time. Here a judge model answers one
principle per prompt (``prompts/principle_judge.j2``): does this answer to this request
satisfy the principle, Yes or No? Its P(Yes) comes from the judge's next-token
distribution (a local model), from the log-probabilities an engine returns with the
reply, or from the parsed reply where it returns none (:mod:`bolt.rewards.verdicts`
counts each path). An item's score is the weighted
mean of P(Yes) over the principles that apply to it (:func:`combine_principles`); a
principle applies to every query unless its ``applies_to`` names topics or a regex.

Nothing unreadable becomes a score: a reply without a verdict is left out of its
item's mean and counted under ``rejected.<reason>``; an item left with no verdict at all
(none readable, or no principle applies) gets :data:`NO_SIGNAL_SCORE`, is counted under
``items.<reason>`` and listed in ``rejects`` (item key -> reason), so a stage can tell
it from a judged 0.5.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from bolt.config import ModelsConfig, Principle, RewardBackend, S3Options
from bolt.prompts import render_template
from bolt.rewards.base import CountedScores, RewardError, RewardItem, judged_response
from bolt.rewards.verdicts import Verdict, YesNoJudge, count

log = logging.getLogger(__name__)

NO_APPLICABLE_PRINCIPLE = "no_applicable_principle"
NO_READABLE_VERDICT = "no_readable_verdict"
# The score of an item the judge said nothing about: the middle of [0, 1], so it neither
# wins nor loses a selection by default; ``rejects`` names every such item.
NO_SIGNAL_SCORE = 0.5


@dataclass(frozen=True)
class PrincipleScore:
    """One item's combined score (None when no verdict), why not, and each verdict."""

    score: float | None
    reason: str | None
    verdicts: tuple[tuple[str, Verdict], ...]


def applies(principle: Principle, item: RewardItem) -> bool:
    """Whether ``principle`` judges ``item``: its topics include the item's topic and its
    regex is found in the query, for whichever of the two it sets."""
    rule = principle.applies_to
    if rule is None:
        return True
    if rule.topics is not None and item.topic not in rule.topics:
        return False
    return rule.query_regex is None or re.search(rule.query_regex, item.query) is not None


def combine_principles(
    judged: Sequence[tuple[float, float | None]],
) -> tuple[float | None, str | None]:
    """The weighted mean of the readable P(Yes) of (weight, p_yes) pairs, or (None, why)."""
    if not judged:
        return None, NO_APPLICABLE_PRINCIPLE
    readable = [(w, p) for w, p in judged if p is not None]
    if not readable:
        return None, NO_READABLE_VERDICT
    return sum(w * p for w, p in readable) / sum(w for w, _ in readable), None


def principle_prompt(query: str, response: str, principle: str) -> str:
    return render_template(
        "principle_judge.j2", query=query, response=response, principle=principle
    )


class PrinciplesReward:
    """Scores each item by its judge's weighted mean P(Yes) over the applicable principles."""

    def __init__(self, principles: Sequence[Principle], judge: YesNoJudge):
        if not principles:
            raise RewardError("a principles reward needs at least one principle")
        self.principles, self.judge = list(principles), judge
        self.item_stats: Counter[str] = Counter()
        self.rejects: dict[str, str] = {}

    @classmethod
    def from_backend(
        cls,
        backend: RewardBackend,
        models: ModelsConfig,
        *,
        judge_engine: object | None = None,
        device: str = "cpu",
        s3: S3Options | None = None,
    ) -> PrinciplesReward:
        """The backend's judge: on ``judge_engine`` when ``backend.judge_engine`` is set
        (the caller starts it), else ``backend.model`` loaded with transformers."""
        from bolt.rewards.verdicts import EngineYesNoJudge, LogitYesNoJudge

        if backend.principles is None or backend.model is None:
            raise RewardError(
                f"reward {backend.name!r} (kind principles) needs principles and model"
            )
        if backend.judge_engine is not None:
            if judge_engine is None:
                raise RewardError(
                    f"reward {backend.name!r} (kind principles) with judge_engine set needs "
                    "an engine on its model"
                )
            return cls(backend.principles, EngineYesNoJudge(judge_engine))  # type: ignore[arg-type]
        from bolt.rewards.lm_checklist import load_causal_lm

        model, tokenizer = load_causal_lm(models, backend.model, device=device, s3=s3)
        judge = LogitYesNoJudge(model, tokenizer, batch_size=backend.batch_size, device=device)
        return cls(backend.principles, judge)

    @property
    def stats(self) -> dict[str, int]:
        """The judge's counts (prompts, tokens, how verdicts were read, rejects by reason)
        and the items' (``items.<reason>`` for those without any verdict)."""
        return {**self.judge.stats, **{f"items.{k}": v for k, v in self.item_stats.items()}}

    def score(self, items: Sequence[RewardItem]) -> list[float]:
        return self.score_counted(items).scores

    def score_counted(self, items: Sequence[RewardItem]) -> CountedScores:
        """The scores, the items without any verdict (:data:`NO_SIGNAL_SCORE`, and
        their reason), and this batch's counts, keyed as :attr:`stats` is."""
        details = self.score_detailed(items)
        counts: Counter[str] = Counter()
        count(counts, [v for d in details for _, v in d.verdicts], 0.0)
        del counts["milliseconds"]  # a timing, not a count: the stage times its shards
        unscored = {i: d.reason for i, d in enumerate(details) if d.reason is not None}
        counts.update(f"items.{reason}" for reason in unscored.values())
        scores = [NO_SIGNAL_SCORE if d.score is None else d.score for d in details]
        return CountedScores(scores, unscored, dict(counts))

    def score_detailed(self, items: Sequence[RewardItem]) -> list[PrincipleScore]:
        """Every (item, applicable principle) judged in one call, then combined per item."""
        owners, contents = [], []
        for index, item in enumerate(items):
            response = judged_response(item)
            for principle in self.principles:
                if applies(principle, item):
                    owners.append((index, principle))
                    contents.append(principle_prompt(item.query, response, principle.text))
        verdicts = self.judge.judge(contents) if contents else []
        per_item: list[list[tuple[Principle, Verdict]]] = [[] for _ in items]
        for (index, principle), verdict in zip(owners, verdicts, strict=True):
            per_item[index].append((principle, verdict))
        out = []
        for item, judged in zip(items, per_item, strict=True):
            score, reason = combine_principles([(p.weight, v.p_yes) for p, v in judged])
            if score is None:
                self.item_stats[reason or NO_READABLE_VERDICT] += 1
                self.rejects[item.key] = reason or NO_READABLE_VERDICT
                log.warning("principles reward: item %s has no verdict (%s)", item.key, reason)
            out.append(PrincipleScore(score, reason, tuple((p.text, v) for p, v in judged)))
        return out
