"""Stage 3 as a Prefect flow: online DPO (BOLT §3.3), GRPO or DRIFT, the loop a plain
``for`` (``flows.online_methods.run_iterations``).

A DPO iteration samples from the current policy, scores, pairs, caches the reference
log-probs and trains the next policy with DPO; every sub-step is a cached task keyed by
its fingerprint, so a rerun resumes at the first unfinished one.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner

from bolt.config import OnlineAlgorithm, PipelineConfig
from bolt.store import Manifest
from flows.evaluation import eval_flow
from flows.online_methods import (
    Sampled,
    Step,
    drift_step,
    grpo_step,
    reference_id,
    run_iterations,
)
from flows.sft import sft_flow
from tasks.online import (
    choose_prompts,
    make_pairs,
    reference_logps,
    sample_policy,
    score_samples,
    train_policy,
)
from tasks.runtime import with_task_runner

MODEL_CACHE = Path(tempfile.gettempdir()) / "bolt-online-models"


def quick_eval_config(cfg: PipelineConfig) -> PipelineConfig:
    """The eval section with the per-iteration item cap (a trajectory point, not a report)."""
    items = cfg.online.eval_items_per_iteration or cfg.eval.max_items
    return cfg.model_copy(update={"eval": cfg.eval.model_copy(update={"max_items": items})})


def _evaluator(cfg: PipelineConfig):
    """The quick evaluation of a model folder under a label, if iterations are evaluated."""
    if not cfg.online.eval_after_iteration:
        return None
    quick = quick_eval_config(cfg)
    return lambda model_dir, label: with_task_runner(eval_flow, quick)(quick, model_dir, label)


def dpo_step(cfg: PipelineConfig) -> Step:
    """BOLT's iteration: sample, score, pair, the reference log-probs, DPO."""

    def step(
        iteration: int, policy_id: str, policy_dir: str, sft_id: str, sampled: Sampled
    ) -> Manifest:
        prompts = choose_prompts(cfg, iteration)
        samples = sample_policy(cfg, prompts, policy_id, policy_dir)
        sampled()
        scores = score_samples(cfg, samples, prompts)
        pairs = make_pairs(cfg, scores, prompts, iteration)
        # The reference pass and DPO are jobs: they take the models by store id, not folder.
        reference = reference_logps(cfg, pairs, reference_id(cfg, sft_id, policy_id))
        policy = train_policy(cfg, iteration, pairs, reference, policy_id)
        get_run_logger().info(
            "online iteration %s: %s pairs, skipped %s, DPO loss %s -> %s, reward margin %s",
            iteration,
            pairs.counts.get("pairs"),
            {k: v for k, v in pairs.counts.items() if k.startswith("skipped.")},
            policy.stats.get("first_loss"),
            policy.stats.get("final_loss"),
            policy.stats.get("final_reward_margin"),
        )
        return policy

    return step


STEPS = {
    OnlineAlgorithm.dpo: dpo_step,
    OnlineAlgorithm.grpo: grpo_step,
    OnlineAlgorithm.drift: drift_step,
}


@flow(
    name="online",
    flow_run_name="{cfg.name}-online",
    task_runner=ThreadPoolTaskRunner(max_workers=1),
)
def online_flow(cfg: PipelineConfig, sft: Manifest | None = None) -> Manifest:
    """Run ``online.iterations`` rounds of ``online.algorithm`` from the SFT model;
    returns the policy the loop keeps (the last, or GRPO's ``keep_best_by`` pick)."""
    sft = sft or sft_flow(cfg)
    step = STEPS[cfg.online.algorithm](cfg)
    return run_iterations(cfg, sft, step, _evaluator(cfg), MODEL_CACHE)
