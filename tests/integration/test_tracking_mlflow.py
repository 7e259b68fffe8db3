"""Experiment tracking for real, against an MLflow tracking server on loopback
(tests/mlflow_server.py), read back through ``MlflowClient``:

- the pipeline (``until=data``, no engine: the difficulty filter off) opens a run, the
  curation output gets a run nested under it with its config, fingerprint and store URI
  as params/tags and its counts (kept, left out by reason) as metrics;
- a tiny SFT (a 2-layer random Llama, 3 steps) launched as a local job logs its loss
  curve into its stage run through the HF Trainer's own ``MLflowCallback`` (the job
  finds the run from the config it is given), and the pipeline then adds the output's
  metrics and its loss plot to the same run;
- ``bolt stage data`` alone opens a run of its own (named for the stage), the curation
  output nested under it, and a stage that raises ends its run FAILED;
- with nothing configured, the runs land in a SQLite store under the storage root, and
  the store still lists its outputs.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from bolt.config import ModelEntry, PipelineConfig, Precision, ZeroStage
from bolt.config_loader import load_config
from bolt.records import Message, SftExample
from bolt.stages import Stage
from bolt.store import ArtifactStore, Manifest
from bolt.tracking import close_pipeline_run, open_pipeline_run
from tests.conftest import TINY_CONFIG

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]

NO_ENGINE = ["data.difficulty_filter=false", "data.max_queries=6", "data.topic_cap=2"]
SFT_SET = "trackingsftset01"
STEPS = 3


def _client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _runs(uri: str, experiment: str) -> list:
    c = _client(uri)
    return c.search_runs([c.get_experiment_by_name(experiment).experiment_id])


def _stage_run(runs: list, stage: str):
    (run,) = [r for r in runs if r.data.tags.get("bolt.stage") == stage]
    return run


def test_pipeline_run_and_nested_stage_run_on_the_server(mlflow_server, prefect_api, tmp_path):
    from flows.pipeline import run_pipeline

    experiment = f"pipeline-{uuid.uuid4().hex[:8]}"
    cfg = load_config(
        TINY_CONFIG,
        [
            f"storage.root=file://{tmp_path}/store",
            f"tracking.uri={mlflow_server.uri}",
            f"tracking.experiment={experiment}",
            *NO_ENGINE,
        ],
    )
    summary = run_pipeline(cfg, until="data")
    runs = _runs(mlflow_server.uri, experiment)
    (parent,) = [r for r in runs if r.data.tags.get("bolt.kind") == "pipeline"]
    assert parent.info.status == "FINISHED" and parent.info.run_name == cfg.name
    assert parent.data.params["data.max_queries"] == "6"
    assert parent.data.params["sft.base_model"] == "smollm2-135m-instruct"
    data = _stage_run(runs, Stage.curation)
    fp = summary["data"]["fingerprint"]
    assert data.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert data.data.tags["bolt.fingerprint"] == fp == data.data.params["fingerprint"]
    assert data.data.tags["bolt.store_uri"] == summary["data"]["uri"]
    assert data.data.params["config.difficulty_filter"] == "false"
    manifest = ArtifactStore.from_config(cfg.storage).require(Stage.curation, fp)
    assert data.data.metrics["records"] == manifest.records == summary["data"]["records"]
    for key, value in manifest.counts.items():  # kept, and each reason something was left out
        assert data.data.metrics[f"count.{key}"] == value
    assert data.info.status == "FINISHED"
    c = _client(mlflow_server.uri)
    assert "config.yaml" in {a.path for a in c.list_artifacts(parent.info.run_id)}
    plots = {a.path for a in c.list_artifacts(data.info.run_id, "plots")}
    assert plots == {f"plots/{f.path}" for f in manifest.files if f.path.endswith(".png")}


def test_one_stage_run_is_tracked_and_a_failed_one_ends_failed(
    mlflow_server, prefect_api, tmp_path
):
    """``bolt stage data`` (``STAGE_FLOWS``) opens its own run, named for the stage, with
    the output nested under it; a stage that raises leaves its run FAILED."""
    from prefect import flow

    from flows.pipeline import STAGE_FLOWS, _one_stage

    experiment = f"stage-{uuid.uuid4().hex[:8]}"
    overrides = [f"tracking.uri={mlflow_server.uri}", f"tracking.experiment={experiment}"]
    root = f"storage.root=file://{tmp_path}/store"
    cfg = load_config(TINY_CONFIG, [root, *overrides, *NO_ENGINE])
    summary = STAGE_FLOWS["data"](cfg)
    runs = _runs(mlflow_server.uri, experiment)
    (parent,) = [r for r in runs if r.data.tags.get("bolt.kind") == "pipeline"]
    assert parent.info.run_name == f"{cfg.name}-data" and parent.info.status == "FINISHED"
    assert parent.data.tags["bolt.only_stage"] == "data"
    assert parent.data.params["data.max_queries"] == "6"
    data = _stage_run(runs, Stage.curation)
    assert data.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert data.data.tags["bolt.fingerprint"] == summary["data"]["fingerprint"]
    assert data.data.metrics["records"] == summary["data"]["records"] > 0
    assert data.info.status == "FINISHED"

    @flow(name="broken-stage")
    def broken(cfg: PipelineConfig) -> Manifest:
        raise RuntimeError("the stage broke")

    failing = f"stage-failed-{uuid.uuid4().hex[:8]}"
    cfg = load_config(TINY_CONFIG, [root, *overrides, *NO_ENGINE, f"tracking.experiment={failing}"])
    with pytest.raises(RuntimeError, match="the stage broke"):
        _one_stage("data", broken)(cfg)
    (parent,) = _runs(mlflow_server.uri, failing)
    assert parent.info.status == "FAILED" and parent.info.run_name == f"{cfg.name}-data"


@pytest.fixture(scope="module")
def tiny_llama(smollm2_path, tmp_path_factory) -> Path:
    """A 2-layer, 64-wide random Llama with SmolLM2's tokenizer (trains in seconds)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("tiny-llama")
    tokenizer = AutoTokenizer.from_pretrained(smollm2_path)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _sft_config(tiny_config, model: Path, root: Path, uri: str, experiment: str) -> PipelineConfig:
    training = {
        "base_model": "tiny-llama",
        "max_length": 64,
        "global_batch_size": 2,
        "micro_batch_size": 1,
        "lr": 1e-3,
        "warmup_ratio": 0.0,
        "max_steps": STEPS,
        "save_steps": 100,
        "zero": ZeroStage.zero2,
        "precision": Precision.fp32,
        "gradient_checkpointing": False,
    }
    catalog = {**tiny_config.models.catalog, "tiny-llama": ModelEntry(path=str(model))}
    tracking = {"uri": uri, "experiment": experiment}
    return tiny_config.model_copy(
        update={
            "storage": tiny_config.storage.model_copy(update={"root": f"file://{root}/store"}),
            "models": tiny_config.models.model_copy(update={"catalog": catalog}),
            "sft": tiny_config.sft.model_copy(update=training),
            "tracking": tiny_config.tracking.model_copy(update=tracking),
        }
    )


def _sft_set(cfg: PipelineConfig) -> Manifest:
    examples = [
        SftExample(
            id=f"e{i}",
            query_id=f"q{i}",
            messages=[
                Message(role="user", content=f"A fact about {topic}?"),
                Message(
                    role="assistant",
                    content=f"<thoughts>\nRecall {topic}.\n</thoughts>\n\n"
                    f"<response>\n{topic.title()} is worth study.\n</response>",
                ),
            ],
        )
        for i, topic in enumerate(["rain", "bread", "chess", "tea"])
    ]
    store = ArtifactStore.from_config(cfg.storage)
    shard = store.write_shard(Stage.filter, SFT_SET, 0, examples)
    manifest = Manifest(
        stage=Stage.filter, fingerprint=SFT_SET, code_version="1", config={}, shards=[shard]
    )
    return store.commit(manifest)


def test_sft_job_logs_its_loss_curve_into_the_stage_run(
    tiny_config, tiny_llama, mlflow_server, prefect_api, tmp_path, monkeypatch
):
    from flows.sft import sft_flow
    from tasks.tracking import track_outputs

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    experiment = f"sft-{uuid.uuid4().hex[:8]}"
    cfg = _sft_config(tiny_config, tiny_llama, tmp_path, mlflow_server.uri, experiment)
    cfg = open_pipeline_run(cfg)
    assert cfg.tracking.run_id
    manifest = sft_flow(cfg, _sft_set(cfg))
    store = ArtifactStore.from_config(cfg.storage)
    track_outputs(cfg, store, [manifest])
    close_pipeline_run(cfg, failed=False)

    runs = _runs(mlflow_server.uri, experiment)
    sft = _stage_run(runs, Stage.sft)
    assert sft.data.tags["mlflow.parentRunId"] == cfg.tracking.run_id
    assert sft.data.tags["bolt.fingerprint"] == manifest.fingerprint
    c = _client(mlflow_server.uri)
    # Streamed by the trainer's MLflowCallback inside the job, one point per step.
    live = c.get_metric_history(sft.info.run_id, "loss")
    assert [m.step for m in live] == list(range(1, STEPS + 1))
    stored = [loss for _, loss in manifest.stats["loss_curve"]]
    assert [m.value for m in live] == pytest.approx(stored, rel=1e-3)
    assert "learning_rate" in sft.data.metrics and "grad_norm" in sft.data.metrics
    # Logged by the pipeline once the output is committed.
    assert sft.data.metrics["count.steps"] == STEPS
    assert sft.data.metrics["stat.final_loss"] == pytest.approx(manifest.stats["final_loss"])
    assert sft.data.params["config.sft.lr"] == "0.001"
    assert sft.data.params["upstream.filter"] == SFT_SET
    assert "plots/loss.png" in {a.path for a in c.list_artifacts(sft.info.run_id, "plots")}
    assert sft.info.status == "FINISHED"


def test_default_store_is_sqlite_under_the_storage_root(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    from tasks.tracking import track_outputs

    cfg = load_config(TINY_CONFIG, [f"storage.root=file://{tmp_path}/store"])
    store = ArtifactStore.from_config(cfg.storage)
    plot = tmp_path / "plot.png"
    plot.write_bytes(b"\x89PNG\r\n\x1a\n")
    files = [store.put_file(Stage.eval_trajectory, "t0", "trajectory.png", plot)]
    manifest = store.commit(
        Manifest(
            stage=Stage.eval_trajectory, fingerprint="t0", code_version="1", config={}, files=files
        )
    )
    cfg = open_pipeline_run(cfg)
    track_outputs(cfg, store, [manifest])
    close_pipeline_run(cfg, failed=True)
    db = tmp_path / "store" / "mlflow" / "mlflow.db"
    assert cfg.tracking.uri == f"sqlite:///{db}" and db.is_file()
    runs = _runs(cfg.tracking.uri, cfg.name)
    (parent,) = [r for r in runs if r.data.tags.get("bolt.kind") == "pipeline"]
    assert parent.info.status == "FAILED"
    stage = _stage_run(runs, Stage.eval_trajectory)
    uploaded = tmp_path / "store" / "mlflow" / "artifacts"
    assert list(uploaded.rglob("plots/trajectory.png")), "artifacts beside the database"
    assert stage.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert [m.fingerprint for m in store.list_manifests()] == ["t0"]
