"""Importers of the official result files a user downloads, and the leaderboard figures
they give (``bolt eval import-official FOLDER``).

Each file is recognised by its rows, not its name:

- FastChat MT-Bench single-answer judgments (``model_judgment/gpt-4_single.jsonl``:
  ``question_id``, ``model``, ``judge: [judge, prompt]``, ``score``, ``turn``): the
  mean rating overall and per turn, as ``show_result.py --mode single`` computes it
  (ratings of -1 left out; every line counts, repeated lines included, and the repeats
  are counted beside the number);
- Arena-Hard judgments (``model_judgment/<judge>/<model>.jsonl``, either layout): each
  model's win rate against the baseline (:mod:`bolt.evals.arena_hard`); with the
  models' answer files in the folder too (``model_answer/*.jsonl``), the style-controlled
  rate fitted over all of them, as the v0.1 leaderboard did. The baseline is listed at
  50 by construction, as ``show_result.py`` lists it;
- WildBench eval results (``score.v2/eval=<judge>/<model>.json``,
  ``pairwise.v2/eval=<judge>/ref=<ref>/<model>.json``): WB-Score and WB-Reward at K
  (:mod:`bolt.evals.wildbench_results`), each named by its file as the leaderboard names
  it; their task macros and groups need the WildBench items (the files carry no tags);
- the WildBench leaderboard table (``leaderboard/data_dir/all_stat_wildbench.<K>.json``:
  model -> ``WB_score``, ``haiku_reward.K=<K>``, ...): not results but the published
  figures, put beside the figures computed from the result files of the same models;
- ZeroEval ZebraLogic results (``result_dirs/zebra-grid/<model>.json``: ``id``,
  ``size``, ``output``): graded against the puzzles' solutions (the private set's, which
  must be given), cell and puzzle accuracy as ZeroEval reports them.

Files may be gzip-compressed (``*.json.gz``, ``*.jsonl.gz``).
"""

from __future__ import annotations

import gzip
import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bolt.evals import Benchmark, mean_or_none, zebralogic
from bolt.evals.arena_hard import style_controlled_win_rates, win_rate
from bolt.evals.arena_hard_files import ArenaHardAnswer, Battle, battles_from_official_judgment
from bolt.evals.style_control import StyleFeatures
from bolt.evals.wildbench import DEFAULT_LENGTH_MARGIN
from bolt.evals.wildbench_files import WildBenchItem
from bolt.evals.wildbench_results import (
    OfficialPairwiseResult,
    OfficialScoreResult,
    official_reward_report,
    official_score_report,
)

DEFAULT_ARENA_BASELINE = "gpt-4-0314"  # show_result.py --baseline default (v0.1)


@dataclass(frozen=True)
class Figure:
    """One leaderboard number computed from one official file."""

    benchmark: Benchmark
    model: str
    metric: str
    value: float | None
    source: str
    note: str = ""
    published: float | None = (
        None  # the leaderboard's own figure, where a table in the folder has it
    )


@dataclass
class Found:
    """The official files of a folder, by kind."""

    mt_bench: list[tuple[Path, list[dict]]] = field(default_factory=list)
    arena_judgments: list[tuple[Path, list[dict]]] = field(default_factory=list)
    arena_answers: list[tuple[Path, list[dict]]] = field(default_factory=list)
    wildbench_scores: list[tuple[Path, list[dict]]] = field(default_factory=list)
    wildbench_pairwise: list[tuple[Path, list[dict]]] = field(default_factory=list)
    zeroeval: list[tuple[Path, list[dict]]] = field(default_factory=list)
    wildbench_tables: list[tuple[Path, list[dict]]] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


_SUFFIXES = (".json", ".jsonl", ".json.gz", ".jsonl.gz")


def _suffix(path: Path) -> str | None:
    return next((s for s in _SUFFIXES if path.name.endswith(s)), None)


def file_model(path: Path) -> str:
    """The model a result file is named for: its name less ``.json[l][.gz]``, the key the
    official leaderboard scripts give its row (``_create_tables.py``: the file name)."""
    suffix = _suffix(path)
    return path.name[: -len(suffix)] if suffix else path.stem


def _rows(path: Path) -> list[dict]:
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    text = data.decode("utf-8")
    if _suffix(path) in (".json", ".json.gz"):
        rows = json.loads(text)
        return rows if isinstance(rows, list) else [rows]
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _is_wildbench_table(row: dict[str, Any]) -> bool:
    """``all_stat_wildbench.<K>.json``: one object of model -> its leaderboard columns."""
    values = list(row.values())
    return bool(values) and all(isinstance(v, dict) and "WB_score" in v for v in values)


def _kind(row: dict[str, Any]) -> str | None:
    if _is_wildbench_table(row):
        return "wildbench_tables"
    keys = set(row)
    if {"games", "model"} <= keys:
        return "arena_judgments"
    if {"question_id", "score", "turn", "judge"} <= keys:
        return "mt_bench"
    if {"model_A", "model_B", "winner"} <= keys:
        return "wildbench_pairwise"
    if "session_id" in keys and ("model_test" in keys or "parsed_result" in keys):
        return "wildbench_scores"
    if "output" in keys and "size" in keys:
        return "zeroeval"
    if "messages" in keys or ("choices" in keys and isinstance(row.get("question_id"), str)):
        return "arena_answers"
    return None


def scan(folder: Path) -> Found:
    """Every ``*.json``/``*.jsonl`` under ``folder``, sorted, by the kind of its rows."""
    found = Found()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and _suffix(p)):
        try:
            rows = _rows(path)
        except (ValueError, UnicodeDecodeError, OSError, EOFError) as e:
            found.skipped.append((path, f"not JSON: {e}"))
            continue
        kind = _kind(rows[0]) if rows and isinstance(rows[0], dict) else None
        if kind is None:
            found.skipped.append((path, "not an official result file"))
        else:
            getattr(found, kind).append((path, rows))
    return found


def mt_bench_figures(path: Path, rows: list[dict]) -> list[Figure]:
    """FastChat ``show_result.py --mode single``: mean of the ratings that are not -1."""
    by_model: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        if r["score"] != -1:
            by_model[r["model"]].append(r)
    figures = []
    for model, scored in sorted(by_model.items()):
        repeats = sum(
            n - 1 for n in Counter((r["question_id"], r["turn"]) for r in scored).values()
        )
        judge = {r["judge"][0] for r in scored}
        note = f"judge {', '.join(sorted(judge))}; {repeats} repeated (question, turn) rows"
        for metric, turn in (("mt_bench", None), ("turn_1", 1), ("turn_2", 2)):
            values = [float(r["score"]) for r in scored if turn is None or r["turn"] == turn]
            figures.append(
                Figure(Benchmark.mt_bench, model, metric, mean_or_none(values), str(path), note)
            )
    return figures


def _arena_styles(
    answers: list[tuple[Path, list[dict]]],
) -> dict[tuple[str, str], StyleFeatures]:
    styles = {}
    for _, rows in answers:
        for row in rows:
            a = ArenaHardAnswer.model_validate(row)
            styles[(a.model, a.uid)] = a.style()
    return styles


def arena_hard_figures(found: Found, baseline: str = DEFAULT_ARENA_BASELINE) -> list[Figure]:
    """Plain win rates of every judged model; style-controlled ones where every answer's
    style is known (the judged models' and the baseline's answer files are present)."""
    battles: dict[str, list[Battle]] = defaultdict(list)
    sources: dict[str, str] = {}
    for path, rows in found.arena_judgments:
        for row in rows:
            for b in battles_from_official_judgment(row):
                if b.model != baseline:
                    battles[b.model].append(b)
                    sources[b.model] = str(path)
    if not battles:
        return []
    figures = [Figure(Benchmark.arena_hard, baseline, "arena_hard", 50.0, "", "by construction")]
    for model, bs in sorted(battles.items()):
        rate, low, high = win_rate(bs)
        note = f"95% CI ({low:.1f}, {high:.1f}); {len(bs)} judged games"
        figures.append(
            Figure(Benchmark.arena_hard, model, "arena_hard", rate, sources[model], note)
        )
    styles = _arena_styles(found.arena_answers)
    every = [b for bs in battles.values() for b in bs]
    if all(
        (b.model, b.question_id) in styles and (baseline, b.question_id) in styles for b in every
    ):
        baseline_styles = {uid: s for (m, uid), s in styles.items() if m == baseline}
        controlled, _ = style_controlled_win_rates(every, styles, baseline_styles)
        for model, (rate, low, high) in sorted(controlled.items()):
            note = f"fitted over {len(battles)} models; 95% CI ({low:.1f}, {high:.1f})"
            figures.append(
                Figure(Benchmark.arena_hard, model, "arena_hard_sc", rate, sources[model], note)
            )
    return figures


# The leaderboard's short names of the three official references (``_merge_results.py``).
_REFERENCE_COLUMNS = {
    "claude-3-haiku-20240307": "haiku",
    "Llama-2-70b-chat-hf": "llama",
    "gpt-4-turbo-2024-04-09": "gpt4t",
}


def wildbench_published(found: Found) -> dict[str, dict[str, float]]:
    """Every WildBench leaderboard table's columns, by model (tables of several K merge:
    their reward columns carry the K in their names)."""
    published: dict[str, dict[str, float]] = defaultdict(dict)
    for _, rows in found.wildbench_tables:
        for model, columns in rows[0].items():
            published[model] |= {
                k: float(v) for k, v in columns.items() if isinstance(v, int | float)
            }
    return published


def _published_column(metric: str, reference: str | None, k: int) -> str | None:
    if reference is None:
        return {"wb_score": "WB_score", "wb_score_task_macro": "WB_score.task_macro"}[metric]
    short = _REFERENCE_COLUMNS.get(reference)
    if short is None:
        return None
    return f"{short}_reward.K={k}" if metric == "wb_reward" else f"{short}_reward.task_macro.K={k}"


def wildbench_figures(
    found: Found, items: Sequence[WildBenchItem] = (), k: int = DEFAULT_LENGTH_MARGIN
) -> list[Figure]:
    """WB-Score of each score file, WB-Reward at ``k`` of each pairwise file (the
    reference is the folder name ``ref=<model>``, as the official tree names it). Each
    figure is named by its file, as the leaderboard names its rows, and carries the
    leaderboard table's figure for that model where the folder holds the table."""
    published = wildbench_published(found)
    figures = []
    no_items = "" if items else "; no WildBench items given: no task groups, no task macro"

    def figure(model: str, metric: str, reference: str | None, value, path, note) -> Figure:
        column = _published_column(metric, reference, k)
        name = metric if reference is None else f"{metric}.{reference}"
        return Figure(
            Benchmark.wildbench,
            model,
            name,
            value,
            str(path),
            note,
            published=published.get(model, {}).get(column) if column else None,
        )

    for path, rows in found.wildbench_scores:
        results = [OfficialScoreResult.model_validate(r) for r in rows]
        report = official_score_report(results, items)
        model = file_model(path)
        tested = {r.model_test for r in results if r.model_test}
        note = f"{len(results)} scored tasks ({', '.join(sorted(tested)) or model})" + no_items
        if report.n_unparsable:
            note += f"; {report.n_unparsable} unparsable scores left out"
        figures.append(figure(model, "wb_score", None, report.score, path, note))
        figures.append(figure(model, "wb_score_task_macro", None, report.task_macro, path, note))
    for path, rows in found.wildbench_pairwise:
        reference = path.parent.name.removeprefix("ref=")
        results = [OfficialPairwiseResult.model_validate(r) for r in rows]
        report = official_reward_report(results, items, reference_model=reference, k=k)
        model = file_model(path)
        note = f"{len(results)} judged pairs, K={k}" + no_items
        for metric, value in (
            ("wb_reward", report.reward),
            ("wb_reward_task_macro", report.task_macro),
        ):
            figures.append(figure(model, metric, reference, value, path, note))
    return figures


def zeroeval_figures(found: Found, puzzles: Sequence[zebralogic.ZebraPuzzle] = ()) -> list[Figure]:
    """ZeroEval's ZebraLogic numbers of each result file, graded against ``puzzles``
    (:func:`bolt.evals.zebralogic.grade_zeroeval_results`, ZeroEval's own parse)."""
    by_id = {p.id: p for p in puzzles}
    figures = []
    for path, rows in found.zeroeval:
        model = str(rows[0].get("generator") or file_model(path))
        known = [r for r in rows if str(r.get("id")) in by_id]
        if not known:
            note = "no puzzles with solutions given for its ids"
            figures.append(
                Figure(Benchmark.zebralogic, model, "cell_accuracy", None, str(path), note)
            )
            continue
        report = zebralogic.grade_zeroeval_results(known, by_id)
        note = f"{len(known)} of {len(rows)} rows graded ({report.parse} parse)"
        for metric in ("cell_accuracy", "puzzle_accuracy", "no_answer_rate"):
            value = getattr(report, metric)
            figures.append(Figure(Benchmark.zebralogic, model, metric, value, str(path), note))
    return figures


def import_folder(
    folder: Path,
    wildbench_items: Sequence[WildBenchItem] = (),
    puzzles: Sequence[zebralogic.ZebraPuzzle] = (),
    k: int = DEFAULT_LENGTH_MARGIN,
    arena_baseline: str = DEFAULT_ARENA_BASELINE,
) -> tuple[list[Figure], list[tuple[Path, str]]]:
    """Every figure the official files under ``folder`` give, and the files skipped."""
    found = scan(folder)
    figures = [f for path, rows in found.mt_bench for f in mt_bench_figures(path, rows)]
    figures += arena_hard_figures(found, arena_baseline)
    figures += wildbench_figures(found, wildbench_items, k)
    figures += zeroeval_figures(found, puzzles)
    return figures, found.skipped
