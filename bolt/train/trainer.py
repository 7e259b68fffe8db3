"""What every BOLT trainer (SFT and DPO) shares around the HF Trainer: the process's
place in the job, the training arguments, resuming from the store's last checkpoint,
uploading checkpoints as they are written, and saving the final model.

Runs inside the launched job; transformers is imported lazily, so importing this
module stays cheap.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bolt.config import Precision, TrainCommon
from bolt.store import ArtifactStore
from bolt.tracking import attach_trainer
from bolt.train import checkpoints
from bolt.train.deepspeed import GRADIENT_CLIPPING, deepspeed_config
from bolt.train.plan import gradient_accumulation


@dataclass(frozen=True)
class Dist:
    """This process's place in the job, from the launcher's environment."""

    rank: int
    world_size: int
    local_rank: int

    @classmethod
    def from_env(cls) -> Dist:
        return cls(
            int(os.environ.get("RANK", "0")),
            int(os.environ.get("WORLD_SIZE", "1")),
            int(os.environ.get("LOCAL_RANK", "0")),
        )


def barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def configure_cpu_processes() -> None:
    """DeepSpeed on CPU-only hosts (ARCHITECTURE.md §6): accelerate finds no device
    backend and would run each process as a world of one (every rank training alone).
    Naming gloo makes DeepSpeed start a real process group; the trainer then reuses
    this state."""
    from accelerate import PartialState

    os.environ["ACCELERATE_USE_DEEPSPEED"] = "true"
    PartialState(backend="gloo")


def trainer_arguments(train: TrainCommon, device: str, output_dir: Path, dist: Dist, **extra: Any):
    """The HF ``TrainingArguments`` every BOLT trainer shares (SFT and DPO): DeepSpeed
    filled from ``train``, accumulation from the world size, checkpoints every
    ``save_steps``; ``extra`` adds what one trainer alone needs."""
    from transformers import TrainingArguments

    on_cpu = device == "cpu"
    if on_cpu:
        configure_cpu_processes()
    accumulation = gradient_accumulation(
        train.global_batch_size, train.micro_batch_size, dist.world_size
    )
    return TrainingArguments(
        output_dir=str(output_dir),
        deepspeed=deepspeed_config(train, dist.world_size, accumulation),
        per_device_train_batch_size=train.micro_batch_size,
        gradient_accumulation_steps=accumulation,
        learning_rate=train.lr,
        num_train_epochs=train.epochs,
        max_steps=train.max_steps or -1,
        lr_scheduler_type=train.scheduler,
        warmup_steps=train.warmup_ratio,  # a float in [0, 1) is a ratio of the total steps
        optim=train.optimizer,
        weight_decay=train.weight_decay,
        max_grad_norm=GRADIENT_CLIPPING,
        bf16=train.precision == Precision.bf16,
        fp16=train.precision == Precision.fp16,
        gradient_checkpointing=train.gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False},
        seed=train.seed,
        data_seed=train.seed,
        save_strategy="steps",
        save_steps=train.save_steps,
        save_total_limit=2,
        logging_steps=1,
        report_to=[],
        remove_unused_columns=False,
        dataloader_num_workers=0,
        disable_tqdm=True,
        accelerator_config={"use_configured_state": on_cpu},
        **extra,
    )


def resume_point(
    store: ArtifactStore, stage: str, fp: str, output_dir: Path, dist: Dist
) -> str | None:
    """The local copy of the store's last complete checkpoint, fetched by each node."""
    steps = checkpoints.completed_steps(store, stage, fp)
    if not steps:
        return None
    if dist.local_rank == 0:
        checkpoints.fetch_checkpoint(store, stage, fp, steps[-1], output_dir)
    barrier()
    return str(output_dir / checkpoints.checkpoint_name(steps[-1]))


def store_callback(store: ArtifactStore, stage: str, fp: str, dist: Dist):
    """Uploads each checkpoint as soon as it is written; rank 0 marks it complete."""
    from transformers import TrainerCallback

    class StoreCheckpoints(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            # The final model is stored anyway; a last checkpoint (optimizer states,
            # ~16 bytes per parameter) would be uploaded for nothing.
            if state.global_step >= state.max_steps:
                control.should_save = False

        def on_save(self, args, state, control, **kwargs):
            folder = Path(args.output_dir) / checkpoints.checkpoint_name(state.global_step)
            barrier()  # every rank's shard is on disk
            checkpoints.upload_rank_files(store, stage, fp, folder, dist.rank)
            barrier()  # every rank's shard is in the store
            if dist.rank == 0:
                meta = {"step": state.global_step, "world_size": dist.world_size}
                checkpoints.mark_complete(store, stage, fp, state.global_step, meta)
            if dist.local_rank == 0:  # a relaunch on this node need not fetch it back
                checkpoints.mark_local(Path(args.output_dir), state.global_step)

    return StoreCheckpoints()


def train_and_save(trainer, store: ArtifactStore, stage: str, fp: str, dist: Dist, final_dir: Path):
    """Train from the store's last checkpoint and save the final model with its tokenizer;
    the TrainOutput on world rank 0 (the rank that commits), None on the others."""
    output_dir = Path(trainer.args.output_dir)
    attach_trainer(trainer, stage, fp, dist.rank)  # curves into the stage's tracking run
    result = trainer.train(resume_from_checkpoint=resume_point(store, stage, fp, output_dir, dist))
    trainer.save_model(str(final_dir))  # every rank: ZeRO-3 gathers the weights
    if dist.rank != 0:
        return None
    trainer.processing_class.save_pretrained(str(final_dir))
    return result
