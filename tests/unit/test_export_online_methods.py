"""`bolt export` of GRPO (RLMT) and DRIFT runs: the lineage follows each algorithm's
upstream links (groups <- scores <- samples; DRIFT's pairs <- revisions <- feedback
rows), the policy and its training data are written with cards that name the algorithm
and cite its paper beside BOLT's. Hand-built manifests in a local store; the "model" is
one small file, which is all the export copies."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bolt.config_loader import load_config
from bolt.export.bundle import export
from bolt.export.lineage import Index, select
from bolt.records import GroupSample, Message, PreferencePair
from bolt.stages import Stage
from bolt.store import ArtifactStore, Manifest

REPO = Path(__file__).resolve().parents[2]
PROMPT = [Message(role="user", content="Name one use of salt.")]


def F(name: str) -> str:
    return name.ljust(16, "0")


def put(store: ArtifactStore, stage, name, day="2026-01-01", rows=None, **fields) -> Manifest:
    shards = [store.write_shard(stage, F(name), 0, rows)] if rows is not None else []
    return store.commit(
        Manifest(
            stage=stage,
            fingerprint=F(name),
            created_at=f"{day}T00:00:00",
            code_version="1",
            config=fields.pop("config", {}),
            shards=shards,
            **fields,
        )
    )


def model_files(store: ArtifactStore, tmp: Path, stage: str, name: str) -> list:
    folder = tmp / f"model-{name}"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"model_type": "llama"}')
    return store.put_dir(stage, F(name), "model", folder)


def policy(store, tmp, name, algorithm, upstream, day="2026-01-03") -> Manifest:
    return put(
        store,
        Stage.online_policy,
        name,
        day,
        config={"online": {"algorithm": algorithm}, "iteration": 1},
        upstream=upstream,
        files=model_files(store, tmp, Stage.online_policy, name),
        stats={"first_loss": 0.7, "final_loss": 0.5, "final_kl": 0.01},
    )


def groups() -> list[GroupSample]:
    return [
        GroupSample(
            prompt_id="p0",
            prompt=PROMPT,
            completion=text,
            sample_index=i,
            reward=reward,
            advantage=advantage,
            iteration=1,
        )
        for i, (text, reward, advantage) in enumerate(
            [("<think>salt</think> Cooking.", 0.9, 0.7), ("salt salt", 0.1, -0.7)]
        )
    ]


def drift_pairs() -> list[PreferencePair]:
    return [
        PreferencePair(
            prompt_id="row0",
            prompt=PROMPT,
            chosen="Salt preserves food and seasons it.",
            rejected="Salt.",
            chosen_reward=1.0,
            rejected_reward=0.0,
            iteration=1,
        )
    ]


def sft_store(tmp: Path, algorithm: str):
    cfg = load_config(
        REPO / "configs/tiny-cpu.yaml",
        [f"storage.root=file://{tmp}/store", f"online.algorithm={algorithm}"],
    )
    store = ArtifactStore.from_config(cfg.storage)
    put(store, Stage.filter, "f1", rows=[])
    sft = put(
        store,
        Stage.sft,
        "s1",
        "2026-01-02",
        upstream={"filter": F("f1")},
        files=model_files(store, tmp, Stage.sft, "s1"),
    )
    return cfg, store, f"sft/{sft.fingerprint}"


def grpo_store(tmp: Path):
    """SFT -> samples -> strict scores -> groups -> the GRPO policy, and its quick eval."""
    cfg, store, sft_id = sft_store(tmp, "grpo")
    put(store, Stage.online_samples, "a1", "2026-01-03", upstream={"policy": sft_id})
    put(store, Stage.online_scores, "c1", "2026-01-03", upstream={"samples": F("a1")})
    data = put(
        store,
        Stage.online_groups,
        "g1",
        "2026-01-03",
        groups(),
        config={"iteration": 1},
        upstream={"scores": F("c1")},
        counts={"samples": 2, "groups": 1, "flat_groups": 0},
    )
    trained = policy(store, tmp, "d1", "grpo", {"groups": data.fingerprint})
    put(store, Stage.eval, "e1", "2026-01-04", config={"model": "GRPO-1"})
    return cfg, store, data, trained


def drift_store(tmp: Path):
    """SFT -> feedback rows -> the policy's revisions -> DRIFT pairs -> reference -> policy."""
    cfg, store, sft_id = sft_store(tmp, "drift")
    put(store, Stage.online_feedback, "b1", "2026-01-03", counts={"rows": 1})
    links = {"feedback": F("b1"), "policy": sft_id}
    put(store, Stage.online_samples, "a1", "2026-01-03", upstream=links)
    data = put(
        store,
        Stage.online_pairs,
        "p1",
        "2026-01-03",
        drift_pairs(),
        config={"iteration": 1, "algorithm": "drift"},
        upstream={"samples": F("a1"), "feedback": F("b1")},
        counts={"prompts": 1, "pairs": 1, "skipped": 0},
    )
    put(store, Stage.online_reference, "r1", "2026-01-03")
    upstream = {"pairs": data.fingerprint, "reference": F("r1")}
    trained = policy(store, tmp, "d1", "drift", upstream)
    put(store, Stage.eval, "e1", "2026-01-04", config={"model": "DRIFT-1"})
    return cfg, store, data, trained


def _front_matter(readme: Path) -> dict:
    return yaml.safe_load(readme.read_text().split("---\n", 2)[1])


def test_a_grpo_policy_and_its_groups_are_exported_citing_rlmt(tmp_path):
    cfg, store, data, trained = grpo_store(tmp_path)
    selection, done = export(store, cfg, tmp_path / "out", repo_prefix="org/x")
    (it,) = selection.iterations
    assert (it.algorithm, it.data.fingerprint, it.policy.fingerprint) == (
        "grpo",
        data.fingerprint,
        trained.fingerprint,
    )
    assert selection.evals["policy-1"].fingerprint == F("e1")  # found by its GRPO-1 label
    assert [e.name for e in done] == ["sft-data", "groups-iter1", "sft", "grpo-iter1"]
    folders = {e.name: e.folder for e in done}
    assert next(e.rows for e in done if e.name == "groups-iter1") == 2
    card = (folders["grpo-iter1"] / "README.md").read_text()
    assert "GRPO iteration 1" in card and f"online-groups/{data.fingerprint}" in card
    assert "Evaluated as `GRPO-1`" in card
    assert "arXiv:2509.20357" in card and "@article{pang2025bolt" in card
    assert "arXiv:2510.02341" not in card
    meta = _front_matter(folders["grpo-iter1"] / "README.md")
    assert "grpo" in meta["tags"] and meta["datasets"] == ["org/x-groups-iter1"]
    data_card = (folders["groups-iter1"] / "README.md").read_text()
    assert "scored groups of GRPO iteration 1" in data_card and "arXiv:2509.20357" in data_card
    assert (folders["grpo-iter1"] / "config.json").is_file()


def test_a_drift_policy_and_its_pairs_are_exported_citing_drift(tmp_path):
    cfg, store, data, trained = drift_store(tmp_path)
    selection, done = export(store, cfg, tmp_path / "out")
    (it,) = selection.iterations
    assert (it.algorithm, it.data.fingerprint, it.policy.fingerprint) == (
        "drift",
        data.fingerprint,
        trained.fingerprint,
    )
    assert selection.evals["policy-1"].fingerprint == F("e1")
    assert [e.name for e in done] == ["sft-data", "pairs-iter1", "sft", "drift-iter1"]
    folders = {e.name: e.folder for e in done}
    card = (folders["drift-iter1"] / "README.md").read_text()
    assert "DRIFT iteration 1" in card and "arXiv:2510.02341" in card
    assert "arXiv:2509.20357" not in card
    pairs_card = (folders["pairs-iter1"] / "README.md").read_text()
    assert "preference pairs of DRIFT iteration 1" in pairs_card
    assert "online DPO" not in pairs_card and "arXiv:2510.02341" in pairs_card
    assert "drift" in _front_matter(folders["pairs-iter1"] / "README.md")["tags"]
    # the lineage reaches the rows the revisions answered, and the SFT model
    lineage = {(str(m.stage), m.fingerprint) for m in Index.of(store).lineage(trained)}
    assert {("online-feedback", F("b1")), ("sft", F("s1"))} <= lineage


@pytest.mark.parametrize(("algorithm", "want"), [("dpo", "p1"), ("grpo", "g1")])
def test_samples_that_fed_two_algorithms_export_the_configs_own(tmp_path, algorithm, want):
    """One SFT model's samples scored once, then paired for DPO and grouped for GRPO:
    the config's algorithm picks the iteration, whichever is newer."""
    cfg, store, sft_id = sft_store(tmp_path, algorithm)
    put(store, Stage.online_samples, "a1", "2026-01-03", upstream={"policy": sft_id})
    put(store, Stage.online_scores, "c1", "2026-01-03", upstream={"samples": F("a1")})
    scored = {"scores": F("c1")}
    put(store, Stage.online_pairs, "p1", "2026-01-03", config={"iteration": 1}, upstream=scored)
    put(store, Stage.online_groups, "g1", "2026-01-04", config={"iteration": 1}, upstream=scored)
    (it,) = select(Index.of(store), cfg).iterations
    assert (it.data.fingerprint, it.algorithm, it.policy) == (F(want), algorithm, None)
