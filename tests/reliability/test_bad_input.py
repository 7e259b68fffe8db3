"""Bad input: every malformed row is set aside with its reason, file and line (nothing
vanishes), a prompt too long for the teacher is rejected with the numbers, and every
bad config or model path stops with an error naming the file, line or key."""

from __future__ import annotations

import json

import pytest

from bolt.config import QuerySource
from bolt.config_loader import ConfigError, load_config
from bolt.curation.sources import read_source, row_to_query
from bolt.engines.openai_engine import OpenAIEngine
from bolt.models import ModelError, resolve_model
from bolt.records import Query, Reject
from bolt.stages import Stage
from bolt.store import ArtifactStore
from tests.conftest import TINY_CONFIG
from tests.reliability.teacher_server import TeacherServer
from tests.stage_runs import bootstrap_in_process, committed_queries

pytestmark = [pytest.mark.slow]

GIANT_CHARS = 400_000


def test_malformed_rows_are_kept_as_rejects_with_file_and_line(tmp_path, fault_ledger):
    path = tmp_path / "queries.jsonl"
    lines = [
        json.dumps({"text": "A good question?"}).encode(),
        b'{"text": "unterminated',
        '{"text": "caf\u00e9 latin-1"}'.encode("latin-1"),
        json.dumps({"prompt": "wrong field name"}).encode(),
        json.dumps({"text": "   "}).encode(),
        json.dumps({"text": 42}).encode(),
        json.dumps(["not", "an", "object"]).encode(),
        json.dumps({"text": "x" * GIANT_CHARS}).encode(),
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    source = QuerySource(name="s", uri=str(path))
    results = [
        item if isinstance(item, Reject) else row_to_query(item, source)
        for item in read_source(source)
    ]
    rejects = [(r.reason, r.line) for r in results if isinstance(r, Reject)]
    assert rejects == [
        ("invalid_json", 2),
        ("bad_encoding", 3),
        ("missing_field", 4),
        ("empty_query", 5),
        ("wrong_type", 6),
        ("not_an_object", 7),
    ]
    assert all(
        r.source == str(path) and r.detail or r.reason == "empty_query" for r in results[1:7]
    )
    queries = [r for r in results if isinstance(r, Query)]
    assert [len(q.text) for q in queries] == [16, GIANT_CHARS]  # nothing silently dropped
    assert len(queries) + len(rejects) == len(lines)
    fault_ledger.record("bad_rows_set_aside", injected=len(rejects), recovered=len(rejects))


def test_giant_prompt_is_rejected_by_bootstrap_with_the_numbers(tmp_path, fault_ledger):
    with TeacherServer() as teacher:
        cfg = load_config(
            TINY_CONFIG,
            [
                f"storage.root=file://{tmp_path}",
                "engine.kind=openai",
                f"engine.base_url={teacher.base_url}",
                "bootstrap.sampling.n=1",
            ],
        )
        store = ArtifactStore.from_config(cfg.storage)
        queries = [
            Query(id="small", text="What is 2 + 2?", source="s"),
            Query(id="giant", text="word " * GIANT_CHARS, source="s"),
        ]
        data = committed_queries(store, "giant", queries)
        engine = OpenAIEngine(cfg.engine_settings(Stage.bootstrap), "teacher")
        boot = bootstrap_in_process(cfg, store, data, lambda: engine, context_length=8192)
    rejects = list(store.read_file_records(boot, boot.files[0].path, Reject))
    assert [(r.reason, r.source) for r in rejects] == [("too_long_for_context", "giant")]
    assert "> 8192" in rejects[0].detail
    assert boot.records == 1 and boot.counts["rejected"] == 1
    fault_ledger.record("giant_prompt_rejected", injected=1, recovered=1)


@pytest.mark.parametrize(
    ("yaml_text", "overrides", "message"),
    [
        ("sft:\n  lr: [unclosed\n", [], r"bad\.yaml:\d+: <yaml>: invalid YAML"),
        ("sft:\n  lr: -1\n", [], r"bad\.yaml:3: sft\.lr: Input should be greater than 0"),
        ("sft:\n  lrr: 1.0e-5\n", [], r"bad\.yaml:3: sft\.lrr: unknown key"),
        (
            "",
            ["eval.benchmarks=[mt_bench, no_such_bench]"],
            r"eval\.benchmarks\.1: Input should be 'mt_bench'.*\(got 'no_such_bench'\)",
        ),
        ("", ["bootstrap.sampling.n=many"], r"bootstrap\.sampling\.n: .*integer"),
    ],
    ids=["invalid_yaml", "out_of_range", "unknown_key", "unknown_benchmark", "wrong_type"],
)
def test_bad_config_names_file_line_and_key(tmp_path, yaml_text, overrides, message):
    path = tmp_path / "bad.yaml"
    path.write_text(f"base: {TINY_CONFIG}\n{yaml_text}")
    with pytest.raises(ConfigError, match=message):
        load_config(path, overrides)


def test_wrong_model_path_names_the_key(tiny_config):
    entry = "models.catalog.smollm2-135m-instruct"
    cfg = load_config(TINY_CONFIG, [f"{entry}.gguf_package=null", f"{entry}.path=/no/such/model"])
    with pytest.raises(
        ModelError, match=rf"{entry}\.path = '/no/such/model' is not a model folder"
    ):
        resolve_model(cfg.models, "smollm2-135m-instruct")
