"""STICK self-refinement as a stage runs it: checklists, judge and engine from the pool.

:func:`refine_live` is what the bootstrapping stage (BOLT §3.1) and the online
sampling (§3.3) call when their ``refinement`` is set. The stage's own engine writes the
checklists (TICK: the model decomposes the request; cached like the checklist
reward's) and the revisions. The judge is ``refinement.judge_model`` loaded with
transformers (next-token p(Yes), a ``Role.scoring`` resource) or, unset, the stage's
engine itself, p(Yes) read from its replies' log-probabilities or, where it gives
none, the replies parsed (Self-TICK: no second model, no hand-off).

A scoring model and a generation engine never live side by side (``bolt.resources``):
with a judge model, every round hands the accelerator over twice. The engine and the
judge are therefore taken from the pool at each call (:class:`PooledEngine`,
:class:`PooledJudge`), never held across a hand-off.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bolt.config import PipelineConfig, RefinementConfig, SamplingConfig
from bolt.engines.base import Engine, Messages
from bolt.models import cache_root
from bolt.records import Generation, Query
from bolt.resources import POOL, Role
from bolt.rewards.checklist import ChecklistMaker
from bolt.rewards.refinement import ItemJudge, RefinedVersion, refine
from bolt.rewards.verdicts import EngineYesNoJudge, Verdict


class PooledEngine:
    """An :class:`~bolt.engines.base.Engine` that fetches the live engine on every call."""

    def __init__(self, live: Callable[[], Engine]):
        self._live = live
        first = live()
        self.name, self.model, self.model_path = first.name, first.model, first.model_path

    def generate(self, requests: Any, sampling: Any, **kwargs: Any) -> Any:
        return self._live().generate(requests, sampling, **kwargs)

    def count_prompt_tokens(self, messages: Messages) -> int:
        return self._live().count_prompt_tokens(messages)

    @property
    def stats(self) -> Any:
        return self._live().stats

    def close(self) -> None:  # the pool owns the engine
        return None


class PooledJudge:
    """A transformers yes/no judge on a catalog model, held by the pool (Role.scoring)."""

    def __init__(self, cfg: PipelineConfig, model_name: str):
        self.cfg, self.model_name = cfg, model_name
        self.stats: Counter[str] = Counter()

    def judge(self, contents: Sequence[str]) -> list[Verdict]:
        from bolt.rewards.lm_checklist import load_causal_lm
        from bolt.rewards.verdicts import LogitYesNoJudge

        def load() -> LogitYesNoJudge:
            model, tokenizer = load_causal_lm(
                self.cfg.models,
                self.model_name,
                device=self.cfg.compute.device,
                s3=self.cfg.storage.s3,
            )
            return LogitYesNoJudge(model, tokenizer, batch_size=8, device=self.cfg.compute.device)

        judge = POOL.get(f"refinement judge {self.model_name}", Role.scoring, load)
        before = Counter(judge.stats)
        verdicts = judge.judge(contents)
        self.stats.update(Counter(judge.stats) - before)
        return verdicts


def checklist_judge(cfg: PipelineConfig, settings: RefinementConfig, engine: Engine) -> ItemJudge:
    """The judge ``settings`` names: its judge model, or the stage's own engine."""
    if settings.judge_model is None:
        return ItemJudge(EngineYesNoJudge(engine))
    return ItemJudge(PooledJudge(cfg, settings.judge_model))


def refine_live(
    cfg: PipelineConfig,
    settings: RefinementConfig,
    generations: Sequence[Generation],
    queries: Mapping[str, Query],
    engine: Callable[[], Engine],
    *,
    sampling: SamplingConfig,
    base_messages: Mapping[str, Messages] | None = None,
    stop_at_response_close: bool = False,
    guided_regex: str | None = None,
    context_length: int | None = None,
) -> tuple[list[RefinedVersion], dict[str, int]]:
    """Every version of ``generations`` after ``settings.rounds`` rounds (originals
    first), and what the round counted: its judge's verdicts (how each was read,
    rejects by reason) and the queries that got the fallback checklist."""
    if not generations:
        return [], {}
    live = PooledEngine(engine)
    maker = ChecklistMaker(live, cache_root(cfg.models).parent / "checklists")
    query_ids = sorted({g.query_id for g in generations})
    written = maker.checklists([(queries[q].text, queries[q].reference_answer) for q in query_ids])
    checklists = {q: list(c.questions) for q, c in zip(query_ids, written, strict=True)}
    budget = settings.max_new_tokens or sampling.max_new_tokens
    judge = checklist_judge(cfg, settings, live)
    versions = refine(
        generations,
        checklists,
        live,
        judge,
        settings.rounds,
        queries=queries,
        sampling=sampling.model_copy(update={"max_new_tokens": budget}),
        base_messages=base_messages,
        pass_threshold=settings.pass_threshold,
        stop_at_response_close=stop_at_response_close,
        guided_regex=guided_regex,
        context_length=context_length,
    )
    # The judge is this call's own: its counts are this round's, whatever runs beside it.
    counts = Counter(judge.judge.stats)
    del counts["milliseconds"]  # a timing, not a count
    counts["fallback_checklists"] = sum(c.fallback for c in written)
    return versions, dict(counts)
