"""Stage 2, LongCoT SFT (BOLT §3.2): the training job's entrypoint.

Runs inside the job, on every rank, with no Prefect::

    accelerate launch --config_file infra/accelerate/deepspeed.yaml -m bolt.train.sft \\
        --config run.yaml --sft-set <filter fingerprint>
    torchrun --nproc_per_node 2 -m bolt.train.sft --config run.yaml --sft-set <fp>
    RANK=0 WORLD_SIZE=1 LOCAL_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=29500 \\
        python -m bolt.train.sft --config run.yaml --sft-set <fp>

It reads the SFT set from the store, trains with the HF Trainer under DeepSpeed (the
config's ZeRO stage), uploads every checkpoint to the store as it is saved, resumes
from the last complete checkpoint in the store when one exists, and on world rank 0
stores the final model, metrics, loss curve and model card and commits the manifest.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bolt.config import PipelineConfig, Precision, TrainCommon
from bolt.config_loader import load_config
from bolt.fingerprint import fingerprint
from bolt.records import SftExample
from bolt.store import ArtifactStore, Manifest
from bolt.train import checkpoints
from bolt.train.data import (
    TokenizedExample,
    collate_packed,
    collate_padded,
    input_tokens,
    pack_examples,
    tokenize_with_labels,
    trained_tokens,
)
from bolt.train.deepspeed import GRADIENT_CLIPPING, deepspeed_config
from bolt.train.outputs import CODE_VERSION, STAGE, commit_outputs
from bolt.train.plan import gradient_accumulation
from bolt.train.progress import TokenMeter, progress_callback


def sft_fingerprint(cfg: PipelineConfig, sft_set_fp: str) -> str:
    """What changes the trained model: the SFT config, the base model and the data."""
    return fingerprint(
        STAGE,
        {"sft": cfg.sft, "base_model": cfg.models.catalog[cfg.sft.base_model]},
        upstream={"filter": sft_set_fp},
        code_version=CODE_VERSION,
    )


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


def build_dataset(examples: list[TokenizedExample], packing: bool, max_length: int):
    """Packed rows, or one row per example with its length for length-grouped batches."""
    import datasets

    if packing:
        return datasets.Dataset.from_list(pack_examples(examples, max_length))
    return datasets.Dataset.from_list(
        [{"input_ids": e.input_ids, "labels": e.labels, "length": len(e)} for e in examples]
    )


def make_collator(packing: bool, pad_token_id: int, meter: TokenMeter):
    def collate(rows: list[dict[str, Any]]) -> dict[str, Any]:
        collate = collate_packed if packing else collate_padded
        batch = collate(rows, pad_token_id)
        meter.input_tokens += input_tokens(rows)
        meter.trained_tokens += trained_tokens(batch)
        return batch

    return collate


def configure_cpu_processes() -> None:
    """DeepSpeed on CPU-only hosts (DESIGN.md §5): accelerate finds no device backend and
    would run each process as a world of one (every rank training alone). Naming gloo
    makes DeepSpeed start a real process group; the trainer then reuses this state."""
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


def load_model(model_dir: str, precision: Precision, device: str):
    import torch
    from transformers import AutoModelForCausalLM

    dtype = {Precision.bf16: torch.bfloat16, Precision.fp16: torch.float16}.get(
        precision, torch.float32
    )
    attention = "sdpa"
    if device == "cuda":
        from transformers.utils import is_flash_attn_2_available

        attention = "flash_attention_2" if is_flash_attn_2_available() else "sdpa"
    model = AutoModelForCausalLM.from_pretrained(
        model_dir, dtype=dtype, attn_implementation=attention
    )
    # A cache during training would also switch off the packed-sequence mask.
    model.config.use_cache = False
    return model


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


def train(cfg: PipelineConfig, sft_set: Manifest, work_dir: Path) -> Manifest | None:
    """Train on every rank; world rank 0 commits and returns the manifest."""
    from transformers import AutoTokenizer, Trainer

    from bolt.models import resolve_model

    store, dist = ArtifactStore.from_config(cfg.storage), Dist.from_env()
    fp = sft_fingerprint(cfg, sft_set.fingerprint)
    if (done := store.manifest(STAGE, fp)) is not None:
        return done
    started = time.perf_counter()
    model_dir = resolve_model(cfg.models, cfg.sft.base_model, cfg.storage.s3)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    records = list(store.read_records(sft_set, SftExample))
    if not records:
        raise ValueError(f"the SFT set {sft_set.fingerprint} has no examples to train on")
    examples = [
        tokenize_with_labels(tokenizer, [m.model_dump() for m in r.messages], cfg.sft.max_length)
        for r in records
    ]
    output_dir = work_dir / fp
    # Before the model: ZeRO-3 init needs it. Length-grouped batches when not packing.
    args = trainer_arguments(
        cfg.sft,
        cfg.compute.device,
        output_dir,
        dist,
        train_sampling_strategy="random" if cfg.sft.packing else "group_by_length",
        length_column_name="length",
    )
    model = load_model(model_dir, cfg.sft.precision, cfg.compute.device)
    meter = TokenMeter()
    progress = progress_callback(meter, dist.world_size)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=build_dataset(examples, cfg.sft.packing, cfg.sft.max_length),
        data_collator=make_collator(cfg.sft.packing, tokenizer.pad_token_id, meter),
        processing_class=tokenizer,
        callbacks=[progress, store_callback(store, STAGE, fp, dist)],
    )
    result = trainer.train(resume_from_checkpoint=resume_point(store, STAGE, fp, output_dir, dist))
    final_dir = work_dir / f"{fp}-final"
    trainer.save_model(str(final_dir))  # every rank: ZeRO-3 gathers the weights
    if dist.rank != 0:
        return None
    tokenizer.save_pretrained(str(final_dir))
    return commit_outputs(
        store,
        cfg,
        fp,
        sft_set,
        final_dir,
        history=progress.history,
        summary={
            "global_step": result.global_step,
            "resumed_from_step": progress.resumed_from_step,
            "world_size": dist.world_size,
            "examples": len(examples),
            "truncated_examples": sum(e.truncated for e in examples),
            "train_rows": len(trainer.train_dataset),
            "trained_tokens_per_rank": meter.trained_tokens,
            "input_tokens_per_rank": meter.input_tokens,
            "train_seconds": round(result.metrics.get("train_runtime", 0.0), 2),
            "wall_seconds": round(time.perf_counter() - started, 2),
        },
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bolt.train.sft", description=__doc__)
    parser.add_argument("--config", required=True, help="Pipeline config (YAML).")
    parser.add_argument(
        "--set", action="append", default=[], help="Dotted override, e.g. sft.max_steps=4."
    )
    parser.add_argument("--sft-set", required=True, help="Fingerprint of the filter stage output.")
    parser.add_argument(
        "--work-dir",
        default=os.environ.get("BOLT_TRAIN_DIR", "./train-work"),
        help="Local scratch for checkpoints and the final model (env BOLT_TRAIN_DIR).",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    cfg = load_config(args.config, args.set)
    store = ArtifactStore.from_config(cfg.storage)
    manifest = train(cfg, store.require("filter", args.sft_set), Path(args.work_dir))
    if manifest is not None:
        print(f"sft: committed {store.uri(STAGE, manifest.fingerprint)}", flush=True)


if __name__ == "__main__":
    main()
