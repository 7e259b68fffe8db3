"""Bootstrap shards mapped over a local Ray cluster (prefect-ray) give the same output as
the default thread runner: the same fingerprint, the same records, the same shard bytes.
The teacher is the deterministic OpenAI-compatible server of tests/reliability, so the
comparison is about the orchestration, not a sampler's seed handling."""

from __future__ import annotations

import pytest

from bolt.config_loader import load_config
from bolt.records import Generation
from bolt.store import ArtifactStore
from tests.conftest import TINY_CONFIG
from tests.reliability.teacher_server import TeacherServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_bootstrap_over_ray_matches_the_thread_runner(
    prefect_api, smollm2_path, tmp_path, monkeypatch
):
    # The stand-in teacher ignores the key; preflight wants the variable the config names.
    monkeypatch.setenv("OPENAI_API_KEY", "not-checked")
    from flows.pipeline import STAGE_FLOWS

    outputs = {}
    with TeacherServer() as teacher:
        for runner in ("threads", "ray"):
            cfg = load_config(
                TINY_CONFIG,
                [
                    f"storage.root=file://{tmp_path}/{runner}",
                    f"compute.task_runner={runner}",
                    "compute.max_workers=2",
                    "data.difficulty_filter=false",
                    "data.max_queries=6",
                    "data.topic_cap=2",
                    "engine.kind=openai",
                    f"engine.base_url={teacher.base_url}",
                    "bootstrap.sampling.n=2",
                    "bootstrap.shard_size=2",
                ],
            )
            fingerprint = STAGE_FLOWS["bootstrap"](cfg)["bootstrap"]["fingerprint"]
            store = ArtifactStore.from_config(cfg.storage)
            manifest = store.require("bootstrap", fingerprint)
            records = [g.model_dump() for g in store.read_records(manifest, Generation)]
            outputs[runner] = (fingerprint, records, [s.sha256 for s in manifest.shards])

    threads, ray = outputs["threads"], outputs["ray"]
    assert len(threads[2]) == 3 and len(threads[1]) == 12  # 3 shards of 2 queries x 2 samples
    assert ray == threads
