"""The benchmarks the evaluation stage can run: the one list where they are named.

Adding a benchmark is a module ``bolt/evals/<name>.py`` ending in ``SPEC =
BenchmarkSpec(...)`` (see :mod:`bolt.evals.spec`), its line here, and its name in
:class:`~bolt.config.BenchmarkName`. The stage runs benchmarks in the order the config
lists them, not in this one.
"""

from __future__ import annotations

from bolt.evals import Benchmark, arena_hard, math500, mt_bench, wildbench, zebralogic
from bolt.evals.spec import BenchmarkSpec

BENCHMARKS: dict[Benchmark, BenchmarkSpec] = {
    Benchmark.mt_bench: mt_bench.SPEC,
    Benchmark.arena_hard: arena_hard.SPEC,
    Benchmark.wildbench: wildbench.SPEC,
    Benchmark.zebralogic: zebralogic.SPEC,
    Benchmark.math500: math500.SPEC,
}
