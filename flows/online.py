"""Stage 3 as a Prefect flow: online DPO (BOLT §3.3), the loop a plain ``for``.

Each iteration samples from the current policy, scores, pairs, caches the reference
log-probs, trains the next policy with DPO and evaluates it quickly; every sub-step is
a cached task keyed by its fingerprint, so a rerun resumes at the first unfinished one.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner

from bolt.config import OnlineAlgorithm, PipelineConfig, ReferencePolicy
from bolt.resources import POOL
from bolt.store import ArtifactStore, Manifest, local_model_dir
from bolt.train.fingerprints import MODEL_DIR
from flows.evaluation import eval_flow
from flows.online_methods import drift_step, grpo_step, run_iterations
from flows.sft import sft_flow
from tasks.online import (
    choose_prompts,
    make_pairs,
    reference_logps,
    sample_policy,
    score_samples,
    train_policy,
)
from tasks.reporting import report_stage

MODEL_CACHE = Path(tempfile.gettempdir()) / "bolt-online-models"


def quick_eval_config(cfg: PipelineConfig) -> PipelineConfig:
    """The eval section with the per-iteration item cap (a trajectory point, not a report)."""
    items = cfg.online.eval_items_per_iteration or cfg.eval.max_items
    return cfg.model_copy(update={"eval": cfg.eval.model_copy(update={"max_items": items})})


def _evaluator(cfg: PipelineConfig):
    """The quick evaluation of a model folder under a label, if iterations are evaluated."""
    if not cfg.online.eval_after_iteration:
        return None
    return lambda model_dir, label: eval_flow(quick_eval_config(cfg), model_dir, label)


@flow(
    name="online",
    flow_run_name="{cfg.name}-online",
    task_runner=ThreadPoolTaskRunner(max_workers=1),
)
def online_flow(cfg: PipelineConfig, sft: Manifest | None = None) -> Manifest:
    """Run ``online.iterations`` rounds from the SFT model; returns the last policy's manifest."""
    store = ArtifactStore.from_config(cfg.storage)
    logger = get_run_logger()
    sft = sft or sft_flow(cfg)
    # The one dispatch on online.algorithm: GRPO and DRIFT run their loops
    # (flows/online_methods.py); DPO is the loop below.
    evaluate = _evaluator(cfg)
    match cfg.online.algorithm:
        case OnlineAlgorithm.grpo:
            return run_iterations(cfg, sft, grpo_step(cfg), evaluate, MODEL_CACHE)
        case OnlineAlgorithm.drift:
            return run_iterations(cfg, sft, drift_step(cfg), evaluate, MODEL_CACHE)
    sft_id = f"{sft.stage}/{sft.fingerprint}"
    sft_dir = local_model_dir(store, sft, MODEL_DIR, MODEL_CACHE)
    policy_id, policy_dir, policy = sft_id, sft_dir, sft
    for iteration in range(1, cfg.online.iterations + 1):
        prompts = choose_prompts(cfg, iteration)
        samples = sample_policy(cfg, prompts, policy_id, policy_dir)
        scores = score_samples(cfg, samples, prompts)
        pairs = make_pairs(cfg, scores, prompts, iteration)
        # The reference pass and DPO are jobs: they take the models by store id, not folder.
        reference_id = sft_id if cfg.online.reference == ReferencePolicy.sft else policy_id
        reference = reference_logps(cfg, pairs, reference_id)
        policy = train_policy(cfg, iteration, pairs, reference, policy_id)
        policy_id = f"{policy.stage}/{policy.fingerprint}"
        policy_dir = local_model_dir(store, policy, MODEL_DIR, MODEL_CACHE)
        logger.info(
            "online iteration %s: %s pairs, skipped %s, DPO loss %s -> %s, "
            "reward margin %s, policy %s",
            iteration,
            pairs.counts.get("pairs"),
            {k: v for k, v in pairs.counts.items() if k.startswith("skipped.")},
            policy.stats.get("first_loss"),
            policy.stats.get("final_loss"),
            policy.stats.get("final_reward_margin"),
            store.uri(policy.stage, policy.fingerprint),
        )
        report_stage(store, policy, cfg.name)
        if cfg.online.eval_after_iteration:
            POOL.release()  # the evaluation starts its own engine on the new policy
            eval_flow(quick_eval_config(cfg), policy_dir, f"online-{iteration}")
    POOL.release()
    return policy
