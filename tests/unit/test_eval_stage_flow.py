"""`bolt stage eval` (and nightly-eval) after a full run: the config's newest committed SFT
model and its last policy, found in the store, are what it evaluates.

The store is laid out as a full tiny run leaves it (SFT -> samples -> scores -> pairs ->
policy, twice), plus an SFT model of another config and a policy trained from that one:
neither may be picked. Answering and grading are replaced by a recorder (they have their
own tests); what is checked is which models the stage hands them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bolt.config_loader import load_config
from bolt.stages import Stage
from bolt.store import ArtifactStore, Manifest
from bolt.train.fingerprints import MODEL_DIR, sft_fingerprint
from flows import evaluation
from tests.conftest import TINY_CONFIG


def _commit(store: ArtifactStore, tmp: Path, stage: str, fp: str, when: str, **fields) -> Manifest:
    files = []
    if stage in (Stage.sft, Stage.online_policy):
        folder = tmp / "models" / fp
        folder.mkdir(parents=True)
        (folder / "config.json").write_text(json.dumps({"model_type": "llama", "id": fp}))
        files = store.put_dir(stage, fp, MODEL_DIR, folder)
    fields.setdefault("config", {})
    manifest = Manifest(
        stage=stage, fingerprint=fp, code_version="1", created_at=when, files=files, **fields
    )
    return store.commit(manifest)


def _iteration(store, tmp, k: int, policy_id: str, when: str) -> Manifest:
    _commit(store, tmp, Stage.online_samples, f"samples{k}", when, upstream={"policy": policy_id})
    _commit(
        store, tmp, Stage.online_scores, f"scores{k}", when, upstream={"samples": f"samples{k}"}
    )
    _commit(store, tmp, Stage.online_pairs, f"pairs{k}", when, upstream={"scores": f"scores{k}"})
    return _commit(
        store,
        tmp,
        Stage.online_policy,
        f"policy{k}-{policy_id.replace('/', '-')}",
        when,
        config={"iteration": k},
        upstream={"pairs": f"pairs{k}", "reference": f"ref{k}"},
    )


@pytest.fixture
def after_a_full_run(tmp_path, monkeypatch):
    cfg = load_config(TINY_CONFIG, [f"storage.root=file://{tmp_path}/artifacts"])
    store = ArtifactStore.from_config(cfg.storage)
    sft_fp = sft_fingerprint(cfg, "filter-fp")
    sft = _commit(
        store,
        tmp_path,
        Stage.sft,
        sft_fp,
        "2026-01-01T00:00:00+00:00",
        upstream={"filter": "filter-fp"},
    )
    first = _iteration(store, tmp_path, 1, f"sft/{sft_fp}", "2026-01-02T00:00:00+00:00")
    last = _iteration(
        store, tmp_path, 2, f"online-policy/{first.fingerprint}", "2026-01-03T00:00:00+00:00"
    )
    # another config's SFT model, newer, and a policy trained from it, newer still
    other = _commit(
        store,
        tmp_path,
        Stage.sft,
        "0therconfig5ft00",
        "2026-02-01T00:00:00+00:00",
        upstream={"filter": "other-filter"},
    )
    _iteration(store, tmp_path, 3, f"sft/{other.fingerprint}", "2026-02-02T00:00:00+00:00")
    monkeypatch.setattr(evaluation, "MODEL_CACHE", tmp_path / "cache")
    return cfg, store, sft, last


def test_finds_the_newest_sft_model_of_the_config_and_its_last_policy(after_a_full_run):
    cfg, store, sft, last = after_a_full_run
    found = evaluation.newest_checkpoints(cfg, store)
    assert [(m.stage, m.fingerprint) for m in found] == [
        (Stage.sft, sft.fingerprint),
        (Stage.online_policy, last.fingerprint),
    ]
    assert [evaluation.checkpoint_label(m) for m in found] == ["SFT", "DPO-2"]


def test_bolt_stage_eval_evaluates_the_last_policy(after_a_full_run, monkeypatch, caplog):
    cfg, _, sft, last = after_a_full_run
    handed = []

    def record(cfg, checkpoints):
        handed.extend(checkpoints)
        return "trajectory", [f"eval of {label}" for label, _ in checkpoints]

    monkeypatch.setattr(evaluation, "_evaluate_checkpoints", record)
    with caplog.at_level("INFO"):
        result = evaluation.eval_stage_flow.fn(cfg)
    assert result == "eval of DPO-2"
    labels, folders = zip(*handed, strict=True)
    assert labels == ("SFT", "DPO-2")
    assert folders[1].endswith(f"online-policy/{last.fingerprint}")  # the stored policy
    assert json.loads((Path(folders[1]) / "config.json").read_text())["id"] == last.fingerprint
    assert f"online-policy/{last.fingerprint}" in caplog.text  # the log says which
    assert f"sft/{sft.fingerprint}" in caplog.text


def test_before_any_training_it_evaluates_the_base_model(tmp_path, monkeypatch):
    cfg = load_config(TINY_CONFIG, [f"storage.root=file://{tmp_path}/artifacts"])
    calls = []

    class RecordingEvalFlow:
        """Stands in for the eval flow: the stage calls it through ``with_options``
        (tasks.runtime.with_task_runner), then with the model to evaluate."""

        def with_options(self, **options):
            assert "task_runner" in options
            return self

        def __call__(self, cfg, model, label=None):
            calls.append(model)

    monkeypatch.setattr(evaluation, "eval_flow", RecordingEvalFlow())
    evaluation.eval_stage_flow.fn(cfg)
    assert calls == [cfg.sft.base_model]


def test_the_model_cache_is_the_online_flows():
    from flows.online import MODEL_CACHE

    assert MODEL_CACHE == evaluation.MODEL_CACHE
