"""Acceptance 2: the local checklist judge (SmolLM2 on CPU) grades SmolLM2's own answers to
10 real MT-Bench questions (two turns each) through the eval stage, on the session's vLLM
engine; the report (markdown, CSV) and the plots (Fig. 5 bars, Fig. 6 trajectory) are
produced."""

from __future__ import annotations

import csv
import io

import pytest

from bolt.evals import Benchmark
from bolt.evals.judges import LocalChecklistJudge, make_judge
from bolt.evals.stage import (
    EvalModel,
    load_benchmarks,
    run_answers,
    run_eval,
    summaries_of,
)
from bolt.evals.trajectory import draw_trajectory
from bolt.stages import Stage
from bolt.store import ArtifactStore

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_local_judge_grades_ten_mt_bench_questions(
    tiny_config, vllm_engine, smollm2_path, tmp_path
):
    cfg = tiny_config.model_copy(
        update={
            "storage": tiny_config.storage.model_copy(update={"root": f"file://{tmp_path}/art"}),
            "eval": tiny_config.eval.model_copy(
                update={
                    "benchmarks": [Benchmark.mt_bench],
                    "max_items": 10,
                    "sampling": tiny_config.eval.sampling.model_copy(update={"max_new_tokens": 64}),
                    "judge": tiny_config.eval.judge.model_copy(
                        update={"checklist_max_new_tokens": 96}
                    ),
                }
            ),
        }
    )
    store = ArtifactStore.from_config(cfg.storage)
    items = load_benchmarks(cfg)
    model = EvalModel("smollm2-135m-instruct", str(smollm2_path), {"test": "smollm2"})
    answers = run_answers(cfg, store, model, items, lambda: vllm_engine)
    assert answers.counts == {"mt_bench": 10}

    judges = []

    def judge(benchmark):
        if not judges:
            judges.append(make_judge(cfg, checklist_engine=vllm_engine))
        return judges[0]

    manifest = run_eval(cfg, store, model, items, answers, judge)
    assert isinstance(judges[0], LocalChecklistJudge)
    (summary,) = summaries_of(manifest)
    assert summary.n_items == 20 and summary.n_judge_failed == 0
    # a checklist score is always readable, and lies on MT-Bench's 1-10 scale
    assert summary.n_unparsable == 0
    assert 1.0 <= summary.metrics["mt_bench"] <= 10.0
    assert manifest.stats["judge_usage"]["judge_prompt_tokens"] > 0

    report = store.backend.get_bytes(f"{Stage.eval}/{manifest.fingerprint}/report.md").decode()
    assert "| mt_bench | mt_bench |" in report
    rows = list(
        csv.DictReader(
            io.StringIO(
                store.backend.get_bytes(f"{Stage.eval}/{manifest.fingerprint}/report.csv").decode()
            )
        )
    )
    assert rows[0]["benchmark"] == "mt_bench" and float(rows[0]["smollm2-135m-instruct"]) >= 1
    png = store.backend.get_bytes(f"{Stage.eval}/{manifest.fingerprint}/headline.png")
    assert png.startswith(b"\x89PNG")

    points = [("SFT", {"mt_bench": summary.metrics["mt_bench"]}), ("DPO-1", {"mt_bench": 5.0})]
    assert draw_trajectory(tmp_path / "trajectory.png", points).read_bytes().startswith(b"\x89PNG")
