"""The README's main job, shrunk: `bolt run` on the tiny CPU config up to the SFT set,
recorded on a real Prefect API server, then a rerun that finds everything finished.
(SFT, online DPO and eval each start engines and trainers of their own; their flows are
tested in tests/integration, the deployment path in test_deployments.)"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bolt.config_loader import load_config
from bolt.store import ArtifactStore
from tests.conftest import REPO, TINY_CONFIG

pytestmark = [pytest.mark.slow]

OVERRIDES = [
    "data.sources.0.limit=24",  # labelling all 75 demo queries adds minutes, not coverage
    "data.max_queries=4",
    "data.topic_cap=2",
    "bootstrap.sampling.n=2",
    "bootstrap.sampling.max_new_tokens=32",
    "bootstrap.shard_size=2",
]


def _bolt_run(root: str, api_url: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PREFECT_API_URL": api_url, "COLUMNS": "200"}
    return subprocess.run(
        check=False,
        args=[
            sys.executable,
            "-m",
            "bolt_cli",
            "run",
            str(TINY_CONFIG),
            "--until",
            "filter",
            f"storage.root={root}",
            *OVERRIDES,
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )


def test_bolt_run_tiny_pipeline(tmp_path, prefect_api):
    root = f"file://{tmp_path}/artifacts"
    first = _bolt_run(root, prefect_api)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-5000:]
    store = ArtifactStore.from_config(load_config(TINY_CONFIG, [f"storage.root={root}"]).storage)
    manifests = {m.stage: m for m in store.list_manifests()}
    # data-candidates: the curated pool before labelling, a stage of its own so labelling
    # shards resume against a fixed list.
    assert set(manifests) == {"data-candidates", "data", "bootstrap", "score", "filter"}
    assert manifests["score"].records == manifests["bootstrap"].records
    assert manifests["filter"].upstream == {
        "score": manifests["score"].fingerprint,
        "data": manifests["data"].fingerprint,
    }
    assert manifests["bootstrap"].upstream["data"] == manifests["data"].fingerprint
    assert manifests["bootstrap"].records == 2 * manifests["data"].records > 0
    assert manifests["bootstrap"].fingerprint in first.stdout

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    async def artifact_keys():
        async with get_client() as client:
            found = await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(like_="tiny-cpu-"))
            )
            return {a.key for a in found}

    import asyncio

    keys = asyncio.run(artifact_keys())
    reported = set(manifests) - {"data-candidates"}  # curation's internal pool: no summary
    assert {f"tiny-cpu-{stage}-summary" for stage in reported} <= keys

    second = _bolt_run(root, prefect_api)  # everything is committed: nothing is regenerated
    assert second.returncode == 0, second.stderr[-3000:]
    assert "starting vllm engine" in first.stdout + first.stderr
    assert "starting vllm engine" not in second.stdout + second.stderr
    assert len(store.list_manifests()) == len(manifests)
