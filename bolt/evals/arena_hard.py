"""Arena-Hard-Auto v0.1: win rate against a baseline, plain and style-controlled.

Li et al., 2024 (arXiv 2406.11939), as implemented in lmarena/arena-hard-auto:
each question is judged twice, the baseline as A then as B (``gen_judgment.py``); the
verdict label comes from ``[[A>B]]``-style brackets (``regex_pattern`` of
``config/judge_config.yaml``); strong verdicts count as 3 battles, ties as half a win
(``show_result.py``, ``WEIGHT=3``). BOLT reports the style-controlled score: a
Bradley-Terry model fitted with style features (length and markdown header / list /
bold counts, each as (baseline - model) / (baseline + model + 1), then standardized,
``construct_style_matrices``), whose win rate is read off the ratings alone. The
features are centred over all battles in the fit, so the controlled win rate is read
at the pool's average style difference and depends on which models are fitted
together. To compare with published numbers, fit a model together with the official
v0.1 judgments of the leaderboard models
(``battles_from_official_judgment``, ``StyleFeatures.from_official``).

The fit is sklearn's default ``LogisticRegression`` objective (L2 with C=1, as
``fit_bt`` calls it), solved here with Newton's method in numpy.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from enum import StrEnum
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from bolt.engines.base import Messages
from bolt.evals import Benchmark
from bolt.evals.judges import JudgeRequest, ReplyFormat
from bolt.evals.spec import (
    BenchmarkSpec,
    JudgingContext,
    judged_record,
    run_judge,
    system_and_user,
    user_turn,
)
from bolt.prompts import render_template
from bolt.records import EvalAnswer, EvalItemResult

STRONG_VERDICT_WEIGHT = 3
BOOTSTRAP_ROUNDS = 100  # show_result.py default --num-rounds
CI_PERCENTILES = (2.5, 97.5)
UNPARSABLE_VERDICT = "unparsable_verdict"

_VERDICT_PATTERN = re.compile(r"\[\[([AB<>=]+)\]\]")
_CODE_BLOCK = re.compile(r"```[^`]*```")


class Verdict(StrEnum):
    a_much_better = "A>>B"
    a_better = "A>B"
    tie = "A=B"
    b_better = "B>A"
    b_much_better = "B>>A"


# The other spellings show_result.py's label_to_score accepts for the same verdicts.
_LABELS: dict[str, Verdict] = {v.value: v for v in Verdict} | {
    "A<<B": Verdict.b_much_better,
    "A<B": Verdict.b_better,
    "B=A": Verdict.tie,
    "B<<A": Verdict.a_much_better,
    "B<A": Verdict.a_better,
}
_A_SCORE: dict[Verdict, float] = {
    Verdict.a_much_better: 1.0,
    Verdict.a_better: 1.0,
    Verdict.tie: 0.5,
    Verdict.b_better: 0.0,
    Verdict.b_much_better: 0.0,
}


class Side(StrEnum):
    a = "A"
    b = "B"


# gen_judgment.py: game 1 shows the baseline as A; game 2 swaps the answers.
MODEL_SIDE_BY_GAME: dict[int, Side] = {1: Side.b, 2: Side.a}


@dataclass(frozen=True)
class Battle:
    """One judged game from the tested model's side: ``score`` 1 win, 0.5 tie, 0 loss."""

    model: str
    question_id: str
    score: float
    weight: int


@dataclass(frozen=True)
class StyleFeatures:
    """What arena-hard-auto's style control measures of one answer
    (``utils/add_markdown_info.py``). ``length`` is a token count (arena-hard-auto uses
    tiktoken's gpt-4o encoding; any one tokenizer used for both sides will do)."""

    length: int
    headers: int
    lists: int
    bolds: int

    @classmethod
    def from_official(cls, conv_metadata: dict[str, Any]) -> StyleFeatures:
        """From the ``conv_metadata`` of an official model-answer file, whose counts are
        dicts by kind (h1..h6, ordered/unordered, ``**``/``__``) that style control sums."""
        return cls(
            length=conv_metadata["token_len"],
            headers=sum(conv_metadata["header_count"].values()),
            lists=sum(conv_metadata["list_count"].values()),
            bolds=sum(conv_metadata["bold_count"].values()),
        )


STYLE_FEATURE_NAMES = tuple(f.name for f in fields(StyleFeatures))


class ArenaHardQuestion(BaseModel):
    """One line of arena-hard-auto's ``data/arena-hard-v0.1/question.jsonl``."""

    model_config = ConfigDict(extra="allow", frozen=True)

    question_id: str
    category: str = "arena-hard-v0.1"
    cluster: str | None = None
    turns: list[dict[str, str]] = Field(description="[{'content': prompt}]: one user turn.")

    @property
    def prompt(self) -> str:
        return self.turns[0]["content"]


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


def parse_verdict(text: str) -> Verdict | None:
    """The judge's verdict label; None when there is none or when two labels disagree
    (``get_score`` in ``gen_judgment.py``). Equivalent spellings (``[[B<A]]`` for
    ``[[A>B]]``) agree; labels outside the accepted set are ignored."""
    verdicts = {_LABELS[label] for label in _VERDICT_PATTERN.findall(text) if label in _LABELS}
    return verdicts.pop() if len(verdicts) == 1 else None


def battle(model: str, question_id: str, verdict: Verdict, model_side: Side) -> Battle:
    """A verdict on the answer shown as A/B, mapped back to model-versus-baseline."""
    a_score = _A_SCORE[verdict]
    strong = verdict in (Verdict.a_much_better, Verdict.b_much_better)
    return Battle(
        model=model,
        question_id=question_id,
        score=a_score if model_side is Side.a else 1.0 - a_score,
        weight=STRONG_VERDICT_WEIGHT if strong else 1,
    )


def markdown_style(text: str, length: int) -> StyleFeatures:
    """Count headers, list items and bold spans outside code blocks, as
    ``add_markdown_info.py`` does."""
    prose = _CODE_BLOCK.sub("", text)
    return StyleFeatures(
        length=length,
        headers=len(re.findall(r"^#{1,6}\s", prose, re.MULTILINE)),
        lists=len(re.findall(r"^\s*\d+\.\s", prose, re.MULTILINE))
        + len(re.findall(r"^\s*[-*+]\s", prose, re.MULTILINE)),
        bolds=len(re.findall(r"\*\*[^*\n]+\*\*", prose)) + len(re.findall(r"__[^_\n]+__", prose)),
    )


def _expanded(battles: Sequence[Battle]) -> list[Battle]:
    """Each battle repeated ``weight`` times, as show_result.py explodes them."""
    return [b for b in battles for _ in range(b.weight)]


def _percent(p: float) -> float:
    return 100.0 * p


def _bootstrap(
    n: int, statistic: Callable[[np.ndarray], Any], rounds: int, seed: int
) -> tuple[Any, Any]:
    """Percentile interval of ``statistic`` (a number or an array of numbers) over
    ``rounds`` resamples, with replacement, of ``n`` rows; seeded, so reruns agree."""
    rng = np.random.default_rng(seed)
    values = [statistic(rng.integers(0, n, size=n)) for _ in range(rounds)]
    low, high = np.percentile(values, CI_PERCENTILES, axis=0)
    return low, high


def win_rate(
    battles: Sequence[Battle], rounds: int = BOOTSTRAP_ROUNDS, seed: int = 0
) -> tuple[float, float, float]:
    """(win rate, CI low, CI high) in percent, for one model's battles.

    With only model-versus-baseline battles, the Bradley-Terry fit of show_result.py
    reduces to the weighted share of wins, ties counting half; the interval resamples
    the expanded battles, as its bootstrap does.
    """
    scores = np.array([b.score for b in _expanded(battles)])
    if scores.size == 0:
        raise ValueError("no judged battles")
    low, high = _bootstrap(scores.size, lambda idx: _percent(scores[idx].mean()), rounds, seed)
    return _percent(scores.mean()), float(low), float(high)


def style_matrix(
    model_styles: Sequence[StyleFeatures], baseline_styles: Sequence[StyleFeatures]
) -> np.ndarray:
    """Standardized style differences, one row per battle (baseline is "model_a").

    Each feature is (baseline - model) / (baseline + model + 1), then centred and scaled
    over all battles; a feature that never varies becomes 0, where the official code
    would divide by zero.
    """
    a = np.array([list(asdict(s).values()) for s in baseline_styles], dtype=float)
    b = np.array([list(asdict(s).values()) for s in model_styles], dtype=float)
    diff = (a - b) / (a + b + 1.0)
    std = diff.std(axis=0)
    centred = diff - diff.mean(axis=0)
    return np.divide(centred, std, out=np.zeros_like(centred), where=std > 0)


def fit_logistic(
    x: np.ndarray, y: np.ndarray, sample_weight: np.ndarray, l2: float = 1.0
) -> np.ndarray:
    """Minimize 0.5 * l2 * |w|^2 + sum_i sample_weight_i * logloss(y_i, sigmoid(x_i . w)).

    ``y`` may be soft (0.5 for a tie). Damped Newton steps; the objective is strictly
    convex for l2 > 0, so this converges to sklearn's ``LogisticRegression(C=1/l2,
    fit_intercept=False)`` solution.
    """
    w = np.zeros(x.shape[1])

    def objective(v: np.ndarray) -> float:
        z = x @ v
        # log(1 + e^z) - y z, computed without overflow
        return 0.5 * l2 * v @ v + float(sample_weight @ (np.logaddexp(0.0, z) - y * z))

    for _ in range(100):
        p = np.exp(-np.logaddexp(0.0, -(x @ w)))  # sigmoid without overflow
        grad = l2 * w + x.T @ (sample_weight * (p - y))
        hessian = l2 * np.eye(w.size) + (x.T * (sample_weight * p * (1.0 - p))) @ x
        step = np.linalg.solve(hessian, grad)
        t, current = 1.0, objective(w)
        while objective(w - t * step) > current and t > 1e-8:
            t /= 2
        w = w - t * step
        if np.max(np.abs(t * step)) < 1e-10:
            break
    return w


def _bt_win_rates(w: np.ndarray, n_players: int) -> np.ndarray:
    """Each non-baseline player's win rate (percent) from fitted coefficients ``w``:
    P(model beats baseline) = 1 / (1 + 10^(r_baseline - r_model)), with the style
    features at 0 (the pool's average style difference)."""
    ratings = w[:n_players]
    return _percent(1.0 / (1.0 + 10.0 ** (ratings[0] - ratings[1:])))


def style_controlled_win_rates(
    battles: Sequence[Battle],
    model_styles: dict[tuple[str, str], StyleFeatures],
    baseline_styles: dict[str, StyleFeatures],
    rounds: int = BOOTSTRAP_ROUNDS,
    seed: int = 0,
) -> tuple[dict[str, tuple[float, float, float]], dict[str, float]]:
    """Style-controlled (win rate, CI low, CI high) per model, and the style coefficients.

    All models are fitted together, sharing the style coefficients, as the official
    leaderboard does; so a model's number depends on the others in the fit. Every
    battle enters twice in ``construct_style_matrices`` (a tie as one win and one loss):
    soft labels with sample weight 2 are the same objective.
    """
    expanded = _expanded(battles)
    if not expanded:
        raise ValueError("no judged battles")
    models = sorted({b.model for b in expanded})
    n_players = len(models) + 1  # column 0 is the baseline ("model_a" of every battle)
    x_players = np.zeros((len(expanded), n_players))
    for i, b in enumerate(expanded):
        x_players[i, 0], x_players[i, 1 + models.index(b.model)] = math.log(10), -math.log(10)
    features = style_matrix(
        [model_styles[(b.model, b.question_id)] for b in expanded],
        [baseline_styles[b.question_id] for b in expanded],
    )
    x = np.hstack([x_players, features])
    y = np.array([1.0 - b.score for b in expanded])  # the label is "baseline (A) wins"
    weight = np.full(len(expanded), 2.0)

    def fit(rows: np.ndarray) -> np.ndarray:
        return fit_logistic(x[rows], y[rows], weight[rows])

    w = fit(np.arange(len(expanded)))
    point = _bt_win_rates(w, n_players)
    low, high = _bootstrap(
        len(expanded), lambda rows: _bt_win_rates(fit(rows), n_players), rounds, seed
    )
    results = {m: (float(point[i]), float(low[i]), float(high[i])) for i, m in enumerate(models)}
    return results, dict(zip(STYLE_FEATURE_NAMES, map(float, w[n_players:])))


def battles_from_official_judgment(row: dict[str, Any]) -> list[Battle]:
    """Battles of one line of an official ``model_judgment/<judge>/<model>.jsonl``
    (``{"question_id", "model", "games": [{"score": "A>B", ...}, ...]}``); a game whose
    ``score`` is null or unknown is dropped, as v0.1's ``get_battles_from_judgment`` does."""
    return [
        battle(row["model"], str(row["question_id"]), _LABELS[game["score"]], MODEL_SIDE_BY_GAME[i])
        for i, game in enumerate(row["games"], start=1)
        if game.get("score") in _LABELS
    ]


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
        },
    )


def summarize(
    results: Iterable[EvalItemResult], rounds: int = BOOTSTRAP_ROUNDS, seed: int = 0
) -> ArenaHardReport:
    """Plain and style-controlled win rates of every model in ``results``.

    A game without a verdict is dropped and counted (arena-hard-auto v0.1 gives it
    weight 0); the other game of the same question still counts.
    """
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
    by_model: dict[str, list[Battle]] = defaultdict(list)
    for b in battles:
        by_model[b.model].append(b)

    def report(model: str, numbers: tuple[float, float, float]) -> WinRate:
        n_games = len(by_model[model])
        return WinRate(
            model=model,
            win_rate=numbers[0],
            ci_low=numbers[1],
            ci_high=numbers[2],
            n_games=n_games,
            n_unparsable=unparsable[model],
        )

    controlled, coefficients = style_controlled_win_rates(
        battles, model_styles, baseline_styles, rounds, seed
    )
    return ArenaHardReport(
        plain={m: report(m, win_rate(bs, rounds, seed)) for m, bs in sorted(by_model.items())},
        style_controlled={m: report(m, numbers) for m, numbers in controlled.items()},
        style_coefficients=coefficients,
    )


# ------------------------------------------------------------ the stage's benchmark


def question_turn(question: ArenaHardQuestion) -> Messages:
    return user_turn(question.prompt)


def style_of(text: str) -> StyleFeatures:
    """Style features with length in whitespace tokens (one tokenizer for both sides)."""
    return markdown_style(text, len(text.split()))


def grade(
    ctx: JudgingContext, questions: Sequence[ArenaHardQuestion], answers: dict[str, EvalAnswer]
) -> list[EvalItemResult]:
    """Both games of every question against the baseline's answer (none without one)."""
    if ctx.baseline is None:
        return []
    system = render_template("evals/arena_hard_system.j2").strip()
    requests, build = [], []
    for q in questions:
        text = answers[q.question_id].turns[0]
        shown = ctx.shown(text)
        reference = ctx.shown(ctx.baseline[q.question_id].turns[0])
        for game, side in MODEL_SIDE_BY_GAME.items():
            a, b = (shown, reference) if side is Side.a else (reference, shown)
            user = render_template(
                "evals/arena_hard_user.j2", question=q.prompt, answer_a=a, answer_b=b
            )
            requests.append(
                JudgeRequest(
                    id=f"arena_hard/{q.question_id}/game{game}",
                    messages=system_and_user(system, user),
                    reply_format=ReplyFormat.verdict,
                    query=q.prompt,
                    answers=(a, b),
                )
            )
            build.append(
                lambda raw, q=q, game=game, text=text, shown=shown, ref=reference: game_result(
                    q.question_id, game, ctx.model, text, raw, style_of(shown), style_of(ref), shown
                )
            )
    return run_judge(ctx, requests, build)


def metrics(
    results: list[EvalItemResult], questions: Sequence[Any], k: int
) -> tuple[dict[str, float | None], dict[str, Any]]:
    """The style-controlled win rate (BOLT's number) with its interval, then the plain one."""
    if not any(r.verdict for r in results):
        return {"arena_hard_sc": None, "arena_hard": None}, {}
    report = summarize(results)
    sc = next(iter(report.style_controlled.values()))
    plain = next(iter(report.plain.values()))
    return {
        "arena_hard_sc": sc.win_rate,
        "arena_hard_sc_ci_low": sc.ci_low,
        "arena_hard_sc_ci_high": sc.ci_high,
        "arena_hard": plain.win_rate,
    }, report.model_dump(mode="json")


SPEC = BenchmarkSpec(
    name=Benchmark.arena_hard,
    item_type=ArenaHardQuestion,
    item_id=lambda q: q.question_id,
    messages=question_turn,
    grade=grade,
    metrics=metrics,
    headline="arena_hard_sc",
    judged=True,
    pairwise=True,
)
