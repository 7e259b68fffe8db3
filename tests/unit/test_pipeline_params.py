"""The deployments' run form (flows/pipeline.py): the parameter schema Prefect renders,
the deployments' parameters in prefect.yaml against it, and the validation step."""

from __future__ import annotations

import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from prefect.utilities.callables import parameter_schema

from bolt.config import STAGE_SECTIONS
from bolt.config_loader import ConfigError
from flows.pipeline import (
    CONFIG_DIR,
    OVERRIDE_PATTERN,
    ShippedConfig,
    config_file,
    pipeline_from_config,
    stage_from_config,
    validate_config,
)

REPO = Path(__file__).resolve().parents[2]
FLOWS = {
    "flows/pipeline.py:pipeline_from_config": pipeline_from_config,
    "flows/pipeline.py:stage_from_config": stage_from_config,
}


def schema_of(flow) -> dict:
    return parameter_schema(flow).model_dump()


def test_the_stage_and_the_config_are_choices():
    schema = schema_of(pipeline_from_config)
    props, defs = schema["properties"], schema["definitions"]
    assert defs[props["until"]["$ref"].rpartition("/")[2]]["enum"] == list(STAGE_SECTIONS)
    assert props["until"]["default"] == "eval"
    shipped, path = props["config"]["anyOf"]
    assert defs[shipped["$ref"].rpartition("/")[2]]["enum"] == sorted(
        p.stem for p in CONFIG_DIR.glob("*.yaml")
    )
    assert path == {"type": "string", "title": "path", "minLength": 1}
    assert props["overrides"]["items"]["pattern"] == OVERRIDE_PATTERN
    assert "stop after" in props["until"]["description"]
    stage = schema_of(stage_from_config)["properties"]["stage"]
    assert stage["default"] == "data" and "$ref" in stage


@pytest.mark.parametrize(
    ("override", "ok"),
    [
        ("sft.lr=1e-5", True),
        ("online.rewards[0].weight=2", True),
        ("filter.rewards=[{kind: format, name: f}]", True),
        ("name=", True),
        ("sft.lr 1e-5", False),
        ("=1", False),
        ("sft lr=1", False),
    ],
)
def test_the_override_pattern(override, ok):
    assert bool(re.match(OVERRIDE_PATTERN, override)) is ok


def test_every_deployment_in_prefect_yaml_fits_its_flows_schema():
    spec = yaml.safe_load((REPO / "prefect.yaml").read_text())
    for deployment in spec["deployments"]:
        schema = schema_of(FLOWS[deployment["entrypoint"]])
        jsonschema.validate(deployment.get("parameters", {}), schema)
        config = deployment["parameters"]["config"]
        assert config in ShippedConfig.__members__, (deployment["name"], config)


def test_config_file_is_a_shipped_name_or_a_path(tmp_path):
    assert config_file(ShippedConfig["tiny-cpu"]) == CONFIG_DIR / "tiny-cpu.yaml"
    assert config_file("paper-8b") == CONFIG_DIR / "paper-8b.yaml"
    assert config_file("configs/tiny-cpu.yaml") == Path("configs/tiny-cpu.yaml")
    assert config_file(str(tmp_path / "x.yaml")) == tmp_path / "x.yaml"


def test_validation_names_the_key_or_the_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"sft\.lrr"):
        validate_config.fn("tiny-cpu", ["sft.lrr=1e-5"])
    with pytest.raises(FileNotFoundError, match="shipped configs: .*tiny-cpu"):
        validate_config.fn(str(tmp_path / "nope.yaml"))


def test_validation_loads_the_shipped_config_with_its_overrides():
    from prefect.logging import disable_run_logger

    with disable_run_logger():
        cfg = validate_config.fn("tiny-cpu", ["sft.lr=1e-5"])
    assert cfg.name == "tiny-cpu" and cfg.sft.lr == 1e-5
