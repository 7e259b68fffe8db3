"""Progress lines and store checkpoints on hand-built files (no training)."""

from __future__ import annotations

import pytest

from bolt.config import StorageConfig
from bolt.store import ArtifactStore
from bolt.train.checkpoints import (
    completed_steps,
    fetch_checkpoint,
    mark_complete,
    owner_rank,
    upload_rank_files,
)
from bolt.train.progress import StepProgress, format_progress, parse_progress


def test_progress_lines_round_trip_and_other_lines_are_ignored():
    record = {"step": 3, "max_steps": 8, "loss": 1.25}
    assert parse_progress("[rank0] " + format_progress(record)) == record
    assert parse_progress("{'loss': 1.25}") is None
    assert parse_progress("BOLT_PROGRESS not json") is None
    assert parse_progress('BOLT_PROGRESS {"loss": 1}') is None  # no step


def test_each_deepspeed_shard_belongs_to_its_rank():
    assert owner_rank("global_step4/zero_pp_rank_3_mp_rank_00_optim_states.pt") == 3
    assert owner_rank("global_step4/bf16_zero_pp_rank_12_mp_rank_00_optim_states.pt") == 12
    assert owner_rank("global_step4/mp_rank_00_model_states.pt") == 0
    assert owner_rank("model.safetensors") == 0 and owner_rank("trainer_state.json") == 0


def _checkpoint(folder, ranks: int) -> None:
    (folder / "global_step2").mkdir(parents=True)
    (folder / "trainer_state.json").write_text('{"global_step": 2}')
    for r in range(ranks):
        (folder / "global_step2" / f"zero_pp_rank_{r}_mp_rank_00_optim_states.pt").write_bytes(
            bytes([r])
        )


def test_only_marked_checkpoints_are_resumed_and_fetch_restores_every_rank(tmp_path):
    store = ArtifactStore.from_config(StorageConfig(root=f"file://{tmp_path}/store"))
    written = tmp_path / "node" / "checkpoint-2"
    _checkpoint(written, ranks=2)
    assert upload_rank_files(store, "sft", "fp", written, rank=1) == 1
    assert completed_steps(store, "sft", "fp") == []  # rank 0 not uploaded, no marker
    assert upload_rank_files(store, "sft", "fp", written, rank=0) == 2
    mark_complete(store, "sft", "fp", 2, {"step": 2})
    assert completed_steps(store, "sft", "fp") == [2]

    restored = fetch_checkpoint(store, "sft", "fp", 2, tmp_path / "other-node")
    assert sorted(p.relative_to(restored).as_posix() for p in restored.rglob("*.pt")) == [
        "global_step2/zero_pp_rank_0_mp_rank_00_optim_states.pt",
        "global_step2/zero_pp_rank_1_mp_rank_00_optim_states.pt",
    ]
    assert (restored / "trainer_state.json").read_text() == '{"global_step": 2}'


class _Clock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def _record(step: int, loss: float, margin: float | None = 0.25) -> dict:
    return {"step": step, "max_steps": 20, "loss": loss, "reward_margin": margin}


def test_step_progress_rate_and_eta_are_measured_from_the_first_step():
    clock, lines = _Clock(), []
    steps = StepProgress(
        "dpo iteration 1", {"margin": "reward_margin"}, clock=clock, emit=lines.append, every_s=30
    )
    # The first record starts the clock: the job's start-up is not in the rate.
    assert (
        steps.update(_record(1, 0.6931))
        == "dpo iteration 1: 1/20 steps (5%), loss 0.6931, margin 0.25"
    )
    clock.now += 8.0
    # 4 steps in 8 s since the first: 0.5 steps/s; 15 left -> 30 s.
    line = steps.update(_record(5, 0.61234, None))
    assert line == "dpo iteration 1: 5/20 steps (25%), 0.5 steps/s, ETA 30s, loss 0.6123, margin -"
    assert steps.progress.eta_s == pytest.approx(30.0)


def test_step_progress_in_a_log_writes_a_line_every_interval_and_at_the_last_step():
    clock, lines = _Clock(), []
    steps = StepProgress(
        "sft ab12", {"tokens/s": "tokens_per_s"}, clock=clock, emit=lines.append, every_s=30
    )
    for step in range(1, 21):  # one record every 4 s
        steps.update(
            {"step": step, "max_steps": 20, "loss": 2.0 - step / 20, "tokens_per_s": 812.34}
        )
        clock.now += 4.0
    # Lines at the first step (t=0), then when 30 s have passed since the last line
    # (steps 9 at t=32 and 17 at t=64), then the last step (t=76).
    assert lines == [
        "sft ab12: 1/20 steps (5%), loss 1.9500, tokens/s 812.3",
        "sft ab12: 9/20 steps (45%), 0.25 steps/s, ETA 44s, loss 1.5500, tokens/s 812.3",
        "sft ab12: 17/20 steps (85%), 0.25 steps/s, ETA 12s, loss 1.1500, tokens/s 812.3",
        "sft ab12: 20/20 steps (100%) in 1m16s, 0.25 steps/s, loss 1.0000, tokens/s 812.3",
    ]


def test_step_progress_of_a_resumed_job_counts_only_its_own_steps_in_the_rate():
    clock, lines = _Clock(), []
    steps = StepProgress("sft ab12", {}, clock=clock, emit=lines.append)
    steps.update(_record(11, 0.5))  # resumed from the checkpoint at step 10
    clock.now += 10.0
    assert (
        steps.update(_record(15, 0.4))
        == "sft ab12: 15/20 steps (75%), 0.4 steps/s, ETA 12s, loss 0.4000"
    )
