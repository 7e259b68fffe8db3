"""Arena-Hard-Auto: win rate against a baseline, plain and style-controlled.

Li et al., 2024 (arXiv 2406.11939), as implemented in lmarena/arena-hard-auto:
each question is judged twice, the baseline as A then as B (``gen_judgment.py``); the
verdict label comes from ``[[A>B]]``-style brackets (``regex_pattern`` of
``config/judge_config.yaml``, v0.1); strong verdicts count as 3 battles, ties as half a
win (``show_result.py``, ``WEIGHT=3``). BOLT reports the style-controlled score
(:mod:`bolt.evals.style_control`), whose number depends on which models are fitted
together: fitted in the pool of the official v0.1 leaderboard's battles (their
judgments and the style of their answers, :mod:`bolt.evals.arena_hard_files`) against
gpt-4-0314 by gpt-4-1106-preview, it is on the leaderboard's scale; fitted on our own
battles alone it is a local number, and the report says so.

Both layouts of the official files are read: the current one (``uid``, ``prompt``;
judgments keyed by ``uid``) and the 2024 one (``question_id``, ``turns``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bolt.engines.base import Messages
from bolt.evals import Benchmark
from bolt.evals.arena_hard_files import (
    MODEL_SIDE_BY_GAME,
    Battle,
    LeaderboardPool,
    Side,
    Verdict,
    battle,
    files_digest,
    load_answers,
    load_pool,
    parse_verdict,
)
from bolt.evals.judges import JudgeRequest, ReplyFormat
from bolt.evals.spec import (
    BenchmarkContext,
    BenchmarkSpec,
    JudgingContext,
    judged_record,
    run_judge,
    system_and_user,
    user_turn,
)
from bolt.evals.style_control import (
    BOOTSTRAP_ROUNDS,
    StyledBattle,
    StyleFeatures,
    bootstrap,
    fit_style_controlled,
    style_of,
)
from bolt.prompts import render_template
from bolt.records import EvalAnswer, EvalItemResult

UNPARSABLE_VERDICT = "unparsable_verdict"
V01_CATEGORY = "arena-hard-v0.1"  # the category of every v0.1 question


class ArenaHardQuestion(BaseModel):
    """One question of ``data/arena-hard-v0.1/question.jsonl`` or ``arena-hard-v2.0``.

    Current layout: ``uid``, ``category``, ``cluster`` (v0.1) or ``subcategory`` (v2.0),
    ``prompt``; the 2024 layout (``question_id``, ``turns: [{"content": ...}]``) is read
    into the same fields.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    uid: str
    category: str = V01_CATEGORY
    cluster: str | None = None
    subcategory: str | None = None
    prompt: str

    @model_validator(mode="before")
    @classmethod
    def _from_2024_layout(cls, row: Any) -> Any:
        if isinstance(row, dict) and "uid" not in row and "question_id" in row:
            row = dict(row)
            row["uid"] = str(row.pop("question_id"))
            row.setdefault("prompt", row.pop("turns")[0]["content"])
        return row

    @property
    def question_id(self) -> str:
        return self.uid


def version(questions: Sequence[ArenaHardQuestion]) -> str:
    """ "v0.1" for the v0.1 questions, "v2.0" for v2.0's (categories ``hard_prompt``,
    ``creative_writing``, ...)."""
    categories = {q.category for q in questions}
    return "v0.1" if categories <= {V01_CATEGORY} else "v2.0"


class WinRate(BaseModel):
    model: str
    win_rate: float = Field(description="Percent against the baseline (the baseline is 50).")
    ci_low: float
    ci_high: float
    n_games: int
    n_unparsable: int


class ArenaHardReport(BaseModel):
    plain: dict[str, WinRate]
    style_controlled: dict[str, WinRate]
    style_coefficients: dict[str, float] = Field(description="Fitted on the full data.")
    pool: dict[str, Any] | None = Field(
        None, description="The leaderboard pool the style control was fitted in; None: local."
    )


def _expanded(battles: Sequence[Battle]) -> list[Battle]:
    """Each battle repeated ``weight`` times, as show_result.py explodes them."""
    return [b for b in battles for _ in range(b.weight)]


def win_rate(
    battles: Sequence[Battle], rounds: int = BOOTSTRAP_ROUNDS, seed: int = 0
) -> tuple[float, float, float]:
    """(win rate, CI low, CI high) in percent, for one model's battles.

    With only model-versus-baseline battles, the Bradley-Terry fit of show_result.py
    reduces to the weighted share of wins, ties counting half; the interval resamples
    the expanded battles, as its bootstrap does.
    """
    scores = [b.score for b in _expanded(battles)]
    if not scores:
        raise ValueError("no judged battles")
    mean = 100.0 * sum(scores) / len(scores)
    low, high = bootstrap(
        len(scores), lambda idx: 100.0 * sum(scores[i] for i in idx) / len(idx), rounds, seed
    )
    return mean, float(low), float(high)


def style_controlled_win_rates(
    battles: Sequence[Battle],
    model_styles: dict[tuple[str, str], StyleFeatures],
    baseline_styles: dict[str, StyleFeatures],
    rounds: int = BOOTSTRAP_ROUNDS,
    seed: int = 0,
) -> tuple[dict[str, tuple[float, float, float]], dict[str, float]]:
    """Style-controlled (win rate, CI low, CI high) of every model in ``battles``, all
    fitted together (:func:`bolt.evals.style_control.fit_style_controlled`)."""
    return fit_style_controlled(
        [
            StyledBattle(
                b.model,
                b.score,
                model_styles[(b.model, b.question_id)],
                baseline_styles[b.question_id],
            )
            for b in _expanded(battles)
        ],
        rounds,
        seed,
    )


# ------------------------------------------------------------- our own judged records


def game_result(
    question_id: str,
    game: int,
    model: str,
    answer: str,
    judge_raw: str,
    model_style: StyleFeatures,
    baseline_style: StyleFeatures,
    judged_text: str | None = None,
    baseline: str | None = None,
) -> EvalItemResult:
    """One judged game as a record; ``verdict`` is the label as the judge gave it (A/B
    as shown), ``meta['model_side']`` says where the model's answer was."""
    verdict = parse_verdict(judge_raw)
    return judged_record(
        Benchmark.arena_hard,
        f"{question_id}-game{game}",
        model,
        answer,
        judge_raw,
        judged_text,
        unparsable=UNPARSABLE_VERDICT,
        verdict=verdict.value if verdict is not None else None,
        meta={
            "question_id": question_id,
            "game": game,
            "model_side": MODEL_SIDE_BY_GAME[game].value,
            "model_style": asdict(model_style),
            "baseline_style": asdict(baseline_style),
            "baseline": baseline,
        },
    )


def _our_battles(
    results: Iterable[EvalItemResult],
) -> tuple[list[Battle], dict[str, int], dict[tuple[str, str], StyleFeatures], dict]:
    battles: list[Battle] = []
    unparsable: dict[str, int] = defaultdict(int)
    model_styles: dict[tuple[str, str], StyleFeatures] = {}
    baseline_styles: dict[str, StyleFeatures] = {}
    for r in results:
        qid = r.meta["question_id"]
        model_styles[(r.model, qid)] = StyleFeatures(**r.meta["model_style"])
        baseline_styles[qid] = StyleFeatures(**r.meta["baseline_style"])
        if r.verdict is None:
            unparsable[r.model] += 1
            continue
        battles.append(battle(r.model, qid, Verdict(r.verdict), Side(r.meta["model_side"])))
    return battles, unparsable, model_styles, baseline_styles


def summarize(
    results: Iterable[EvalItemResult],
    rounds: int = BOOTSTRAP_ROUNDS,
    seed: int = 0,
    pool: LeaderboardPool | None = None,
) -> ArenaHardReport:
    """Plain and style-controlled win rates of every model in ``results``; with ``pool``,
    the style control is fitted together with the leaderboard's battles (whose models'
    own rates are left out of the report).

    A game without a verdict is dropped and counted (arena-hard-auto v0.1 gives it
    weight 0); the other game of the same question still counts.
    """
    battles, unparsable, model_styles, baseline_styles = _our_battles(results)
    by_model: dict[str, list[Battle]] = defaultdict(list)
    for b in battles:
        by_model[b.model].append(b)
    fitted = list(battles)
    if pool is not None:
        clash = set(by_model) & set(pool.models)
        if clash:
            raise ValueError(f"models {sorted(clash)} are already in the leaderboard pool")
        fitted += pool.battles
        model_styles = pool.model_styles | model_styles
        # the baseline's answers are the pool's own: its measured styles win
        baseline_styles = baseline_styles | pool.baseline_styles

    def report(model: str, numbers: tuple[float, float, float]) -> WinRate:
        return WinRate(
            model=model,
            win_rate=numbers[0],
            ci_low=numbers[1],
            ci_high=numbers[2],
            n_games=len(by_model[model]),
            n_unparsable=unparsable[model],
        )

    controlled, coefficients = style_controlled_win_rates(
        fitted, model_styles, baseline_styles, rounds, seed
    )
    return ArenaHardReport(
        plain={m: report(m, win_rate(bs, rounds, seed)) for m, bs in sorted(by_model.items())},
        style_controlled={m: report(m, controlled[m]) for m in sorted(by_model)},
        style_coefficients=coefficients,
        pool=pool.describe() if pool is not None else None,
    )


# ------------------------------------------------------------ the stage's benchmark


def question_turn(question: ArenaHardQuestion) -> Messages:
    return user_turn(question.prompt)


def grade(
    ctx: JudgingContext, questions: Sequence[ArenaHardQuestion], answers: dict[str, EvalAnswer]
) -> list[EvalItemResult]:
    """Both games of every question against the baseline's answer (the first reference;
    nothing is judged without one). Style features are measured on what the judge saw."""
    if not ctx.references:
        return []
    baseline, reference_answers = next(iter(ctx.references.items()))
    system = render_template("evals/arena_hard_system.j2").strip()
    requests, build = [], []
    for q in questions:
        text = answers[q.uid].turns[0]
        shown = ctx.shown(text)
        reference = ctx.shown(reference_answers[q.uid].turns[0])
        styles = (style_of(shown), style_of(reference))
        for game, side in MODEL_SIDE_BY_GAME.items():
            a, b = (shown, reference) if side is Side.a else (reference, shown)
            user = render_template(
                "evals/arena_hard_user.j2", question=q.prompt, answer_a=a, answer_b=b
            )
            requests.append(
                JudgeRequest(
                    id=f"arena_hard/{q.uid}/game{game}",
                    messages=system_and_user(system, user),
                    reply_format=ReplyFormat.verdict,
                    query=q.prompt,
                    answers=(a, b),
                )
            )
            build.append(
                lambda raw, q=q, game=game, text=text, shown=shown, styles=styles: game_result(
                    q.uid, game, ctx.model, text, raw, *styles, shown, baseline
                )
            )
    return run_judge(ctx, requests, build)


SC_METRICS = ("arena_hard_sc", "arena_hard_sc_ci_low", "arena_hard_sc_ci_high")


def metrics(
    results: list[EvalItemResult],
    questions: Sequence[Any],
    k: int,
    context: BenchmarkContext | None = None,
    judge: str | None = None,
) -> tuple[dict[str, float | None], dict[str, Any]]:
    """The style-controlled win rate (BOLT's number) with its interval, then the plain one.

    Fitted in the leaderboard pool where ``eval.arena_hard`` names one and our games were
    judged as the pool's were: against the pool's baseline, by the pool's judge
    (``judge``: our judge model). Otherwise on our battles alone: ``details['local_only']``
    names the numbers that are therefore on no leaderboard's scale, and
    ``details['pool_not_used']`` says why a pool given was left out.
    """
    if not any(r.verdict for r in results):
        return {"arena_hard_sc": None, "arena_hard": None}, {}
    pool = context.pool if context is not None else None
    not_used = pool_mismatch(pool, {r.meta.get("baseline") for r in results}, judge)
    if not_used is not None:
        pool = None
    report = summarize(results, pool=pool)
    sc = next(iter(report.style_controlled.values()))
    plain = next(iter(report.plain.values()))
    details = report.model_dump(mode="json")
    if pool is None:
        details["local_only"] = list(SC_METRICS)
    if not_used is not None:
        details["pool_not_used"] = not_used
    return {
        "arena_hard_sc": sc.win_rate,
        "arena_hard_sc_ci_low": sc.ci_low,
        "arena_hard_sc_ci_high": sc.ci_high,
        "arena_hard": plain.win_rate,
    }, details


def pool_mismatch(pool: LeaderboardPool | None, baselines: set, judge: str | None) -> str | None:
    """Why our battles may not be fitted in ``pool`` (None: they may, or there is no pool).

    Our games must have been played against the pool's baseline and judged by the pool's
    judge: battles of another judge (a local one, or gpt-4o for v0.1's gpt-4-1106-preview)
    are not on the pool's scale. A pool whose files name no judge is used by no one.
    """
    if pool is None:
        return None
    if baselines != {pool.baseline}:
        ours = ", ".join(sorted(map(str, baselines)))
        return f"our games were against {ours}, the pool's against {pool.baseline}"
    if pool.judge is None:
        return "the pool's judgment files name no judge"
    if judge != pool.judge:
        return f"our judge is {judge}, the pool's {pool.judge}"
    return None


def prepare(eval_cfg: Any, s3: Any, questions: Sequence[ArenaHardQuestion]) -> BenchmarkContext:
    """The official baseline's answers (``eval.arena_hard.baseline_answers``) and the
    leaderboard pool (``leaderboard_judgments`` with ``leaderboard_answers``), where set."""
    section = eval_cfg.arena_hard
    if section.baseline_answers is None:
        return BenchmarkContext()
    answers = load_answers([section.baseline_answers])
    if len(answers) != 1:
        raise ValueError(f"{section.baseline_answers}: answers of {sorted(answers)}, not one model")
    baseline, by_uid = next(iter(answers.items()))
    missing = [q.uid for q in questions if q.uid not in by_uid]
    if missing:
        raise ValueError(f"{section.baseline_answers}: no {baseline} answer to {missing[:3]}")
    references = {
        baseline: {
            q.uid: EvalAnswer(
                benchmark=Benchmark.arena_hard.value,
                item_id=q.uid,
                model=baseline,
                turns=[by_uid[q.uid].answer],
                finish_reasons=[None],
                prompt_tokens=0,
                output_tokens=0,
            )
            for q in questions
        }
    }
    files = [section.baseline_answers]
    pool = None
    if section.leaderboard_judgments:
        pool = load_pool(section.leaderboard_judgments, section.leaderboard_answers, by_uid)
        files += [*section.leaderboard_judgments, *section.leaderboard_answers]
    return BenchmarkContext(
        references=references,
        pool=pool,
        digest=files_digest(files),
        describe={"baseline": baseline, "pool": pool.describe() if pool else None},
    )


SPEC = BenchmarkSpec(
    name=Benchmark.arena_hard,
    item_type=ArenaHardQuestion,
    item_id=lambda q: q.uid,
    messages=question_turn,
    grade=grade,
    metrics=metrics,
    headline="arena_hard_sc",
    judged=True,
    pairwise=True,
    version=version,
    prepare=prepare,
    uses_context=True,
)
