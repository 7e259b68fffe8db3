"""Rehearsal: what it changes in a paper config, the stand-ins' tokenizers, the time table."""

from __future__ import annotations

from pathlib import Path

import pytest

from bolt.config_loader import ConfigError, load_config, read_config
from bolt.plan import StagePlan
from bolt.rehearsal import prepare
from bolt.rehearsal.families import FAMILIES, family_of, is_base_model
from bolt.rehearsal.report import section_of, time_rows
from bolt.rehearsal.shrink import shrink
from bolt.rehearsal.stand_ins import Role, StandInSpec, build_stand_in

REPO = Path(__file__).resolve().parents[2]
PAPER = REPO / "configs/paper-8b.yaml"


def _changes(config: Path = PAPER, overrides: tuple[str, ...] = ()) -> dict[str, object]:
    return {c.dotted: c.rehearsal for c in shrink(load_config(config, overrides))}


def test_paper_config_is_shrunk_and_moved_to_the_cpu():
    changes = _changes()
    assert changes["compute.device"] == "cpu" and changes["compute.gpus_per_node"] == 0
    assert changes["engine.tensor_parallel_size"] == 1
    assert changes["engine.dtype"] == "float32"
    assert changes["bootstrap.sampling.n"] == 2 and changes["online.sampling.n"] == 2
    assert changes["bootstrap.shard_size"] == 4 and changes["data.shard_size"] == 4
    assert changes["data.sources.0.limit"] == 24 and changes["data.sources.3.limit"] == 24
    assert changes["sft.max_steps"] == 2 and changes["sft.precision"] == "fp32"
    assert changes["online.iterations"] == 2 and changes["online.prompts_per_iteration"] == 4
    assert changes["eval.max_items"] == 2
    assert changes["eval.judges.arena_hard.max_new_tokens"] == 96
    assert changes["bootstrap.guided_decoding"] is True
    assert changes["storage.root"] == "s3://bolt-artifacts/paper-8b/rehearsal"


def test_what_makes_the_run_the_configs_own_is_left_alone():
    changes = _changes()
    for kept in ("sft.zero", "sft.lr", "online.beta", "online.loss_type", "compute.launcher"):
        assert kept not in changes
    assert not any(
        k.startswith(("eval.benchmarks", "filter.rewards", "eval.judge.model")) for k in changes
    )
    # a served engine's settings are the server's business
    assert not any(k.startswith("eval.judge.engine") for k in changes)


def test_nodes_and_stage_engines_shrink_wherever_they_are():
    changes = _changes(
        REPO / "configs/paper-70b.yaml", ("bootstrap.engine.tensor_parallel_size=4",)
    )
    assert changes["compute.nodes"] == 1
    assert changes["bootstrap.engine.tensor_parallel_size"] == 1


def test_a_value_already_small_is_not_listed():
    changes = _changes(REPO / "configs/tiny-cpu.yaml")
    assert "compute.device" not in changes and "sft.precision" not in changes
    assert "data.max_queries" in changes  # 16 -> 8


@pytest.mark.parametrize(
    ("hf_id", "family"),
    [
        ("meta-llama/Llama-3.1-8B-Instruct", "llama-3.1"),
        ("meta-llama/Llama-3.3-70B-Instruct", "llama-3.1"),
        ("meta-llama/Meta-Llama-3-70B-Instruct", "llama-3"),
        ("RLHFlow/ArmoRM-Llama3-8B-v0.1", "llama-3"),
        ("Skywork/Skywork-Reward-Llama-3.1-8B-v0.2", "llama-3.1"),
        ("mistralai/Mistral-7B-Instruct-v0.3", "mistral"),
        ("Qwen/Qwen2.5-7B-Instruct", "qwen2"),
    ],
)
def test_family_from_the_hub_id(hf_id, family):
    assert family_of(hf_id).name == family


def test_unknown_family_and_base_models():
    assert family_of("google/gemma-2-9b-it") is None
    assert is_base_model("meta-llama/Llama-3.1-8B") and not is_base_model(
        "Qwen/Qwen2.5-7B-Instruct"
    )


@pytest.fixture(scope="module")
def stand_in_dir(smollm2_path, tmp_path_factory):
    return tmp_path_factory.mktemp("stand-ins")


def _tokenizer(family: str, donor: Path, cache: Path, base: bool = False):
    from transformers import AutoTokenizer

    spec = StandInSpec("m", FAMILIES[family], Role.causal_lm, base, 131072)
    return AutoTokenizer.from_pretrained(build_stand_in(spec, donor, cache))


MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello"},
    {"role": "user", "content": "2+2?"},
]


def test_llama31_stand_in_tokenizer(smollm2_path, stand_in_dir):
    tok = _tokenizer("llama-3.1", smollm2_path, stand_in_dir)
    assert tok.pad_token is None and tok.eos_token == "<|eot_id|>"
    assert tok.model_max_length == 131072
    text = tok.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
    assert text.startswith(
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
        "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nBe brief.<|eot_id|>"
    )
    assert text.endswith("2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
    # the tokenizer writes its BOS itself, as Llama-3's does: one per plain encode
    ids = tok("Hi there").input_ids
    assert tok.convert_ids_to_tokens(ids)[0] == "<|begin_of_text|>"
    assert (
        len(tok.convert_ids_to_tokens(tok("<|eot_id|>", add_special_tokens=False).input_ids)) == 1
    )


def test_mistral_stand_in_folds_the_system_prompt_and_checks_roles(smollm2_path, stand_in_dir):
    tok = _tokenizer("mistral", smollm2_path, stand_in_dir)
    assert tok.pad_token is None and tok.bos_token == "<s>"
    text = tok.apply_chat_template(MESSAGES, tokenize=False)
    assert text == "<s>[INST] Hi[/INST] Hello</s>[INST] Be brief.\n\n2+2?[/INST]"
    with pytest.raises(Exception, match="alternate"):
        tok.apply_chat_template([MESSAGES[1], MESSAGES[1]], tokenize=False)


def test_qwen2_stand_in_has_a_pad_token_and_no_bos(smollm2_path, stand_in_dir):
    tok = _tokenizer("qwen2", smollm2_path, stand_in_dir)
    assert tok.pad_token == "<|endoftext|>" and tok.bos_token is None
    text = tok.apply_chat_template(MESSAGES[1:2], tokenize=False, add_generation_prompt=True)
    assert text.startswith("<|im_start|>system\nYou are Qwen")
    assert text.endswith("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    assert tok.convert_ids_to_tokens(tok("Hi").input_ids) == ["Hi"]


def test_base_model_stand_in_ends_with_the_base_eos(smollm2_path, stand_in_dir):
    assert _tokenizer("llama-3.1", smollm2_path, stand_in_dir, base=True).eos_token == (
        "<|end_of_text|>"
    )


def test_prepare_replaces_every_model_and_keeps_served_names(smollm2_path, stand_in_dir):
    raw = read_config(PAPER, ["models.catalog.llama-3.1-70b-instruct.served_name=teacher"])
    rehearsal = prepare(raw, smollm2_path, stand_in_dir)
    cfg = rehearsal.cfg
    by_name = {r.name: r for r in rehearsal.replacements}
    assert set(by_name) == {"llama-3.1-70b-instruct", "llama-3.1-8b-instruct", "armorm-llama3-8b"}
    assert by_name["armorm-llama3-8b"].role == "reward_model"
    teacher = cfg.models.catalog["llama-3.1-70b-instruct"]
    assert teacher.served_name == "teacher" and teacher.hf_id is None
    assert Path(teacher.path, "config.json").is_file() and teacher.params_b < 0.1
    base = cfg.models.catalog["llama-3.1-8b-instruct"]
    assert base.served_name == "meta-llama/Llama-3.1-8B-Instruct"  # what the real one is served as
    assert base.path != teacher.path  # each model its own stand-in, as each its own engine
    assert not cfg.models.catalog["armorm-llama3-8b"].trust_remote_code
    assert cfg.compute.device == "cpu" and cfg.sft.max_steps == 2


def test_prepare_names_a_model_it_cannot_stand_in_for(smollm2_path, stand_in_dir):
    raw = read_config(PAPER, ["models.catalog.armorm-llama3-8b.hf_id=google/gemma-2-9b-it"])
    raw.data["models"]["remote_code_allowlist"] = ["google/gemma-2-9b-it"]
    with pytest.raises(ConfigError, match=r"models\.catalog\.armorm-llama3-8b.*--stand-in"):
        prepare(raw, smollm2_path, stand_in_dir)


def test_time_rows_put_each_section_beside_its_projection():
    plans = [
        StagePlan("data", 70.6, wall_hours=20.0, device_hours=160.0, cost_usd=400.0),
        StagePlan("online.1.sample", 8.0, wall_hours=2.0, device_hours=16.0, cost_usd=40.0),
        StagePlan("online.1.dpo", 8.0, wall_hours=1.0, device_hours=8.0, cost_usd=20.0),
    ]
    summary = {
        "data": {"section": "data", "seconds": 12.5},
        "online-policy": {"section": "online", "seconds": 30.0},
    }
    rows = time_rows(plans, summary, cached={"data"})
    assert [r["stage"] for r in rows] == ["data", "online"]
    assert [r["ran"] for r in rows] == ["cached", "ran"]
    assert rows[1]["plan_wall_hours"] == 3.0 and rows[1]["plan_cost_usd"] == 60.0
    assert rows[0]["rehearsal_seconds"] == 12.5
    assert section_of("online.2.dpo") == "online" and section_of("filter") == "filter"


def test_overrides_reach_catalog_names_with_dots():
    cfg = load_config(PAPER, ["models.catalog.llama-3.1-8b-instruct.served_name=x", "sft.lr=1e-5"])
    assert cfg.models.catalog["llama-3.1-8b-instruct"].served_name == "x" and cfg.sft.lr == 1e-5


def test_mistral_config_gets_a_mistral_base_and_llama_helpers(smollm2_path, stand_in_dir):
    from transformers import AutoTokenizer

    rehearsal = prepare(
        read_config(REPO / "configs/paper-mistral-7b.yaml"), smollm2_path, stand_in_dir
    )
    by_name = {r.name: r for r in rehearsal.replacements}
    assert by_name["mistral-7b-instruct-v0.3"].family == "mistral"
    assert by_name["llama-3.1-70b-instruct"].family == "llama-3.1"
    base = rehearsal.cfg.models.catalog[rehearsal.cfg.sft.base_model]
    tokenizer = AutoTokenizer.from_pretrained(base.path)
    assert tokenizer.pad_token is None and tokenizer.model_max_length == 32768
    assert rehearsal.cfg.storage.root == "s3://bolt-artifacts/paper-mistral-7b/rehearsal"
