"""The benchmark list: every configurable benchmark has one spec, under its own name."""

from __future__ import annotations

from bolt.evals import Benchmark
from bolt.evals.registry import BENCHMARKS
from bolt.evals.report import HEADLINE


def test_every_benchmark_name_has_its_spec():
    assert set(BENCHMARKS) == set(Benchmark)
    assert all(spec.name is name for name, spec in BENCHMARKS.items())


def test_judged_and_pairwise_benchmarks():
    judged = {b for b, spec in BENCHMARKS.items() if spec.judged}
    pairwise = {b for b, spec in BENCHMARKS.items() if spec.pairwise}
    assert judged == {Benchmark.mt_bench, Benchmark.wildbench, Benchmark.arena_hard}
    assert pairwise == {Benchmark.wildbench, Benchmark.arena_hard}


def test_headlines_are_the_papers_numbers():
    assert HEADLINE == {
        Benchmark.mt_bench: "mt_bench",
        Benchmark.arena_hard: "arena_hard_sc",
        Benchmark.wildbench: "wb_score_task_macro",
        Benchmark.zebralogic: "cell_accuracy",
        Benchmark.math500: "accuracy",
    }
