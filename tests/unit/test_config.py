import json
from pathlib import Path

import pytest

from bolt.bootstrap.stage import bootstrap_fingerprint
from bolt.config import PipelineConfig, SftConfig, output_fields
from bolt.config_loader import ConfigError, load_config
from bolt.fingerprint import fingerprint
from bolt.stages import Stage

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted((REPO / "configs").glob("*.yaml"))


def test_configs_are_shipped():
    names = {p.name for p in SHIPPED}
    assert {"tiny-cpu.yaml", "paper-8b.yaml", "paper-70b.yaml", "paper-mistral-7b.yaml"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_config_validates(path):
    cfg = load_config(path)
    assert isinstance(cfg, PipelineConfig)
    assert cfg.name == path.stem


def test_paper_8b_carries_the_published_hyperparameters():
    cfg = load_config(REPO / "configs/paper-8b.yaml")
    sft, online = cfg.sft, cfg.online
    assert (sft.epochs, sft.lr, sft.scheduler, sft.warmup_ratio) == (4, 2e-5, "cosine", 0.1)
    assert (sft.global_batch_size, sft.max_length) == (128, 16384)
    assert cfg.bootstrap.examples_per_prompt == 3 and cfg.bootstrap.sampling.n == 8
    assert cfg.filter.percentile == 30 and cfg.data.difficulty_threshold == 5
    assert (
        online.iterations,
        online.prompts_per_iteration,
        online.beta,
        online.lr,
        online.epochs,
    ) == (3, 33000, 0.1, 5e-7, 2)
    assert (online.sampling.n, online.sampling.temperature, online.sampling.top_p) == (8, 1.0, 1.0)


def test_base_inheritance_merges_sections():
    cfg = load_config(REPO / "configs/paper-70b.yaml")
    assert cfg.sft.base_model == "llama-3.1-70b-instruct"
    assert cfg.sft.lr == 2e-5  # inherited from paper-8b
    assert cfg.compute.nodes == 8 and cfg.compute.gpus_per_node == 8


def _write(tmp_path, text):
    base = (REPO / "configs/tiny-cpu.yaml").read_text()
    path = tmp_path / "bad.yaml"
    path.write_text(base.replace("  lr: 2.0e-5\n  global_batch_size: 8", text, 1))
    return path


def test_wrong_key_names_file_line_and_key_path(tmp_path):
    path = _write(tmp_path, "  lrr: 2.0e-5\n  global_batch_size: 8")
    with pytest.raises(ConfigError) as e:
        load_config(path)
    line = next(i for i, l in enumerate(path.read_text().splitlines(), 1) if l.startswith("  lrr:"))
    msg = str(e.value)
    assert f"{path}:{line}: sft.lrr: unknown key" in msg
    assert "sft.lr: required key is missing" in msg


def test_wrong_type_names_file_line_key_and_expectation(tmp_path):
    path = _write(tmp_path, "  lr: fast\n  global_batch_size: 8")
    with pytest.raises(ConfigError) as e:
        load_config(path)
    line = next(
        i for i, l in enumerate(path.read_text().splitlines(), 1) if l.startswith("  lr: fast")
    )
    assert f"{path}:{line}: sft.lr: Input should be a valid number" in str(e.value)
    assert "'fast'" in str(e.value)


def test_wrong_value_is_refused(tmp_path):
    path = _write(tmp_path, "  lr: -1\n  global_batch_size: 8")
    with pytest.raises(ConfigError, match=r"sft\.lr: Input should be greater than 0"):
        load_config(path)


def test_invalid_yaml_names_the_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\nsft: {lr: [1, 2\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml:\d+: <yaml>: invalid YAML"):
        load_config(path)


def test_unknown_model_reference_fails_at_load():
    with pytest.raises(ConfigError, match="sft.base_model = 'nope' is not in models.catalog"):
        load_config(REPO / "configs/tiny-cpu.yaml", ["sft.base_model=nope"])


def test_remote_code_needs_allowlist():
    with pytest.raises(ConfigError, match="remote_code_allowlist"):
        load_config(REPO / "configs/paper-8b.yaml", ["models.remote_code_allowlist=[]"])


def test_overrides_apply_and_parse_as_yaml():
    cfg = load_config(
        REPO / "configs/tiny-cpu.yaml",
        [
            "sft.lr=1e-5",
            "bootstrap.guided_decoding=true",
            "filter.rewards.0.weight=2",
            "eval.benchmarks=[math500]",
        ],
    )
    assert cfg.sft.lr == 1e-5 and cfg.bootstrap.guided_decoding is True
    assert cfg.filter.rewards[0].weight == 2 and [b.value for b in cfg.eval.benchmarks] == [
        "math500"
    ]


def test_an_override_that_creates_a_section_starts_from_its_default():
    # tiny-cpu sets eval.judge but not its engine, whose default (kind: openai) comes from
    # JudgeConfig's factory, not from EngineConfig's own default (kind: vllm).
    cfg = load_config(
        REPO / "configs/tiny-cpu.yaml",
        ["eval.judge.engine.base_url=http://127.0.0.1:9/v1", "models.catalog.extra.path=/m"],
    )
    assert cfg.eval.judge.engine.kind.value == "openai"
    assert cfg.eval.judge.engine.base_url == "http://127.0.0.1:9/v1"
    assert cfg.models.catalog["extra"].path == "/m"


def test_bad_override_names_the_override():
    with pytest.raises(ConfigError, match=r"override 'sft.epochs=many': sft.epochs"):
        load_config(REPO / "configs/tiny-cpu.yaml", ["sft.epochs=many"])
    with pytest.raises(ConfigError, match="expected KEY.PATH=VALUE"):
        load_config(REPO / "configs/tiny-cpu.yaml", ["sft.epochs"])
    with pytest.raises(ConfigError, match="no list item 5"):
        load_config(REPO / "configs/tiny-cpu.yaml", ["filter.rewards.5.weight=1"])


def test_json_schema_documents_every_stage():
    schema = PipelineConfig.model_json_schema()
    for section in (
        "data",
        "bootstrap",
        "filter",
        "sft",
        "online",
        "eval",
        "storage",
        "compute",
        "models",
    ):
        assert section in schema["properties"]
    assert schema["$defs"]["SftConfig"]["properties"]["lr"]["description"]


def test_throughput_knobs_do_not_change_fingerprints():
    a = load_config(REPO / "configs/tiny-cpu.yaml")
    b = load_config(
        REPO / "configs/tiny-cpu.yaml",
        ["engine.concurrency=64", "sft.gradient_checkpointing=false"],
    )
    c = load_config(REPO / "configs/tiny-cpu.yaml", ["bootstrap.sampling.temperature=0.5"])
    fp = lambda cfg: fingerprint("bootstrap", cfg.bootstrap)
    assert fp(a) == fp(b) != fp(c)
    assert "gradient_checkpointing" not in output_fields(b.sft)
    assert fingerprint("x", a.sft, {"up": "1"}) != fingerprint("x", a.sft, {"up": "2"})


def test_models_nested_in_a_dict_count_only_by_output_fields():
    a = load_config(REPO / "configs/tiny-cpu.yaml")
    b = load_config(
        REPO / "configs/tiny-cpu.yaml",
        ["models.catalog.smollm2-135m-instruct.params_b=0.2", "engine.concurrency=8"],
    )
    c = load_config(
        REPO / "configs/tiny-cpu.yaml", ["models.catalog.smollm2-135m-instruct.context_length=4096"]
    )
    fp = lambda cfg: fingerprint(
        "bootstrap",
        {"bootstrap": cfg.bootstrap, "teacher": cfg.models.catalog["smollm2-135m-instruct"]},
    )
    assert fp(a) == fp(b) != fp(c)


def test_stage_config_alone_rejects_unknown_keys():
    with pytest.raises(Exception, match="extra"):
        SftConfig(base_model="m", lr=1e-5, epochs=1, bogus=1)


def test_a_stage_engine_override_replaces_the_top_level_engine_for_that_stage_only():
    cfg = load_config(
        REPO / "configs/tiny-cpu.yaml",
        ["bootstrap.engine.kind=openai", "bootstrap.engine.base_url=http://127.0.0.1:9/v1"],
    )
    assert cfg.engine_settings(Stage.bootstrap).kind.value == "openai"
    for stage in (Stage.curation, Stage.score, Stage.online_samples, Stage.eval_answers):
        assert cfg.engine_settings(stage) == cfg.engine
    assert cfg.engine.dtype == "float32"  # tiny-cpu's top-level engine is untouched


def test_a_stage_engine_override_inherits_the_fields_it_does_not_name():
    cfg = load_config(REPO / "configs/tiny-cpu.yaml", ["bootstrap.engine.max_model_len=4096"])
    own = cfg.engine_settings(Stage.bootstrap)
    assert own.max_model_len == 4096 and cfg.engine.max_model_len != 4096
    assert own.model_dump(exclude={"max_model_len"}) == cfg.engine.model_dump(
        exclude={"max_model_len"}
    )


def test_where_the_engine_is_written_does_not_fork_a_stage():
    top = load_config(REPO / "configs/tiny-cpu.yaml")
    moved = load_config(
        REPO / "configs/tiny-cpu.yaml",
        [f"bootstrap.engine={json.dumps(top.engine.model_dump(mode='json'))}", "engine.dtype=auto"],
    )
    assert moved.engine_settings(Stage.bootstrap) == top.engine != moved.engine
    assert bootstrap_fingerprint(moved, "d" * 16, []) == bootstrap_fingerprint(top, "d" * 16, [])
    changed = load_config(REPO / "configs/tiny-cpu.yaml", ["engine.dtype=auto"])
    assert bootstrap_fingerprint(changed, "d" * 16, []) != bootstrap_fingerprint(top, "d" * 16, [])
    for section in (top.data, top.bootstrap, top.filter, top.online, top.eval):
        assert "engine" not in output_fields(section)
