"""The reference model's log-probs of one iteration's pairs (BOLT §3.3), in a pass of
their own before DPO trains: the trainer then holds only the policy in memory.

Runs as a job, through the same launchers as training (``bolt.train.stage``)::

    RANK=0 WORLD_SIZE=1 LOCAL_RANK=0 python -m bolt.train.reference --config run.yaml \\
        --pairs <pairs fp> --reference-model sft/<fp>

It reads the pairs from the store, fetches the reference model from the store by its id
(``sft/<fp>``, ``online-policy/<fp>`` or ``catalog/<name>``) into its own scratch, scores
every pair on ``compute.device`` and commits the log-probs; only world rank 0 scores (a
forward pass over a few thousand pairs needs no data parallelism), the other ranks exit.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bolt.config import PipelineConfig
from bolt.fingerprint import fingerprint
from bolt.records import PreferencePair
from bolt.stages import Stage
from bolt.store import ArtifactStore, Manifest
from bolt.train.entrypoint import job_parser, run_entrypoint
from bolt.train.model_ref import fetch_model
from bolt.train.modeling import load_model, pad_token_id
from bolt.train.preference_data import ReferenceLogps, reference_logps, tokenize_pair
from bolt.train.trainer import Dist

CODE_VERSION = "1"
# Pairs per forward pass of the reference model (two sequences each).
REFERENCE_BATCH = 4


def reference_fingerprint(cfg: PipelineConfig, pairs_fp: str, reference_id: str) -> str:
    """``reference_id`` names the reference model as a policy id names a policy
    (``sft/<fp>`` or ``online-policy/<fp>``)."""
    return fingerprint(
        Stage.online_reference,
        {"max_length": cfg.online.max_length, "precision": cfg.online.precision},
        upstream={"pairs": pairs_fp, "reference_model": reference_id},
        code_version=CODE_VERSION,
    )


def run_reference(
    cfg: PipelineConfig,
    store: ArtifactStore,
    pairs: Manifest,
    reference_id: str,
    reference_dir: str,
) -> Manifest:
    """The log-probs of every pair under the model in ``reference_dir`` (the model
    ``reference_id`` names), once, committed; a stored result is returned as it is."""
    from transformers import AutoTokenizer

    stage = Stage.online_reference
    fp = reference_fingerprint(cfg, pairs.fingerprint, reference_id)
    if (done := store.manifest(stage, fp)) is not None:
        return done
    started = time.perf_counter()
    records = list(store.read_records(pairs, PreferencePair))
    tokenizer = AutoTokenizer.from_pretrained(reference_dir)
    tokenized = [tokenize_pair(tokenizer, r, cfg.online.max_length) for r in records]
    model = load_model(reference_dir, cfg.online.precision, cfg.compute.device)
    logps = reference_logps(model, tokenized, pad_token_id(tokenizer), REFERENCE_BATCH)
    rows = [
        ReferenceLogps(prompt_id=r.prompt_id, chosen_logp=c, rejected_logp=j)
        for r, (c, j) in zip(records, logps, strict=True)
    ]
    return store.commit(
        Manifest(
            stage=stage,
            fingerprint=fp,
            code_version=CODE_VERSION,
            config={"max_length": cfg.online.max_length, "precision": str(cfg.online.precision)},
            upstream={"pairs": pairs.fingerprint, "reference_model": reference_id},
            shards=[store.write_shard(stage, fp, 0, rows)],
            counts={"pairs": len(rows)},
            timings={"seconds": round(time.perf_counter() - started, 3)},
        )
    )


def run_in_job(
    cfg: PipelineConfig, store: ArtifactStore, pairs_fp: str, reference_id: str, work_dir: Path
) -> Manifest | None:
    """The job's work on this rank: world rank 0 fetches the model and scores."""
    if Dist.from_env().rank != 0:
        return None
    pairs = store.require(Stage.online_pairs, pairs_fp)
    fp = reference_fingerprint(cfg, pairs_fp, reference_id)
    if (done := store.manifest(Stage.online_reference, fp)) is not None:
        return done
    reference_dir = fetch_model(cfg, store, reference_id, work_dir)
    return run_reference(cfg, store, pairs, reference_id, reference_dir)


def _run(
    cfg: PipelineConfig, store: ArtifactStore, args: argparse.Namespace, work_dir: Path
) -> Manifest | None:
    return run_in_job(cfg, store, args.pairs, args.reference_model, work_dir)


def main(argv: list[str] | None = None) -> None:
    parser = job_parser("python -m bolt.train.reference", __doc__)
    parser.add_argument("--pairs", required=True, help="Fingerprint of the iteration's pairs.")
    parser.add_argument(
        "--reference-model",
        required=True,
        help="Id of the reference model: sft/<fp>, online-policy/<fp> or catalog/<name>.",
    )
    run_entrypoint(parser, _run, "reference", argv)


if __name__ == "__main__":
    main()
