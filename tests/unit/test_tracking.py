"""Tracking without a server: the config's defaults and where a local store goes, that
no tracking setting moves a fingerprint, what a run holds (``bolt.tracking.content``),
and W&B's offline mode writing its run folders under the storage root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bolt.config import TrackingBackend, TrackingConfig, output_fields
from bolt.config_loader import load_config
from bolt.stages import Stage
from bolt.store import ArtifactStore, FileInfo, Manifest
from bolt.tracking import content, local_folder, open_pipeline_run, resolve
from bolt.train.fingerprints import sft_fingerprint
from tests.conftest import TINY_CONFIG


def _cfg(*overrides: str):
    return load_config(TINY_CONFIG, list(overrides))


def test_defaults_are_mlflow_with_nothing_configured():
    t = TrackingConfig()
    assert t.backend == TrackingBackend.mlflow
    assert t.uri is None and t.experiment is None and t.run_id is None and t.mode == "offline"
    assert _cfg().tracking == t


def test_local_store_is_sqlite_under_a_file_root(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    t = resolve(_cfg(f"storage.root=file://{tmp_path}/store"))
    assert t.uri == f"sqlite:///{tmp_path}/store/mlflow/mlflow.db"
    assert t.experiment == t.project == "tiny-cpu"


def test_local_store_of_a_relative_or_s3_root_is_absolute(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    relative = resolve(_cfg("storage.root=file://./artifacts"))
    assert relative.uri == f"sqlite:///{tmp_path}/artifacts/mlflow/mlflow.db"
    s3 = _cfg("storage.root=s3://bucket/run")
    assert local_folder(s3) == tmp_path
    assert resolve(s3).uri == f"sqlite:///{tmp_path}/mlflow/mlflow.db"


def test_configured_uri_wins_then_the_environment(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking.example:5000")
    assert resolve(_cfg()).uri == "http://tracking.example:5000"
    chosen = resolve(_cfg("tracking.uri=http://127.0.0.1:5001", "tracking.experiment=exp"))
    assert chosen.uri == "http://127.0.0.1:5001" and chosen.experiment == "exp"
    assert chosen.project == "exp"


def test_backend_none_opens_nothing(tmp_path):
    cfg = _cfg(f"storage.root=file://{tmp_path}/store", "tracking.backend=none")
    assert open_pipeline_run(cfg) is cfg
    assert not (tmp_path / "store").exists()


def test_no_tracking_setting_changes_a_fingerprint():
    base = _cfg()
    changed = _cfg(
        "tracking.backend=wandb",
        "tracking.uri=http://127.0.0.1:1",
        "tracking.experiment=x",
        "tracking.run_id=abc",
    )
    assert sft_fingerprint(base, "set") == sft_fingerprint(changed, "set")
    assert "tracking" not in output_fields(changed)


def _manifest(**fields) -> Manifest:
    return Manifest(
        stage=Stage.sft, fingerprint="f" * 16, code_version="3", **{"config": {}, **fields}
    )


def test_counts_rejects_stats_and_eval_scores_become_metrics():
    m = _manifest(
        counts={"kept": 5, "rejects.near_duplicate": 3, "dropped.format.missing_thoughts": 1},
        tokens={"output": 120},
        timings={"train_seconds": 2.5},
        stats={
            "final_loss": 1.25,
            "judge_usage": {"judge_calls": 8},
            "loss_curve": [[1, 2.0], [2, 1.25]],
            "summaries": [
                {"benchmark": "math500", "model": "SFT", "metrics": {"accuracy": 12.5, "x": None}}
            ],
            "table": [{"benchmark": "math500", "SFT": 12.5}],
            "skipped": None,
        },
    )
    metrics = content.stage_metrics(ArtifactStore.__new__(ArtifactStore), m)
    assert metrics == {
        "records": 0.0,
        "shards": 0.0,
        "count.kept": 5,
        "count.rejects.near_duplicate": 3,
        "count.dropped.format.missing_thoughts": 1,
        "tokens.output": 120,
        "seconds.train_seconds": 2.5,
        "stat.final_loss": 1.25,
        "stat.judge_usage.judge_calls": 8,
        "eval.math500.accuracy": 12.5,
    }
    assert content.stage_curves(m) == {"curve.loss": [(1, 2.0), (2, 1.25)]}
    assert content.parent_metrics(m) == {"SFT.math500.accuracy": 12.5}


def test_params_tags_and_artifacts_of_an_output():
    files = [
        FileInfo(path=p, bytes=1, sha256="0" * 64)
        for p in ("loss.png", "report.md", "model/model.safetensors", "metrics.json")
    ]
    m = _manifest(
        config={"sft": {"lr": 1e-5, "zero": "zero2"}, "iteration": 2},
        upstream={"filter": "a" * 16},
        files=files,
    )
    store = ArtifactStore.__new__(ArtifactStore)
    store.uri = lambda stage, fp, name="": f"file:///store/{stage}/{fp}"
    assert content.stage_params(m) == {
        "config.sft.lr": "1e-05",
        "config.sft.zero": "zero2",
        "config.iteration": "2",
        "fingerprint": "f" * 16,
        "upstream.filter": "a" * 16,
    }
    tags = content.stage_tags(store, m)
    assert tags["bolt.store_uri"] == f"file:///store/sft/{'f' * 16}"
    assert tags["bolt.upstream.filter"] == "a" * 16 and tags["bolt.iteration"] == "2"
    assert content.artifact_files(m) == ["loss.png", "report.md"]


def test_long_values_and_odd_keys_are_cut_to_what_mlflow_takes():
    params = content.params({"a": {"b(c)": "x" * 7000, "list": [1, 2]}})
    assert set(params) == {"a.b_c_", "a.list"}
    assert len(params["a.b_c_"]) == content.MAX_VALUE and params["a.list"] == "[1, 2]"


def test_wandb_offline_writes_run_folders_under_the_storage_root(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_SILENT", "true")
    for key in [k for k in os.environ if k.startswith("WANDB_") and k != "WANDB_SILENT"]:
        monkeypatch.delenv(key)
    cfg = _cfg(f"storage.root=file://{tmp_path}/store", "tracking.backend=wandb")
    store = ArtifactStore.from_config(cfg.storage)
    plot = tmp_path / "loss.png"
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.plot([1, 2], [2.0, 1.0])
    plt.savefig(plot)
    plt.close()
    stored = store.put_file(Stage.sft, "f" * 16, "loss.png", plot)
    m = store.commit(_manifest(files=[stored], counts={"steps": 2}, stats={"final_loss": 1.0}))
    opened = open_pipeline_run(cfg)
    assert opened.tracking.run_id and opened.tracking.run_id.startswith("tiny-cpu-")
    from bolt.tracking import log_outputs

    log_outputs(opened, store, [m])
    runs = sorted(Path(tmp_path, "store", "wandb").glob("offline-run-*"))
    assert len(runs) == 2  # the pipeline run and the stage run, grouped
    assert all(list(r.glob("run-*.wandb")) for r in runs)
    assert list(runs[-1].rglob("media/images/plots/loss.png*"))
    assert [x.fingerprint for x in store.list_manifests()] == ["f" * 16]
