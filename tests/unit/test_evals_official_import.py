"""`bolt eval import-official`: the official result files a user downloads go through the
project's importers and give the leaderboards' figures; plus the report's rule that a
paper figure stands only beside a number on the same version, baseline and judge."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bolt.config import EvalConfig, JudgeConfig
from bolt.evals import Benchmark, wildbench
from bolt.evals.data import load_items
from bolt.evals.official import import_folder
from bolt.evals.report import BenchmarkSummary, table_rows
from bolt.evals.rows import hub_id, read_rows
from bolt.evals.spec import JudgingContext
from bolt.evals.wildbench_files import OFFICIAL_REFERENCES, load_reference
from bolt_cli.main import app

REPO = Path(__file__).parents[2]
MT_BENCH = REPO / "data/evals/official/mt-bench-gpt4-judgments"
GPT4 = REPO / "data/evals/official/arena-hard/v0.1/model_answer/gpt-4-0314.jsonl"
WILDBENCH = REPO / "data/evals/official/wildbench"
FIXTURES = REPO / "tests/fixtures/evals"


def _figures(folder: Path, **kw) -> dict[tuple[str, str, str], float | None]:
    figures, _ = import_folder(folder, **kw)
    return {(f.benchmark.value, f.model, f.metric): f.value for f in figures}


def test_mt_bench_gpt4_judgments_of_llama3_8b():
    # FastChat show_result.py --mode single on GPT-4's judgments of this run: every line
    # that is not -1, the six repeated turn-1 lines included (7.84; 7.77 without them)
    got = _figures(MT_BENCH)
    model = "Meta-Llama-3-8B-Instruct-Normal"
    assert round(got[("mt_bench", model, "mt_bench")], 2) == 7.84
    assert round(got[("mt_bench", model, "turn_1")], 2) == 8.38
    assert round(got[("mt_bench", model, "turn_2")], 2) == 7.26


def _show_result_share(path: Path) -> float:
    """show_result.py's label_to_score by hand: game 2 as is, game 1 mirrored, strong x3."""
    weight = {"A>B": [1], "A>>B": [1] * 3, "A=B": [0.5], "B>A": [0], "B>>A": [0] * 3}
    scores = []
    for row in map(json.loads, path.open()):
        g1, g2 = row["games"]
        scores += [1 - s for s in weight[g1["score"]]] if g1 else []
        scores += weight[g2["score"]] if g2 else []
    return 100 * sum(scores) / len(scores)


def test_arena_hard_judgments_and_answers(tmp_path):
    folder = tmp_path / "arena-hard-v0.1"
    shutil.copytree(FIXTURES / "arena-hard-constructed-pool", folder)
    got = _figures(folder)
    assert got[("arena_hard", "gpt-4-0314", "arena_hard")] == 50.0  # by construction
    assert got[("arena_hard", "pool-verbose-7b", "arena_hard")] == pytest.approx(
        _show_result_share(folder / "model_judgment/gpt-4-1106-preview/pool-verbose-7b.jsonl")
    )
    assert ("arena_hard", "pool-verbose-7b", "arena_hard_sc") not in got  # no baseline styles
    shutil.copy(GPT4, folder / "model_answer")  # the real baseline answers: style control
    got = _figures(folder)
    sc = {m: got[("arena_hard", m, "arena_hard_sc")] for m in ("pool-verbose-7b", "pool-terse-7b")}
    assert sc["pool-verbose-7b"] < got[("arena_hard", "pool-verbose-7b", "arena_hard")]
    assert sc["pool-terse-7b"] > got[("arena_hard", "pool-terse-7b", "arena_hard")]


def test_zeroeval_results_with_their_puzzles(tmp_path):
    shutil.copy(FIXTURES / "zeroeval_zebra_grid_results.handmade.json", tmp_path)
    puzzles = load_items(
        Benchmark.zebralogic, str(FIXTURES / "zeroeval_zebra_puzzles.handmade.jsonl")
    )
    got = _figures(tmp_path, puzzles=puzzles)
    assert round(got[("zebralogic", "handmade-model", "cell_accuracy")], 2) == 48.33
    assert _figures(tmp_path)[("zebralogic", "handmade-model", "cell_accuracy")] is None


def test_wildbench_result_files(tmp_path):
    items = load_items(Benchmark.wildbench, str(FIXTURES / "wildbench_items.handmade.jsonl"))
    (tmp_path / "score.v2" / "eval=gpt-4o-2024-05-13").mkdir(parents=True)
    shutil.copy(
        FIXTURES / "wildbench_score_results.handmade.json",
        tmp_path / "score.v2/eval=gpt-4o-2024-05-13/test-model.json",
    )
    ref = tmp_path / "pairwise.v2/eval=gpt-4o-2024-05-13/ref=ref-model"
    ref.mkdir(parents=True)
    shutil.copy(FIXTURES / "wildbench_pairwise_results.handmade.json", ref / "test-model.json")
    got = _figures(tmp_path, wildbench_items=items)
    assert got[("wildbench", "test-model", "wb_score")] is not None  # named by its file
    assert ("wildbench", "test-model", "wb_reward_task_macro.ref-model") in got


# The leaderboard's WB_score of these models (all_stat_wildbench.-1.json), as its site
# shows it (two decimals); the test also holds the computed number to the table's float.
PUBLISHED_WB_SCORE = {"gemma-2b-it": -5.25, "gemma-7b-it": 10.18, "gpt-3.5-turbo-0125": 32.28}


def test_wb_score_of_the_official_score_files_is_the_leaderboards():
    # whole official files (data/evals/official/wildbench/README.md): the score.v2 files
    # of the gpt-4o-2024-05-13 judge that _create_tables.py reads, gzip-compressed
    figures, skipped = import_folder(WILDBENCH)
    assert skipped == []  # the leaderboard table is recognised, not skipped
    table = json.loads((WILDBENCH / "leaderboard/all_stat_wildbench.-1.json").read_text())
    by = {(f.model, f.metric): f for f in figures}
    assert {m for m, _ in by} == set(PUBLISHED_WB_SCORE)
    for model, shown in PUBLISHED_WB_SCORE.items():
        score = by[(model, "wb_score")]
        assert score.published == table[model]["WB_score"]
        assert score.value == pytest.approx(score.published, abs=1e-12)
        assert round(score.value, 2) == shown
        # the task macro needs each task's tags (the WildBench v2 items), not in the files
        macro = by[(model, "wb_score_task_macro")]
        assert macro.value is None
        assert macro.published == table[model]["WB_score.task_macro"]


def test_a_leaderboard_table_puts_the_published_reward_beside_ours(tmp_path):
    ref = tmp_path / "pairwise.v2/eval=gpt-4-turbo-2024-04-09/ref=claude-3-haiku-20240307"
    ref.mkdir(parents=True)
    rows = json.loads((FIXTURES / "wildbench_pairwise_results.handmade.json").read_text())
    for row in rows:  # the fixture's reference, renamed to the official one
        row["model_outputs"] = {
            ("claude-3-haiku-20240307" if m == "ref-model" else m): t
            for m, t in row["model_outputs"].items()
        }
        for key in ("model_A", "model_B", "winner"):
            row[key] = "claude-3-haiku-20240307" if row[key] == "ref-model" else row[key]
    (ref / "test-model.json").write_text(json.dumps(rows))
    table = {"test-model": {"WB_score": 1.0, "haiku_reward.K=500": 12.5, "llama_reward.K=500": 3}}
    (tmp_path / "all_stat_wildbench.500.json").write_text(json.dumps(table))
    figures, _ = import_folder(tmp_path, k=500)
    (reward,) = [f for f in figures if f.metric == "wb_reward.claude-3-haiku-20240307"]
    assert reward.published == 12.5 and reward.value is not None
    figures, _ = import_folder(tmp_path, k=-1)  # the table is for K=500 only
    assert all(f.published is None for f in figures)


def test_the_command_prints_every_figure_and_names_skipped_files(tmp_path):
    result = CliRunner().invoke(app, ["eval", "import-official", str(MT_BENCH), "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout[result.stdout.index("[") :])
    assert {r["metric"] for r in rows} == {"mt_bench", "turn_1", "turn_2"}
    args = ["eval", "import-official", str(WILDBENCH), "--format", "json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout[result.stdout.index("[") :])
    gemma = [r for r in rows if (r["model"], r["metric"]) == ("gemma-7b-it", "wb_score")]
    assert [(round(r["value"], 2), round(r["published"], 2)) for r in gemma] == [(10.18, 10.18)]
    assert CliRunner().invoke(app, ["eval", "import-official", str(tmp_path)]).exit_code == 1


# ------------------------------------------------------------ the report's comparisons


def _summary(**kw) -> BenchmarkSummary:
    base = {
        "benchmark": Benchmark.arena_hard,
        "model": "ours",
        "metrics": {"arena_hard_sc": 40.0},
        "version": "v0.1",
        "baseline": "gpt-4-0314",
        "judge": "gpt-4-1106-preview",
        "n_items": 1,
        "n_unparsable": 0,
        "n_judge_failed": 0,
        "mean_answer_chars": 1.0,
        "mean_judged_chars": 1.0,
    }
    return BenchmarkSummary(**(base | kw))


@pytest.mark.parametrize(
    ("change", "shown"),
    [
        ({}, True),
        ({"judge": "gpt-4o-2024-05-13"}, False),
        ({"baseline": "llama-3.1-8b-instruct"}, False),
        ({"version": "v2.0"}, False),
        ({"local_only": ["arena_hard_sc"]}, False),
    ],
)
def test_a_paper_figure_only_beside_a_number_computed_the_same_way(change, shown):
    (row,) = table_rows([_summary(**change)])
    assert (row["BOLT-Llama-3.1-8B (paper)"] == 44.1) is shown
    assert row["metric"].endswith("(local battles)") is bool(change.get("local_only"))
    assert (row["version"], row["judge"]) == (
        change.get("version", "v0.1"),
        change.get("judge", "gpt-4-1106-preview"),
    )


# ------------------------------------------------------------ hub ids and references


def test_hub_ids_carry_a_revision_and_are_read_at_it(monkeypatch):
    import datasets

    calls = []
    monkeypatch.setattr(
        datasets, "load_dataset", lambda *a, **kw: calls.append((a, kw)) or [{"x": 1}]
    )
    uri = "hf://allenai/WildBench?config=v2&split=test&revision=3bd6dd0b"
    assert read_rows(uri) == [{"x": 1}]
    assert calls == [(("allenai/WildBench", "v2"), {"split": "test", "revision": "3bd6dd0b"})]
    assert hub_id("hf://HuggingFaceH4/MATH-500:test") == (
        "HuggingFaceH4/MATH-500",
        None,
        "test",
        None,
    )
    with pytest.raises(ValueError, match="names no revision"):
        EvalConfig(judge=JudgeConfig(model="j"), data={"math500": "hf://HuggingFaceH4/MATH-500"})


def test_wb_reward_against_the_three_official_references(tmp_path):
    items = load_items(Benchmark.wildbench, str(FIXTURES / "wildbench_items.handmade.jsonl"))
    ids = [i.session_id for i in items]
    references = {}
    for n, model in enumerate(OFFICIAL_REFERENCES):
        path = tmp_path / f"{model}.json"  # the WildBench-V2-Model-Outputs layout
        rows = [{"session_id": s, "output": ["r" * (10 + n)], "generator": model} for s in ids]
        path.write_text(json.dumps(rows))
        references[model] = load_reference(model, str(path), ids)
    answers = {
        s: references[OFFICIAL_REFERENCES[0]][s].model_copy(update={"model": "m"}) for s in ids
    }

    class Judge:
        def judge(self, requests):
            from bolt.evals.judges import JudgeReply

            return [
                JudgeReply(r.id, '{"choice": "A+"}' if "pairwise" in r.id else '{"score": "7"}')
                for r in requests
            ]

    ctx = JudgingContext(model="m", judge=Judge(), response_only=True, references=references)
    results = wildbench.grade(ctx, items, answers)
    assert len(results) == len(items) * 4  # one score and three pairwise per item
    numbers, details = wildbench.metrics(results, items, 500)
    assert set(details["reward"]) == set(OFFICIAL_REFERENCES)
    per_ref = [numbers[f"wb_reward_task_macro.{m}"] for m in OFFICIAL_REFERENCES]
    assert numbers["wb_reward_task_macro"] == pytest.approx(sum(per_ref) / 3)
