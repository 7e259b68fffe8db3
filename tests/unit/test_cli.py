import json
from pathlib import Path

from typer.testing import CliRunner

from bolt.config import StorageConfig
from bolt.records import Query
from bolt.stages import Stage
from bolt.store import ArtifactStore, Manifest
from bolt_cli.main import app

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_config_validate_ok_and_bad(tmp_path):
    ok = runner.invoke(
        app, ["config", "validate", *map(str, sorted((REPO / "configs").glob("*.yaml")))]
    )
    assert ok.exit_code == 0, ok.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        (REPO / "configs/tiny-cpu.yaml").read_text().replace("  epochs: 1\n", "  epochs: one\n", 1)
    )
    result = runner.invoke(app, ["config", "validate", str(bad)])
    assert result.exit_code == 2
    assert "sft.epochs" in result.output and "bad.yaml:" in result.output


def test_config_show_applies_overrides():
    result = runner.invoke(
        app, ["config", "show", str(REPO / "configs/tiny-cpu.yaml"), "sft.lr=0.001"]
    )
    assert result.exit_code == 0, result.output
    assert "lr: 0.001" in result.output


def test_config_schema_is_json(tmp_path):
    out = tmp_path / "schema.json"
    assert runner.invoke(app, ["config", "schema", "--out", str(out)]).exit_code == 0
    assert json.loads(out.read_text())["title"] == "PipelineConfig"


def test_artifacts_ls_and_show(tmp_path):
    root = f"file://{tmp_path}/a"
    store = ArtifactStore.from_config(StorageConfig(root=root))
    shard = store.write_shard(
        Stage.curation, "abcdef0123456789", 0, [Query(id="q", text="t", source="s")]
    )
    store.commit(
        Manifest(
            stage=Stage.curation,
            fingerprint="abcdef0123456789",
            code_version="1",
            config={},
            shards=[shard],
        )
    )
    listed = runner.invoke(
        app, ["artifacts", "ls", "--root", root, "--config", str(REPO / "configs/tiny-cpu.yaml")]
    )
    assert listed.exit_code == 0 and "abcdef0123456789" in listed.output
    shown = runner.invoke(
        app,
        [
            "artifacts",
            "show",
            "data/abcdef",
            "--root",
            root,
            "--config",
            str(REPO / "configs/tiny-cpu.yaml"),
        ],
    )
    assert shown.exit_code == 0 and '"records": 1' in shown.output
    missing = runner.invoke(
        app,
        [
            "artifacts",
            "show",
            "data/zzz",
            "--root",
            root,
            "--config",
            str(REPO / "configs/tiny-cpu.yaml"),
        ],
    )
    assert missing.exit_code == 2


def test_unknown_model_is_a_clear_error():
    result = runner.invoke(
        app, ["models", "prepare", "gpt-17", "--config", str(REPO / "configs/tiny-cpu.yaml")]
    )
    assert result.exit_code == 2 and "not in models.catalog" in result.output


def test_run_until_an_unknown_stage_is_refused_before_any_work():
    result = runner.invoke(app, ["run", str(REPO / "configs/tiny-cpu.yaml"), "--until", "sfft"])
    assert result.exit_code == 2
    assert "--until 'sfft'" in result.output and "data, bootstrap, filter" in result.output
