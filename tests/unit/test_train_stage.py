"""train_stage, the launch sequence both trainings share: a stored output is returned
without a launch; a launch frees the process's live resources first and returns what
the job committed."""

from __future__ import annotations

import pytest

from bolt.config_loader import load_config
from bolt.resources import POOL, Role
from bolt.stages import Stage
from bolt.store import ArtifactStore, Manifest
from bolt.train import stage as train_stage_module
from bolt.train.job import TrainJob
from bolt.train.stage import local_job_dir, train_stage
from tests.conftest import TINY_CONFIG


class Live:
    closed = False

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def cfg(tmp_path):
    cfg = load_config(TINY_CONFIG)
    storage = cfg.storage.model_copy(update={"root": f"file://{tmp_path}/store"})
    return cfg.model_copy(update={"storage": storage})


def _commit(cfg, fp: str) -> Manifest:
    store = ArtifactStore.from_config(cfg.storage)
    return store.commit(Manifest(stage=Stage.sft, fingerprint=fp, code_version="1", config={}))


def _job(cfg, fp: str) -> TrainJob:
    return TrainJob(Stage.sft, fp, "bolt.train.sft", ("--sft-set", "s"), cfg.name)


def test_a_stored_output_is_returned_without_a_launch(cfg, monkeypatch):
    done = _commit(cfg, "0123456789abcdef")
    monkeypatch.setattr(train_stage_module, "run_job", pytest.fail)
    assert train_stage(cfg, _job(cfg, done.fingerprint), print) == done


def test_a_launch_frees_the_live_resources_and_returns_the_committed_output(cfg, monkeypatch):
    engine = POOL.get("policy-engine", Role.generation, Live)
    launched = []

    def run_job(cfg_, job, job_dir, on_line):
        assert engine.closed, "the engine still held the accelerator when the job started"
        job_dir.mkdir(parents=True, exist_ok=True)
        launched.append(job)
        _commit(cfg_, job.fingerprint)

    monkeypatch.setattr(train_stage_module, "run_job", run_job)
    job = _job(cfg, "fedcba9876543210")
    manifest = train_stage(cfg, job, print)
    assert launched == [job] and manifest.fingerprint == job.fingerprint
    assert POOL.live() == {}
    assert not local_job_dir(job).exists()  # the local checkpoint copies are gone


def test_the_jobs_take_their_inputs_by_store_reference_only(cfg):
    from bolt.train.fingerprints import policy_fingerprint, sft_fingerprint
    from bolt.train.reference import reference_fingerprint
    from bolt.train.stage import dpo_job, reference_job, sft_job

    sft = sft_job(cfg, "filterfp")
    assert (sft.module, sft.args) == ("bolt.train.sft", ("--sft-set", "filterfp"))
    assert sft.fingerprint == sft_fingerprint(cfg, "filterfp")
    reference = reference_job(cfg, "pairsfp", "sft/abc")
    assert reference.module == "bolt.train.reference" and reference.section == "online"
    assert reference.args == ("--pairs", "pairsfp", "--reference-model", "sft/abc")
    assert reference.fingerprint == reference_fingerprint(cfg, "pairsfp", "sft/abc")
    dpo = dpo_job(cfg, 2, "pairsfp", "reffp", "online-policy/def")
    assert dpo.fingerprint == policy_fingerprint(cfg, "pairsfp", "reffp", "online-policy/def", 2)
    args = dict(zip(dpo.args[::2], dpo.args[1::2], strict=True))
    assert args["--policy"] == "online-policy/def" and "--policy-dir" not in args
    assert (args["--pairs"], args["--reference"], args["--iteration"]) == ("pairsfp", "reffp", "2")


def test_an_empty_training_set_fails_before_any_job_naming_what_was_left_out():
    from bolt.store import Manifest
    from bolt.train.stage import NothingToTrainOn, require_examples

    empty = Manifest(
        stage="filter",
        fingerprint="f" * 16,
        code_version="x",
        config={},
        counts={"samples": 16, "kept": 0, "dropped.format_truncated": 16},
    )
    with pytest.raises(NothingToTrainOn, match=r"16 samples in; dropped.format_truncated 16"):
        require_examples(empty, "SFT set")
