"""Progress lines and store checkpoints on hand-built files (no training)."""

from __future__ import annotations

from bolt.config import StorageConfig
from bolt.store import ArtifactStore
from bolt.train.checkpoints import (
    completed_steps,
    fetch_checkpoint,
    mark_complete,
    owner_rank,
    upload_rank_files,
)
from bolt.train.progress import format_progress, parse_progress


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
