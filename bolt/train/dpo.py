"""Stage 3, online DPO (BOLT §3.3): the training job's entrypoint for one iteration.

Runs inside the job like ``bolt.train.sft`` (same launchers, same DeepSpeed plumbing)::

    RANK=0 WORLD_SIZE=1 LOCAL_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=29500 \\
        python -m bolt.train.dpo --config run.yaml --iteration 1 \\
        --policy sft/<fp> --pairs <fp> --reference <fp> --fingerprint <fp>

It fetches the initial policy from the store by its id (``sft/<fp>``,
``online-policy/<fp>`` or ``catalog/<name>``) into its own scratch, reads the iteration's
pairs and the reference log-probs cached for them (joined by prompt id), so only the
policy is in memory; it trains with the loss of ``bolt.train.dpo_loss``, uploads every
checkpoint to the store, resumes from the store's last complete checkpoint, and on rank
0 stores the policy, the loss and reward-margin curves and commits the manifest.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from bolt.config import PipelineConfig
from bolt.records import PreferencePair
from bolt.stages import Stage
from bolt.store import ArtifactStore, Manifest
from bolt.train.entrypoint import policy_job_parser, run_entrypoint
from bolt.train.fingerprints import MODEL_DIR, POLICY_CODE_VERSION, rpo_alpha
from bolt.train.model_ref import fetch_model
from bolt.train.modeling import load_model, pad_token_id
from bolt.train.preference_data import (
    ReferenceLogps,
    TokenizedPair,
    collate_pairs,
    join_reference,
    tokenize_pair,
)
from bolt.train.progress import StepMeans, logged_fields, progress_callback
from bolt.train.trainer import Dist, store_callback, train_and_save, trainer_arguments


def dataset_rows(pairs: list[TokenizedPair], refs: list[ReferenceLogps]) -> list[dict[str, Any]]:
    """Training rows of the tokenized pairs and their reference log-probs, already joined
    by id (``join_reference``) into the same order."""
    return [
        {
            "chosen_ids": p.chosen_ids,
            "chosen_labels": p.chosen_labels,
            "rejected_ids": p.rejected_ids,
            "rejected_labels": p.rejected_labels,
            "ref_chosen_logp": r.chosen_logp,
            "ref_rejected_logp": r.rejected_logp,
        }
        for p, r in zip(pairs, refs, strict=True)
    ]


def make_collator(pad_token_id: int):
    import torch

    def collate(rows: list[dict[str, Any]]) -> dict[str, Any]:
        pairs = [
            TokenizedPair(
                r["chosen_ids"], r["chosen_labels"], r["rejected_ids"], r["rejected_labels"], False
            )
            for r in rows
        ]
        batch = collate_pairs(pairs, pad_token_id)
        batch["ref_chosen_logps"] = torch.tensor([r["ref_chosen_logp"] for r in rows])
        batch["ref_rejected_logps"] = torch.tensor([r["ref_rejected_logp"] for r in rows])
        return batch

    return collate


def dpo_trainer_class():
    """A Trainer whose loss is DPO on cached reference log-probs (built lazily: importing
    this module needs no transformers)."""
    from transformers import Trainer

    from bolt.train.dpo_loss import dpo_loss, dpo_nll_loss, sequence_logps

    class CachedReferenceDpoTrainer(Trainer):
        def __init__(self, *args, beta: float, loss_type, rpo_alpha: float = 0.0, **kwargs):
            super().__init__(*args, **kwargs)
            # The loss is a mean over pairs, not a sum over tokens for the trainer to
            # normalise: this makes the trainer divide it by the accumulation steps.
            self.model_accepts_loss_kwargs = False
            self.beta, self.loss_type = beta, loss_type
            self.rpo_alpha = rpo_alpha  # DRIFT's NLL term on the chosen side (0: plain DPO)
            self._means = StepMeans()  # the implicit-reward margin since the last log line

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            logits = model(
                input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]
            ).logits
            logps = sequence_logps(logits, inputs["labels"], inputs["loss_mask"])
            half = logps.shape[0] // 2
            out = dpo_loss(
                logps[:half],
                logps[half:],
                inputs["ref_chosen_logps"].to(logps),
                inputs["ref_rejected_logps"].to(logps),
                beta=self.beta,
                loss_type=self.loss_type,
            )
            self._means.add("reward_margin", out.reward_margins.tolist())
            self._means.add("reward_accuracy", (out.reward_margins > 0).float().tolist())
            loss = out.losses.mean()
            if self.rpo_alpha:
                chosen_tokens = inputs["loss_mask"][:half, 1:].sum(dim=-1)
                loss = dpo_nll_loss(out.losses, logps[:half], chosen_tokens, self.rpo_alpha)
            return (loss, {"logits": logits}) if return_outputs else loss

        def log(self, logs: dict[str, float], *args, **kwargs) -> None:
            self._means.drain_into(logs)
            super().log(logs, *args, **kwargs)

    return CachedReferenceDpoTrainer


def dpo_progress():
    """Progress lines with the loss and the implicit-reward margin and accuracy."""
    return progress_callback(logged_fields("reward_margin", "reward_accuracy"))


def train(
    cfg: PipelineConfig,
    fp: str,
    iteration: int,
    policy_id: str,
    pairs: Manifest,
    reference: Manifest,
    work_dir: Path,
) -> Manifest | None:
    """Train one iteration's policy on every rank; world rank 0 commits the manifest.

    ``policy_id`` names the initial policy (``sft/<fp>``, ``online-policy/<fp>``,
    ``catalog/<name>``); the job fetches it from the store into ``work_dir``."""
    from transformers import AutoTokenizer

    store, dist = ArtifactStore.from_config(cfg.storage), Dist.from_env()
    if (done := store.manifest(Stage.online_policy, fp)) is not None:
        return done
    started = time.perf_counter()
    records = list(store.read_records(pairs, PreferencePair))
    if not records:
        raise ValueError(f"iteration {iteration}: the pair set {pairs.fingerprint} is empty")
    refs = join_reference(
        records,
        list(store.read_records(reference, ReferenceLogps)),
        pairs.fingerprint,
        reference.fingerprint,
    )
    policy_dir = fetch_model(cfg, store, policy_id, work_dir)
    tokenizer = AutoTokenizer.from_pretrained(policy_dir)
    tokenized = [tokenize_pair(tokenizer, r, cfg.online.max_length) for r in records]
    # Before the model: ZeRO-3 init needs it.
    args = trainer_arguments(cfg.online, cfg.compute.device, work_dir / fp, dist)
    model = load_model(policy_dir, cfg.online.precision, cfg.compute.device)
    progress = dpo_progress()
    import datasets

    trainer = dpo_trainer_class()(
        model=model,
        args=args,
        train_dataset=datasets.Dataset.from_list(dataset_rows(tokenized, refs)),
        data_collator=make_collator(pad_token_id(tokenizer)),
        processing_class=tokenizer,
        callbacks=[progress, store_callback(store, Stage.online_policy, fp, dist)],
        beta=cfg.online.beta,
        loss_type=cfg.online.loss_type,
        rpo_alpha=rpo_alpha(cfg.online),
    )
    final_dir = work_dir / f"{fp}-final"
    result = train_and_save(trainer, store, Stage.online_policy, fp, dist, final_dir)
    if result is None:
        return None
    return commit_policy(
        store,
        cfg,
        fp,
        (pairs, reference),
        final_dir,
        history=progress.history,
        summary={
            "iteration": iteration,
            "global_step": result.global_step,
            "resumed_from_step": progress.resumed_from_step,
            "pairs": len(records),
            "truncated_pairs": sum(p.truncated for p in tokenized),
            "train_seconds": round(result.metrics.get("train_runtime", 0.0), 2),
            "wall_seconds": round(time.perf_counter() - started, 2),
        },
    )


def commit_policy(
    store: ArtifactStore,
    cfg: PipelineConfig,
    fp: str,
    upstream: tuple[Manifest, Manifest],
    final_dir: Path,
    history: list[dict[str, Any]],
    summary: dict[str, Any],
) -> Manifest:
    """Upload the policy and its metrics; commit last. ``upstream`` is (pairs, reference)."""
    pairs, reference = upstream
    stage = Stage.online_policy
    files = store.put_dir(stage, fp, MODEL_DIR, final_dir)
    files.append(store.put_json(stage, fp, "metrics.json", {"summary": summary, "log": history}))
    return store.commit(
        Manifest(
            stage=stage,
            fingerprint=fp,
            code_version=POLICY_CODE_VERSION,
            config={
                "online": cfg.online.model_dump(mode="json"),
                "iteration": summary["iteration"],
            },
            upstream={"pairs": pairs.fingerprint, "reference": reference.fingerprint},
            files=files,
            counts={"pairs": summary["pairs"], "steps": summary["global_step"]},
            timings={k: summary[k] for k in ("train_seconds", "wall_seconds")},
            stats={
                "first_loss": history[0]["loss"] if history else None,
                "final_loss": history[-1]["loss"] if history else None,
                "final_reward_margin": history[-1]["reward_margin"] if history else None,
                "resumed_from_step": summary["resumed_from_step"],
                "loss_curve": [[r["step"], r["loss"]] for r in history],
                "margin_curve": [[r["step"], r["reward_margin"]] for r in history],
            },
        )
    )


def _train(
    cfg: PipelineConfig, store: ArtifactStore, args: argparse.Namespace, work_dir: Path
) -> Manifest | None:
    return train(
        cfg,
        args.fingerprint,
        args.iteration,
        args.policy,
        store.require(Stage.online_pairs, args.pairs),
        store.require(Stage.online_reference, args.reference),
        work_dir,
    )


def main(argv: list[str] | None = None) -> None:
    parser = policy_job_parser("python -m bolt.train.dpo", __doc__)
    parser.add_argument("--pairs", required=True, help="Fingerprint of the iteration's pairs.")
    parser.add_argument("--reference", required=True, help="Fingerprint of its reference logps.")
    parser.add_argument("--fingerprint", required=True, help="Fingerprint of the policy stage.")
    run_entrypoint(parser, _train, "dpo", argv)


if __name__ == "__main__":
    main()
