"""RLMT's GRPO (Bhaskar et al., 2025, arXiv 2509.20357): the training job of one online
iteration, run like ``bolt.train.dpo`` (same launchers, DeepSpeed plumbing, store
checkpoints and resume)::

    RANK=0 WORLD_SIZE=1 LOCAL_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=29500 \\
        python -m bolt.train.grpo --config run.yaml --iteration 1 --policy sft/<fp> \\
        --reference-model sft/<fp> --groups <fp> --fingerprint <fp>

It reads the iteration's groups (samples with their group-relative advantages, from
``bolt.online.grpo_data``), fetches the initial policy and the reference model from the
store by id, computes their per-token log-probs of every sample once (one model in
memory at a time, before the trainer exists), then trains the policy with the loss of
``bolt.train.grpo_loss`` on the HF Trainer helpers every BOLT trainer shares, uploads
every checkpoint, resumes from the store's last complete one and commits the policy.

Why not TRL's ``GRPOTrainer``: it generates the completions itself, inside
``_prepare_inputs`` (``_generate_and_score_completions``: model.generate or its own vLLM),
calls the reward functions there and computes the advantages there; there is no public
way to hand it stored completions or advantages. BOLT samples with its own engines (the
pool, vLLM-CPU, served endpoints), scores with its reward backends and stores every
sample, score and advantage content-addressed, so a rerun or a relaunch after SIGKILL
recomputes nothing; TRL's trainer also regenerates its buffered batch on resume (its
``_buffered_inputs`` is None then), so resumed losses would not equal an uninterrupted
run's. The loss here is TRL's ``grpo``/``dr_grpo`` loss, term for term, on our trainer.
"""

from __future__ import annotations

import argparse
import gc
import time
from pathlib import Path
from typing import Any

from bolt.config import PipelineConfig
from bolt.records import GroupSample
from bolt.stages import Stage
from bolt.store import ArtifactStore, Manifest
from bolt.train.entrypoint import policy_job_parser, run_entrypoint
from bolt.train.fingerprints import MODEL_DIR, POLICY_CODE_VERSION, grpo_policy_fingerprint
from bolt.train.grpo_batches import (
    TokenizedSample,
    dataset_rows,
    make_collator,
    sample_token_logps,
    tokenize_sample,
)
from bolt.train.job import TrainJob
from bolt.train.model_ref import fetch_model
from bolt.train.modeling import load_model, pad_token_id
from bolt.train.progress import StepMeans, logged_fields, progress_callback
from bolt.train.trainer import Dist, store_callback, train_and_save, trainer_arguments

GRPO_MODULE = "bolt.train.grpo"
# Samples per forward pass of the log-prob pre-pass.
LOGP_BATCH = 4


def grpo_job(
    cfg: PipelineConfig, iteration: int, groups_fp: str, policy_id: str, reference_id: str
) -> TrainJob:
    """One iteration's GRPO job, for ``bolt.train.stage.train_stage``."""
    fp = grpo_policy_fingerprint(cfg, groups_fp, policy_id, reference_id, iteration)
    args = (
        "--iteration", str(iteration),
        "--policy", policy_id,
        "--reference-model", reference_id,
        "--groups", groups_fp,
        "--fingerprint", fp,
    )  # fmt: skip
    return TrainJob(Stage.online_policy, fp, GRPO_MODULE, args, cfg.name, section="online")


def grpo_trainer_class():
    """A Trainer whose loss is GRPO's on stored samples (built lazily: importing this
    module needs no transformers)."""
    from transformers import Trainer

    from bolt.train.grpo_loss import grpo_loss, per_token_logps

    class StoredSamplesGrpoTrainer(Trainer):
        def __init__(self, *args, settings, max_tokens: int, **kwargs):
            super().__init__(*args, **kwargs)
            # The loss is a mean per batch: the trainer divides it by the accumulation steps.
            self.model_accepts_loss_kwargs = False
            self.settings, self.max_tokens = settings, max_tokens
            self._means = StepMeans()  # the mean k3 KL and clip share since the last log

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            logits = model(
                input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]
            ).logits
            logps, mask = per_token_logps(logits, inputs["labels"], inputs["loss_mask"])
            ref = inputs.get("ref_logps")
            out = grpo_loss(
                logps,
                inputs["old_logps"].to(logps),
                ref.to(logps) if ref is not None else None,
                inputs["advantages"].to(logps),
                mask,
                kl_coef=self.settings.kl_coef,
                epsilon=self.settings.clip_epsilon,
                aggregation=self.settings.loss_aggregation,
                max_tokens=self.max_tokens,
            )
            self._means.add("kl", [out.kl.item()])
            self._means.add("clip_fraction", [out.clip_fraction.item()])
            return (out.loss, {"logits": logits}) if return_outputs else out.loss

        def log(self, logs: dict[str, float], *args, **kwargs) -> None:
            self._means.drain_into(logs)
            super().log(logs, *args, **kwargs)

    return StoredSamplesGrpoTrainer


def grpo_progress():
    return progress_callback(logged_fields("kl", "clip_fraction"))


def _free(model) -> None:
    import torch

    del model
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def logps_of(
    cfg: PipelineConfig, store: ArtifactStore, ident: str, work_dir: Path, samples, pad: int
) -> list[list[float]]:
    """Per-token log-probs of ``samples`` under the model ``ident`` (fetched, used, freed)."""
    model = load_model(
        fetch_model(cfg, store, ident, work_dir), cfg.online.precision, cfg.compute.device
    )
    try:
        return sample_token_logps(model, samples, pad, LOGP_BATCH)
    finally:
        _free(model)


def prepass(
    cfg: PipelineConfig,
    store: ArtifactStore,
    ids: tuple[str, str],
    samples: list[TokenizedSample],
    pad: int,
    work_dir: Path,
) -> tuple[list[list[float]], list[list[float]] | None]:
    """The sampling policy's and (when the KL term is on) the reference's log-probs;
    ``ids`` is (initial policy, reference model): one pass when they are the same."""
    policy_id, reference_id = ids
    old = logps_of(cfg, store, policy_id, work_dir, samples, pad)
    if cfg.online.grpo_settings.kl_coef <= 0:
        return old, None
    if reference_id == policy_id:
        return old, old
    return old, logps_of(cfg, store, reference_id, work_dir, samples, pad)


def train(
    cfg: PipelineConfig,
    fp: str,
    iteration: int,
    ids: tuple[str, str],
    groups: Manifest,
    work_dir: Path,
) -> Manifest | None:
    """Train one iteration's GRPO policy on every rank; world rank 0 commits it.
    ``ids`` is (initial policy, reference model), each ``sft/<fp>``,
    ``online-policy/<fp>`` or ``catalog/<name>``."""
    from transformers import AutoTokenizer

    store, dist = ArtifactStore.from_config(cfg.storage), Dist.from_env()
    if (done := store.manifest(Stage.online_policy, fp)) is not None:
        return done
    started = time.perf_counter()
    records = list(store.read_records(groups, GroupSample))
    if not records:
        raise ValueError(f"iteration {iteration}: the groups {groups.fingerprint} are empty")
    policy_dir = fetch_model(cfg, store, ids[0], work_dir)
    tokenizer = AutoTokenizer.from_pretrained(policy_dir)
    pad = pad_token_id(tokenizer)
    samples = [tokenize_sample(tokenizer, r, cfg.online.max_length) for r in records]
    # Before the trainer's arguments: under ZeRO-3 a model loaded after them is partitioned.
    old, ref = prepass(cfg, store, ids, samples, pad, work_dir)
    args = trainer_arguments(cfg.online, cfg.compute.device, work_dir / fp, dist)
    model = load_model(policy_dir, cfg.online.precision, cfg.compute.device)
    progress = grpo_progress()
    import datasets

    trainer = grpo_trainer_class()(
        model=model,
        args=args,
        train_dataset=datasets.Dataset.from_list(dataset_rows(samples, old, ref)),
        data_collator=make_collator(pad),
        processing_class=tokenizer,
        callbacks=[progress, store_callback(store, Stage.online_policy, fp, dist)],
        settings=cfg.online.grpo_settings,
        max_tokens=cfg.online.sampling.max_new_tokens,
    )
    final_dir = work_dir / f"{fp}-final"
    result = train_and_save(trainer, store, Stage.online_policy, fp, dist, final_dir)
    if result is None:
        return None
    summary = {
        "iteration": iteration,
        "global_step": result.global_step,
        "resumed_from_step": progress.resumed_from_step,
        "samples": len(records),
        "truncated_samples": sum(s.truncated for s in samples),
        "mean_reward": sum(r.reward for r in records) / len(records),
        "train_seconds": round(result.metrics.get("train_runtime", 0.0), 2),
        "wall_seconds": round(time.perf_counter() - started, 2),
    }
    return commit_policy(store, cfg, fp, groups, final_dir, progress.history, summary)


def commit_policy(
    store: ArtifactStore,
    cfg: PipelineConfig,
    fp: str,
    groups: Manifest,
    final_dir: Path,
    history: list[dict[str, Any]],
    summary: dict[str, Any],
) -> Manifest:
    """Upload the policy and its metrics; commit last."""
    stage = Stage.online_policy
    files = store.put_dir(stage, fp, MODEL_DIR, final_dir)
    files.append(store.put_json(stage, fp, "metrics.json", {"summary": summary, "log": history}))
    last = history[-1] if history else {}
    return store.commit(
        Manifest(
            stage=stage,
            fingerprint=fp,
            code_version=POLICY_CODE_VERSION,
            config={
                "online": cfg.online.model_dump(mode="json"),
                "iteration": summary["iteration"],
            },
            upstream={"groups": groups.fingerprint},
            files=files,
            counts={"samples": summary["samples"], "steps": summary["global_step"]},
            timings={k: summary[k] for k in ("train_seconds", "wall_seconds")},
            stats={
                "algorithm": "grpo",
                "first_loss": history[0]["loss"] if history else None,
                "final_loss": last.get("loss"),
                "final_kl": last.get("kl"),
                "mean_reward": summary["mean_reward"],
                "resumed_from_step": summary["resumed_from_step"],
                "loss_curve": [[r["step"], r["loss"]] for r in history],
                "kl_curve": [[r["step"], r["kl"]] for r in history],
            },
        )
    )


def _train(
    cfg: PipelineConfig, store: ArtifactStore, args: argparse.Namespace, work_dir: Path
) -> Manifest | None:
    groups = store.require(Stage.online_groups, args.groups)
    ids = (args.policy, args.reference_model)
    return train(cfg, args.fingerprint, args.iteration, ids, groups, work_dir)


def main(argv: list[str] | None = None) -> None:
    parser = policy_job_parser("python -m bolt.train.grpo", __doc__)
    parser.add_argument(
        "--reference-model",
        required=True,
        help="Id of the KL's reference model (same forms as --policy).",
    )
    parser.add_argument("--groups", required=True, help="Fingerprint of the iteration's groups.")
    parser.add_argument("--fingerprint", required=True, help="Fingerprint of the policy stage.")
    run_entrypoint(parser, _train, "grpo", argv)


if __name__ == "__main__":
    main()
