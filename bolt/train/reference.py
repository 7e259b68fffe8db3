"""The reference model's log-probs of one iteration's pairs (BOLT §3.3), in a pass of
their own before DPO trains: the trainer then holds only the policy in memory.

It runs in the pipeline's process, not in a launched job, so it takes the accelerator
the way every in-process model does (``bolt.resources``): the live engines go first.
"""

from __future__ import annotations

import time

from bolt.config import PipelineConfig
from bolt.fingerprint import fingerprint
from bolt.records import PreferencePair
from bolt.resources import POOL
from bolt.stages import Stage
from bolt.store import ArtifactStore, Manifest
from bolt.train.modeling import load_model
from bolt.train.preference_data import ReferenceLogps, reference_logps, tokenize_pair

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
    """The reference model's log-probs of every pair, once, in a pass of its own."""
    from transformers import AutoTokenizer

    stage = Stage.online_reference
    fp = reference_fingerprint(cfg, pairs.fingerprint, reference_id)
    if (done := store.manifest(stage, fp)) is not None:
        return done
    started = time.perf_counter()
    records = list(store.read_records(pairs, PreferencePair))
    tokenizer = AutoTokenizer.from_pretrained(reference_dir)
    tokenized = [tokenize_pair(tokenizer, r, cfg.online.max_length) for r in records]
    # The policy's sampling engine and the reward models are done with this iteration:
    # the reference model gets their memory, and lives only as long as this pass.
    POOL.release()
    model = load_model(reference_dir, cfg.online.precision, cfg.compute.device)
    logps = reference_logps(model, tokenized, tokenizer.pad_token_id, REFERENCE_BATCH)
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
