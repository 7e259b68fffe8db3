"""Arena-Hard on the real official rows (data/evals/official): v0.1 and v2.0 questions,
the gpt-4-0314 answers in both layouts, judgments in the official layout, and the style
control fitted in a pool of leaderboard battles (a constructed pool, labelled so)."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from bolt.config import EvalConfig, JudgeConfig
from bolt.evals import Benchmark, report
from bolt.evals import arena_hard as ah
from bolt.evals import arena_hard_files as ahf
from bolt.evals import style_control as sc
from bolt.evals.data import load_items
from bolt.evals.spec import BenchmarkContext

REPO = Path(__file__).parents[2]
OFFICIAL = REPO / "data/evals/official/arena-hard"
V01, V20 = OFFICIAL / "v0.1/question.jsonl", OFFICIAL / "v2.0/question.jsonl"
GPT4 = OFFICIAL / "v0.1/model_answer/gpt-4-0314.jsonl"
FIXTURES = REPO / "tests/fixtures/evals"
LAYOUT_2024 = FIXTURES / "arena-hard-2024-layout"
POOL = FIXTURES / "arena-hard-constructed-pool"
POOL_JUDGMENTS = POOL / "model_judgment/gpt-4-1106-preview"


def test_v01_and_v20_questions_load_in_the_current_layout():
    v01 = load_items(Benchmark.arena_hard, str(V01))
    v20 = load_items(Benchmark.arena_hard, str(V20))
    assert (len(v01), len(v20)) == (500, 750)
    assert v01[0].uid == "328c149ed45a41c0b9d6f14659e63599"
    assert v01[0].cluster == "ABC Sequence Puzzles & Groups"
    assert v01[0].prompt.startswith("Use ABC notation")
    assert {q.category for q in v20} == {"hard_prompt", "creative_writing"}
    assert v20[0].subcategory == "coding" and v20[0].cluster is None
    assert (ah.version(v01), ah.version(v20)) == ("v0.1", "v2.0")


def test_the_2024_layout_reads_into_the_same_questions():
    old = load_items(Benchmark.arena_hard, str(LAYOUT_2024 / "question.head3.jsonl"))
    new = load_items(Benchmark.arena_hard, str(V01), max_items=3)
    assert [(q.uid, q.prompt, q.cluster) for q in old] == [
        (q.uid, q.prompt, q.cluster) for q in new
    ]


def test_gpt4_answers_load_and_their_style_is_the_official_metadata():
    ((model, answers),) = ahf.load_answers([str(GPT4)]).items()
    assert model == "gpt-4-0314" and len(answers) == 500
    old = ahf.load_answers([str(LAYOUT_2024 / "gpt-4-0314.head3.jsonl")])["gpt-4-0314"]
    rows = [json.loads(line) for line in (LAYOUT_2024 / "gpt-4-0314.head3.jsonl").open()]
    for row in rows:
        uid = row["question_id"]
        assert old[uid].answer == answers[uid].answer  # the same answer in both layouts
        # tiktoken gpt-3.5-turbo counts, as the 2024 file carries them
        assert answers[uid].style().length == row["choices"][0]["turns"][0]["token_len"]


def test_markdown_is_counted_as_add_markdown_info_does():
    text = "# T\n- a\n```\n- not a list\n```\nthen - not a list either **b** __c__\n1. one"
    assert sc.markdown_style(text, 9) == sc.StyleFeatures(9, headers=1, lists=2, bolds=2)
    # the official quirk: a block's text is deleted wherever it occurs, not only in the block
    assert sc.without_code("x = 1\n```x = 1```") == "\n``````"


def test_metadata_in_an_answer_file_is_used_as_is():
    row = {"uid": "u", "ans_id": "a", "model": "m", "messages": [{"content": {"answer": "hi"}}]}
    row["metadata"] = {
        "token_len": 321,
        "header_count": {"h1": 1, "h2": 2},
        "list_count": {"ordered": 3, "unordered": 4},
        "bold_count": {"**": 5, "__": 1},
    }
    assert ahf.ArenaHardAnswer.model_validate(row).style() == sc.StyleFeatures(321, 3, 7, 6)


def test_current_layout_judgments_become_battles_and_a_failed_game_is_dropped():
    rows = [json.loads(line) for line in (POOL_JUDGMENTS / "pool-mid-7b.jsonl").open()]
    uids = {json.loads(line)["uid"] for line in V01.open()}
    assert {r["uid"] for r in rows} <= uids  # real v0.1 uids
    battles = [b for r in rows for b in ahf.battles_from_official_judgment(r)]
    assert {b.model for b in battles} == {"pool-mid-7b"}
    assert len(battles) == 2 * len(rows) - 1  # row 7's second game is null
    first = rows[0]["games"]
    assert [b.score for b in ahf.battles_from_official_judgment(rows[0])] == [
        ahf.battle("m", "q", ahf.Verdict(g["score"]), side).score
        for g, side in zip(first, (ahf.Side.b, ahf.Side.a), strict=True)
    ]


def _eval_cfg(**arena) -> EvalConfig:
    return EvalConfig(judge=JudgeConfig(model="j"), arena_hard=arena)


def _pool_context(questions):
    cfg = _eval_cfg(
        baseline_answers=str(GPT4),
        leaderboard_judgments=[str(POOL_JUDGMENTS)],
        leaderboard_answers=[str(POOL / "model_answer"), str(GPT4.parent)],
    )
    return ah.prepare(cfg, None, questions)


@pytest.fixture(scope="module")
def questions():
    return load_items(Benchmark.arena_hard, str(V01), max_items=40)


@pytest.fixture(scope="module")
def ours(questions):
    """Our model's judged games against the real gpt-4-0314 answers: it wins every game on
    the first 30 questions with a long answer, and loses on the last 10 with a short one."""
    context = _pool_context(questions)
    baseline = context.references["gpt-4-0314"]
    results = []
    for i, q in enumerate(questions):
        text = "word " * (600 if i < 30 else 20)
        verdict = ("[[B>A]]", "[[A>B]]") if i < 30 else ("[[A>B]]", "[[B>A]]")
        for game, raw in zip((1, 2), verdict, strict=True):
            results.append(
                ah.game_result(
                    q.uid,
                    game,
                    "ours",
                    text,
                    raw,
                    sc.style_of(text),
                    sc.style_of(baseline[q.uid].turns[0]),
                    baseline="gpt-4-0314",
                )
            )
    return context, results


def test_prepare_reads_the_official_baseline_and_the_pool(questions):
    context = _pool_context(questions)
    assert list(context.references) == ["gpt-4-0314"]
    assert set(context.references["gpt-4-0314"]) == {q.uid for q in questions}
    pool = context.pool
    assert pool.models == ["pool-mid-7b", "pool-terse-7b", "pool-verbose-7b"]
    assert (pool.baseline, pool.judge) == ("gpt-4-0314", "gpt-4-1106-preview")
    assert context.digest and context.describe["pool"]["n_battles"] == len(pool.battles)
    # without a baseline file nothing is prepared: the local baseline model is used
    assert ah.prepare(_eval_cfg(), None, questions) == BenchmarkContext()


def test_plain_and_style_controlled_win_rates_in_the_pool(ours):
    context, results = ours
    local = ah.summarize(results, rounds=20)
    pooled = ah.summarize(results, rounds=20, pool=context.pool)
    assert local.plain["ours"].win_rate == pytest.approx(75.0)  # 60 of 80 games
    assert pooled.plain == local.plain  # the plain rate does not depend on the pool
    assert set(pooled.style_controlled) == {"ours"}
    sc_local, sc_pooled = local.style_controlled["ours"], pooled.style_controlled["ours"]
    assert sc_pooled.win_rate != pytest.approx(sc_local.win_rate, abs=0.5)
    assert sc_pooled.ci_low <= sc_pooled.win_rate <= sc_pooled.ci_high
    # in the pool, longer answers win more: the fitted length coefficient says so
    # (the covariate is baseline - model, so a longer model answer lowers it)
    assert pooled.style_coefficients["length"] > 0
    assert pooled.pool["models"] == context.pool.models


POOL_JUDGE = "gpt-4-1106-preview"  # the constructed pool's, as the v0.1 leaderboard's


def test_metrics_label_local_numbers_and_pooled_ones(ours):
    context, results = ours
    numbers, details = ah.metrics(results, [], 500, context=context, judge=POOL_JUDGE)
    assert "local_only" not in details and details["pool"]["judge"] == POOL_JUDGE
    assert "pool_not_used" not in details
    numbers_local, details_local = ah.metrics(results, [], 500)
    assert details_local["local_only"] == list(ah.SC_METRICS)
    assert numbers["arena_hard"] == numbers_local["arena_hard"]
    # our games against another baseline: the pool does not apply, the number is local
    other = [r.model_copy(update={"meta": r.meta | {"baseline": "x"}}) for r in results]
    _, details_other = ah.metrics(other, [], 500, context=context, judge=POOL_JUDGE)
    assert "local_only" in details_other
    assert (
        details_other["pool_not_used"] == "our games were against x, the pool's against gpt-4-0314"
    )


@pytest.mark.parametrize("judge", ["gpt-4o-2024-05-13", "smollm2-135m-instruct", None])
def test_battles_of_another_judge_are_not_fitted_in_the_pool(ours, judge):
    # the pool's battles were judged by gpt-4-1106-preview: ours, judged by another model
    # (or by one we cannot name), are on another scale; the number is local and labelled
    context, results = ours
    numbers, details = ah.metrics(results, [], 500, context=context, judge=judge)
    local, local_details = ah.metrics(results, [], 500)
    assert details["local_only"] == list(ah.SC_METRICS)
    assert details["pool"] is None  # fitted without the pool ...
    assert numbers == local  # ... so exactly the local numbers
    assert details["pool_not_used"] == f"our judge is {judge}, the pool's {POOL_JUDGE}"
    assert "pool_not_used" not in local_details  # no pool given: nothing to explain


def test_a_pool_without_a_named_judge_is_not_used(ours):
    context, results = ours
    nameless = BenchmarkContext(
        references=context.references,
        pool=dataclasses.replace(context.pool, judge=None),
    )
    _, details = ah.metrics(results, [], 500, context=nameless, judge=POOL_JUDGE)
    assert details["local_only"] == list(ah.SC_METRICS)
    assert details["pool_not_used"] == "the pool's judgment files name no judge"


@pytest.mark.parametrize(("judge", "shown"), [(POOL_JUDGE, True), ("gpt-4o-2024-05-13", False)])
def test_the_summary_of_another_judge_is_local_and_has_no_paper_figure(
    ours, questions, judge, shown
):
    # the stage's path: report.summarize hands the configured judge to the metrics
    context, results = ours
    summary = report.summarize(
        Benchmark.arena_hard,
        "ours",
        results,
        questions,
        500,
        context=context,
        judge=judge,
        baseline="gpt-4-0314",
    )
    assert summary.version == "v0.1" and bool(summary.local_only) is not shown
    rows = report.table_rows([summary])
    (row,) = [r for r in rows if r["metric"].split(" ")[0] == "arena_hard_sc"]
    assert row["metric"] == ("arena_hard_sc" if shown else "arena_hard_sc (local battles)")
    assert (row["BOLT-Llama-3.1-8B (paper)"] == 44.1) is shown


def test_a_model_already_in_the_pool_is_refused(ours):
    context, results = ours
    renamed = [r.model_copy(update={"model": "pool-mid-7b"}) for r in results]
    with pytest.raises(ValueError, match="already in the leaderboard pool"):
        ah.summarize(renamed, rounds=5, pool=context.pool)


def test_a_pool_judged_against_another_baseline_is_refused(tmp_path, questions):
    folder = tmp_path / "judgments"
    shutil.copytree(POOL_JUDGMENTS, folder)
    path = folder / "pool-mid-7b.jsonl"
    path.write_text(path.read_text().replace('"baseline": "gpt-4-0314"', '"baseline": "o3"'))
    cfg = _eval_cfg(
        baseline_answers=str(GPT4),
        leaderboard_judgments=[str(folder)],
        leaderboard_answers=[str(POOL / "model_answer")],
    )
    with pytest.raises(ValueError, match="not gpt-4-0314"):
        ah.prepare(cfg, None, questions)


def test_the_tiny_config_judges_real_prompts_against_the_real_baseline(tiny_config):
    from bolt.evals.stage import load_benchmarks, load_contexts

    items = load_benchmarks(tiny_config)
    questions = items[Benchmark.arena_hard]
    assert [q.uid for q in questions] == [json.loads(line)["uid"] for line in V01.open()][:5]
    context = load_contexts(tiny_config, items)[Benchmark.arena_hard]
    ((baseline, answers),) = context.references.items()
    assert baseline == "gpt-4-0314" and set(answers) == {q.uid for q in questions}
    assert context.pool is None  # no leaderboard pool: the style control is local
