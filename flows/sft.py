"""Stage 2 as a Prefect flow: LongCoT SFT on the filtered set (BOLT §3.2)."""

from __future__ import annotations

from prefect import flow, get_run_logger

from bolt.config import PipelineConfig
from bolt.store import ArtifactStore, Manifest
from flows.stages import filter_flow
from tasks.reporting import report_stage
from tasks.sft import train_sft


@flow(name="sft", flow_run_name="{cfg.name}-sft")
def sft_flow(cfg: PipelineConfig, sft_set: Manifest | None = None) -> Manifest:
    """Train the base model on the SFT set (made first when not given); the manifest
    names the final model, its metrics, loss curve and model card in the store."""
    sft_set = sft_set or filter_flow(cfg)
    manifest = train_sft(cfg, sft_set)
    get_run_logger().info(
        "sft: %s steps, loss %s -> %s, %s tokens/s",
        manifest.counts.get("steps"),
        manifest.stats.get("first_loss"),
        manifest.stats.get("final_loss"),
        manifest.stats.get("tokens_per_s"),
    )
    report_stage(ArtifactStore.from_config(cfg.storage), manifest, cfg.name)
    return manifest
