"""STICK self-refinement (Cook et al., 2024, arXiv 2410.03608, "TICKing All the Boxes").

TICK has an LLM write an instruction-specific checklist of yes/no questions; STICK uses
it for self-improvement: a response is checked against the checklist and the model
revises it with the items it failed as feedback (+7.8 on LiveBench reasoning), and
best-of-n selection by checklist pass rate picks among the candidates (+6.3 on
WildBench; ``filter.selection: best_of_n_pass_rate`` here).

:func:`refine` runs the revision rounds. Every sample is judged item by item; one
that fails an item (p(Yes) below the threshold) is revised: the conversation that
produced it, the answer itself as the assistant turn, then ``prompts/refinement.j2``
listing the failed items (:func:`refinement_messages`). The revision is judged in its
turn and revised again while it fails items, up to ``rounds`` times. Every version is
kept as a :class:`RefinedVersion` (its round, its parent, its answers and pass rate),
and each revision is also a :class:`~bolt.records.Generation` of its own (sample index
``round * stride + original index``), so selection chooses among originals and revisions
alike. An item whose verdict could not be read counts neither as passed nor failed: it
is left out of the pass rate and never fed back (``unjudged``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from pydantic import Field

from bolt.config import SamplingConfig
from bolt.engines.base import ChatRequest, Engine, Messages
from bolt.generations import to_generation
from bolt.longcot import RESPONSE_CLOSE
from bolt.prompts import render_template
from bolt.records import Generation, Query, Record
from bolt.rewards.base import RewardItem, reward_item
from bolt.rewards.verdicts import YesNoJudge

TOO_LONG = "too_long_for_context"


class RefinedVersion(Record):
    """One version of a sample: the original (round 0) or a revision, with its lineage."""

    version_id: str = Field(description="query_id:sample_index of this version's generation.")
    query_id: str
    origin_sample_index: int = Field(description="The original sample it descends from.")
    round: int = Field(description="0 for the original, k for the k-th revision.")
    parent_id: str | None = Field(None, description="The version it revises.")
    generation: Generation
    questions: list[str]
    p_yes: list[float | None] = Field(description="The judge's p(Yes) per question.")
    failed_items: list[str] = Field(description="Questions below the pass threshold.")
    unjudged_items: list[str] = Field(default_factory=list)
    pass_rate: float | None = Field(description="Passed / judged questions.")
    not_revised: str | None = Field(
        None, description="Why a version that fails items was not revised (too long)."
    )


class ChecklistJudge(Protocol):
    """Answers each item's checklist: p(Yes) per question (None where unreadable)."""

    def item_probabilities(
        self, items: Sequence[RewardItem], questions: Sequence[Sequence[str]]
    ) -> Sequence[Sequence[float | None]]: ...


class ItemJudge:
    """A :class:`ChecklistJudge` of any yes/no judge, one question per prompt
    (``prompts/checklist_judge.j2``, the checklist reward's), on the response only."""

    def __init__(self, judge: YesNoJudge):
        self.judge = judge

    def item_probabilities(
        self, items: Sequence[RewardItem], questions: Sequence[Sequence[str]]
    ) -> list[list[float | None]]:
        from bolt.rewards.base import judged_response

        owners, contents = [], []
        for index, (item, asked) in enumerate(zip(items, questions, strict=True)):
            response = judged_response(item)
            for question in asked:
                owners.append(index)
                contents.append(
                    render_template(
                        "checklist_judge.j2", query=item.query, response=response, question=question
                    )
                )
        out: list[list[float | None]] = [[] for _ in items]
        for owner, verdict in zip(owners, self.judge.judge(contents), strict=True):
            out[owner].append(verdict.p_yes)
        return out


def checklist_outcome(
    questions: Sequence[str], p_yes: Sequence[float | None], threshold: float
) -> tuple[list[str], list[str], float | None]:
    """(failed questions, unjudged questions, pass rate over the judged ones)."""
    failed = [q for q, p in zip(questions, p_yes, strict=True) if p is not None and p < threshold]
    unjudged = [q for q, p in zip(questions, p_yes, strict=True) if p is None]
    judged = len(questions) - len(unjudged)
    return failed, unjudged, ((judged - len(failed)) / judged if judged else None)


def refinement_messages(base: Messages, previous: str, failed_items: Sequence[str]) -> Messages:
    """The revision request: the conversation that produced ``previous``, ``previous`` as
    the assistant's turn, then the failed checklist items as feedback."""
    if not failed_items:
        raise ValueError("a revision needs at least one failed checklist item")
    feedback = render_template("refinement.j2", failed_items=list(failed_items))
    return [
        *base,
        {"role": "assistant", "content": previous},
        {"role": "user", "content": feedback},
    ]


def refine(
    generations: Sequence[Generation],
    checklists: Mapping[str, Sequence[str]],
    engine: Engine,
    judge: ChecklistJudge,
    rounds: int,
    *,
    queries: Mapping[str, Query],
    sampling: SamplingConfig,
    base_messages: Mapping[str, Messages] | None = None,
    pass_threshold: float = 0.5,
    stop_at_response_close: bool = False,
    guided_regex: str | None = None,
    context_length: int | None = None,
) -> list[RefinedVersion]:
    """Every original and every revision of ``generations``, originals first, then round
    by round (see the module docstring). ``checklists`` and ``queries`` are by query id;
    ``base_messages`` is the conversation each query's samples answered (a single user
    turn with the query when absent); ``sampling`` decodes the revisions (n is 1). A
    revision whose prompt and budget exceed ``context_length`` is not asked for: its
    parent says so (``not_revised``)."""
    if rounds < 0:
        raise ValueError(f"rounds must be >= 0, got {rounds}")
    stride = max((g.sample_index for g in generations), default=-1) + 1
    one = sampling.model_copy(update={"n": 1})
    current = _judged(list(generations), None, 0, checklists, queries, judge, pass_threshold)
    versions = list(current)
    for round_ in range(1, rounds + 1):
        requests = []
        for v in (v for v in current if v.failed_items):
            base = (base_messages or {}).get(v.query_id) or _user_turn(queries[v.query_id])
            messages = refinement_messages(base, v.generation.raw_text, v.failed_items)
            if context_length and (
                engine.count_prompt_tokens(messages) + one.max_new_tokens > context_length
            ):
                versions[versions.index(v)] = v.model_copy(update={"not_revised": TOO_LONG})
                continue
            requests.append((v, messages))
        if not requests:
            break
        todo = [v for v, _ in requests]
        outputs = engine.generate(
            [ChatRequest(v.version_id, m) for v, m in requests],
            one,
            stop=[RESPONSE_CLOSE] if stop_at_response_close else None,
            guided_regex=guided_regex,
        )
        revised = []
        for (parent, messages), samples in zip(requests, outputs, strict=True):
            completion = samples[0]
            generation = to_generation(
                parent.query_id,
                completion,
                engine,
                sampling.seed,
                prompt_tokens=completion.prompt_tokens or engine.count_prompt_tokens(messages),
                example_ids=parent.generation.example_ids,
                stopped_at_response_close=stop_at_response_close,
            )
            index = round_ * stride + parent.origin_sample_index
            revised.append(generation.model_copy(update={"sample_index": index}))
        current = _judged(revised, todo, round_, checklists, queries, judge, pass_threshold)
        versions += current
    return versions


def _user_turn(query: Query) -> Messages:
    return [{"role": "user", "content": query.text}]


def _judged(
    generations: list[Generation],
    parents: list[RefinedVersion] | None,
    round_: int,
    checklists: Mapping[str, Sequence[str]],
    queries: Mapping[str, Query],
    judge: ChecklistJudge,
    threshold: float,
) -> list[RefinedVersion]:
    """Each generation judged on its query's checklist, as a version of ``round_``."""
    missing = sorted({g.query_id for g in generations if not checklists.get(g.query_id)})
    if missing:
        raise ValueError(f"no checklist (or an empty one) for queries {missing[:5]}")
    items = [reward_item(g, queries[g.query_id]) for g in generations]
    questions = [list(checklists[g.query_id]) for g in generations]
    answers = judge.item_probabilities(items, questions)
    out = []
    for i, (g, asked, p_yes) in enumerate(zip(generations, questions, answers, strict=True)):
        failed, unjudged, rate = checklist_outcome(asked, list(p_yes), threshold)
        parent = parents[i] if parents is not None else None
        out.append(
            RefinedVersion(
                version_id=f"{g.query_id}:{g.sample_index}",
                query_id=g.query_id,
                origin_sample_index=parent.origin_sample_index if parent else g.sample_index,
                round=round_,
                parent_id=parent.version_id if parent else None,
                generation=g,
                questions=asked,
                p_yes=list(p_yes),
                failed_items=failed,
                unjudged_items=unjudged,
                pass_rate=rate,
            )
        )
    return out


def refinement_stats(versions: Sequence[RefinedVersion]) -> dict[str, object]:
    """Counts and mean pass rates per round (what a stage's manifest reports)."""
    by_round: dict[int, list[RefinedVersion]] = {}
    for v in versions:
        by_round.setdefault(v.round, []).append(v)
    rates = {
        str(r): _mean([v.pass_rate for v in vs if v.pass_rate is not None])
        for r, vs in sorted(by_round.items())
    }
    return {
        "versions_per_round": {str(r): len(vs) for r, vs in sorted(by_round.items())},
        # The versions each mean pass rate is over: what a merge of shards weighs them by.
        "judged_per_round": {
            str(r): sum(v.pass_rate is not None for v in vs) for r, vs in sorted(by_round.items())
        },
        "mean_pass_rate_per_round": rates,
        "unjudged_items": sum(len(v.unjudged_items) for v in versions),
        "not_revised": dict(Counter(v.not_revised for v in versions if v.not_revised)),
    }


def merge_refinement_stats(shards: Sequence[Mapping[str, Any]]) -> dict[str, object]:
    """The :func:`refinement_stats` of several shards (each with its round's ``judge``
    counts, :func:`bolt.rewards.refinement_live.refine_live`) as one: counts summed,
    each round's mean pass rate weighted by the versions it is over."""
    versions: Counter[str] = Counter()
    judged: Counter[str] = Counter()
    rate_sums: Counter[str] = Counter()
    not_revised: Counter[str] = Counter()
    judge: Counter[str] = Counter()
    for stats in shards:
        versions.update(stats["versions_per_round"])
        judge.update(stats.get("judge", {}))
        # A receipt written before judged_per_round was kept: weighed by its versions.
        weights = stats.get("judged_per_round", stats["versions_per_round"])
        for round_, rate in stats["mean_pass_rate_per_round"].items():
            n = weights[round_]
            judged[round_] += n
            rate_sums[round_] += 0.0 if rate is None else rate * n
        not_revised.update(stats["not_revised"])
    rounds = sorted(versions, key=int)
    return {
        "versions_per_round": {r: versions[r] for r in rounds},
        "judged_per_round": {r: judged[r] for r in rounds},
        "mean_pass_rate_per_round": {
            r: round(rate_sums[r] / judged[r], 4) if judged[r] else None for r in rounds
        },
        "unjudged_items": sum(stats["unjudged_items"] for stats in shards),
        "not_revised": dict(not_revised),
        "judge": dict(sorted(judge.items())),
    }


def _mean(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None
