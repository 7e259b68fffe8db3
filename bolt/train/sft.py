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
import time
from pathlib import Path
from typing import Any

from bolt.config import PipelineConfig
from bolt.records import SftExample
from bolt.stages import Stage
from bolt.store import ArtifactStore, Manifest
from bolt.train.data import (
    TokenizedExample,
    collate_packed,
    collate_padded,
    input_tokens,
    pack_examples,
    tokenize_with_labels,
    trained_tokens,
)
from bolt.train.entrypoint import job_parser, run_entrypoint
from bolt.train.fingerprints import sft_fingerprint
from bolt.train.modeling import load_model, pad_token_id
from bolt.train.outputs import commit_outputs
from bolt.train.progress import TokenMeter, progress_callback
from bolt.train.trainer import Dist, store_callback, train_and_save, trainer_arguments


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


def sft_progress(meter: TokenMeter, world_size: int):
    """Progress lines with the loss and the tokens/s measured on what was trained."""

    def fields(state, logs: dict[str, float]) -> dict[str, Any]:
        return {
            "epoch": round(state.epoch or 0.0, 4),
            "loss": logs["loss"],
            "learning_rate": logs.get("learning_rate"),
            "tokens_per_s": round(meter.rate(world_size), 1),
        }

    return progress_callback(fields, on_train_begin=meter.restart)


def train(cfg: PipelineConfig, sft_set: Manifest, work_dir: Path) -> Manifest | None:
    """Train on every rank; world rank 0 commits and returns the manifest."""
    from transformers import AutoTokenizer, Trainer

    from bolt.models import resolve_model

    store, dist = ArtifactStore.from_config(cfg.storage), Dist.from_env()
    fp = sft_fingerprint(cfg, sft_set.fingerprint)
    if (done := store.manifest(Stage.sft, fp)) is not None:
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
    # Before the model: ZeRO-3 init needs it. Length-grouped batches when not packing.
    args = trainer_arguments(
        cfg.sft,
        cfg.compute.device,
        work_dir / fp,
        dist,
        train_sampling_strategy="random" if cfg.sft.packing else "group_by_length",
        length_column_name="length",
    )
    model = load_model(model_dir, cfg.sft.precision, cfg.compute.device)
    meter = TokenMeter()
    progress = sft_progress(meter, dist.world_size)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=build_dataset(examples, cfg.sft.packing, cfg.sft.max_length),
        data_collator=make_collator(cfg.sft.packing, pad_token_id(tokenizer), meter),
        processing_class=tokenizer,
        callbacks=[progress, store_callback(store, Stage.sft, fp, dist)],
    )
    final_dir = work_dir / f"{fp}-final"
    result = train_and_save(trainer, store, Stage.sft, fp, dist, final_dir)
    if result is None:
        return None
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


def _train(
    cfg: PipelineConfig, store: ArtifactStore, args: argparse.Namespace, work_dir: Path
) -> Manifest | None:
    return train(cfg, store.require(Stage.filter, args.sft_set), work_dir)


def main(argv: list[str] | None = None) -> None:
    parser = job_parser("python -m bolt.train.sft", __doc__)
    parser.add_argument("--sft-set", required=True, help="Fingerprint of the filter stage output.")
    run_entrypoint(parser, _train, "sft", argv)


if __name__ == "__main__":
    main()
