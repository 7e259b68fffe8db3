"""The command line every job entrypoint shares (``python -m bolt.train.sft``,
``bolt.train.dpo`` and ``bolt.train.reference``): the config and its overrides, a local
scratch folder, the line that says where the job runs and the line that names the
committed output."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path

from bolt.config import PipelineConfig
from bolt.config_loader import load_config
from bolt.store import ArtifactStore, Manifest
from bolt.tracking import configure_job

# (config, store, parsed arguments, scratch folder) -> the manifest on world rank 0.
Train = Callable[[PipelineConfig, ArtifactStore, argparse.Namespace, Path], Manifest | None]


def job_parser(prog: str, description: str | None) -> argparse.ArgumentParser:
    """The arguments every entrypoint takes; each adds the fingerprints of its inputs."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--config", required=True, help="Pipeline config (YAML).")
    parser.add_argument(
        "--set", action="append", default=[], help="Dotted override, e.g. sft.max_steps=4."
    )
    parser.add_argument(
        "--work-dir",
        default=os.environ.get("BOLT_TRAIN_DIR", "./train-work"),
        help="Local scratch for checkpoints and the final model (env BOLT_TRAIN_DIR).",
    )
    return parser


def policy_job_parser(prog: str, description: str | None) -> argparse.ArgumentParser:
    """``job_parser`` plus what every online training job names: its iteration and the
    policy it starts from (DPO, DRIFT, GRPO)."""
    parser = job_parser(prog, description)
    parser.add_argument("--iteration", type=int, required=True, help="Online iteration (1-based).")
    parser.add_argument(
        "--policy",
        required=True,
        help="Id of the initial policy: sft/<fp>, online-policy/<fp> or catalog/<name>.",
    )
    return parser


def run_entrypoint(
    parser: argparse.ArgumentParser, train: Train, label: str, argv: list[str] | None = None
) -> None:
    """Parse, load the config, train; rank 0 prints ``<label>: committed <uri>``."""
    args = parser.parse_args(argv)
    if os.environ.get("RANK", "0") == "0":
        # Where the job runs: its own folder, HOME and TMPDIR (the launchers' isolation).
        home, tmp = os.environ.get("HOME"), os.environ.get("TMPDIR")
        print(f"{label}: job in {Path.cwd()} (HOME {home}, TMPDIR {tmp})", flush=True)
    cfg = load_config(args.config, args.set)
    configure_job(cfg)  # the pipeline's tracking run, for the trainer's callback
    store = ArtifactStore.from_config(cfg.storage)
    manifest = train(cfg, store, args, Path(args.work_dir))
    if manifest is not None:
        print(f"{label}: committed {store.uri(manifest.stage, manifest.fingerprint)}", flush=True)
