"""The eval flow on a real Prefect API: SmolLM2 (a catalog model) answers MATH500 items
through the transformers engine, the report lands in the store and as a Prefect table
artifact, and a rerun is served from the store."""

from __future__ import annotations

import pytest

from bolt.config import EngineConfig, EngineKind
from bolt.evals import Benchmark

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_eval_flow_reports_a_table_artifact(tiny_config, prefect_api, smollm2_path, tmp_path):
    import torch
    from prefect.client.orchestration import get_client

    from bolt.resources import POOL
    from flows.evaluation import eval_flow

    torch.set_num_threads(1)
    cfg = tiny_config.model_copy(
        update={
            "name": "eval-flow-test",
            "storage": tiny_config.storage.model_copy(update={"root": f"file://{tmp_path}/art"}),
            "eval": tiny_config.eval.model_copy(
                update={
                    "benchmarks": [Benchmark.math500],
                    "max_items": 3,
                    "engine": EngineConfig(kind=EngineKind.transformers),
                    "sampling": tiny_config.eval.sampling.model_copy(update={"max_new_tokens": 48}),
                }
            ),
        }
    )
    try:
        manifest = eval_flow(cfg, "smollm2-135m-instruct")
        assert manifest.counts["math500.n_items"] == 3
        assert {f.path for f in manifest.files} >= {"report.md", "report.csv", "headline.png"}
        assert eval_flow(cfg, "smollm2-135m-instruct") == manifest
    finally:
        POOL.release()

    async def artifact():
        async with get_client() as client:
            return await client.read_latest_artifacts()

    import asyncio

    keys = {a.key for a in asyncio.run(artifact())}
    assert "eval-flow-test-eval-smollm2-135m-instruct" in keys
