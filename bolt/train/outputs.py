"""What an SFT run leaves in the store: the final model (with its model card), the
metrics (loss curve, tokens/s, steps), the loss curve as a PNG, and the manifest."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from bolt.config import PipelineConfig
from bolt.plots import curves
from bolt.stages import Stage
from bolt.store import ArtifactStore, Manifest
from bolt.train.fingerprints import MODEL_DIR, SFT_CODE_VERSION


def throughput(summary: dict[str, Any]) -> float:
    """Non-pad input tokens per second over all ranks."""
    seconds = summary.get("train_seconds") or 0.0
    total = summary.get("input_tokens_per_rank", 0) * summary.get("world_size", 1)
    return round(total / seconds, 1) if seconds else 0.0


def model_card(cfg: PipelineConfig, fp: str, sft_set: Manifest, summary: dict[str, Any]) -> str:
    sft = cfg.sft
    base = cfg.models.catalog[sft.base_model]
    source = base.hf_id or base.path or base.s3_uri or base.gguf_package
    return f"""---
base_model: {source}
tags: [bolt, longcot, sft]
---
# {cfg.name} LongCoT SFT (`{fp}`)

{sft.base_model} fine-tuned to answer with internal thoughts then an external response,
following BOLT: Bootstrap Long Chain-of-Thought in Language Models without Distillation
(Pang et al., 2025, arXiv 2502.03860, §3.2).

- data: SFT set `filter/{sft_set.fingerprint}`, {summary["examples"]} examples \
({summary["truncated_examples"]} truncated to {sft.max_length} tokens), packing {sft.packing}
- schedule: {sft.epochs} epochs, lr {sft.lr} {sft.scheduler}, warmup {sft.warmup_ratio}, \
{sft.optimizer}, weight decay {sft.weight_decay}
- batch: {sft.global_batch_size} sequences per step ({sft.micro_batch_size} per device, \
world size {summary["world_size"]}), precision {sft.precision}, DeepSpeed {sft.zero}
- trained: {summary["global_step"]} steps, final loss {summary.get("final_loss")}, \
{throughput(summary)} tokens/s
"""


def commit_outputs(
    store: ArtifactStore,
    cfg: PipelineConfig,
    fp: str,
    sft_set: Manifest,
    final_dir: Path,
    history: list[dict[str, Any]],
    summary: dict[str, Any],
) -> Manifest:
    """Upload the final model (multipart to S3), metrics, plot and card; commit last."""
    summary = {**summary, "final_loss": history[-1]["loss"] if history else None}
    (final_dir / "README.md").write_text(model_card(cfg, fp, sft_set, summary))
    files = store.put_dir(Stage.sft, fp, MODEL_DIR, final_dir)
    files.append(
        store.put_json(Stage.sft, fp, "metrics.json", {"summary": summary, "log": history})
    )
    draw = partial(
        curves,
        title=f"{cfg.name} SFT training loss",
        series={"train loss": [(r["step"], r["loss"]) for r in history]},
        xlabel="optimizer step",
        ylabel="loss",
    )
    files.append(store.put_plot(Stage.sft, fp, "loss.png", draw))
    return store.commit(
        Manifest(
            stage=Stage.sft,
            fingerprint=fp,
            code_version=SFT_CODE_VERSION,
            config={
                "sft": cfg.sft.model_dump(mode="json"),
                "compute": cfg.compute.model_dump(mode="json"),
            },
            upstream={"filter": sft_set.fingerprint},
            files=files,
            counts={
                "examples": summary["examples"],
                "truncated_examples": summary["truncated_examples"],
                "steps": summary["global_step"],
            },
            timings={
                "train_seconds": summary["train_seconds"],
                "wall_seconds": summary["wall_seconds"],
            },
            tokens={
                "trained": summary["trained_tokens_per_rank"] * summary["world_size"],
                "input": summary["input_tokens_per_rank"] * summary["world_size"],
            },
            stats={
                "final_loss": summary["final_loss"],
                "first_loss": history[0]["loss"] if history else None,
                "tokens_per_s": throughput(summary),
                "resumed_from_step": summary["resumed_from_step"],
                "world_size": summary["world_size"],
                "loss_curve": [[r["step"], r["loss"]] for r in history],
            },
        )
    )
