"""Stage 3's loop, one plain ``for`` over iterations for every ``online.algorithm``
(``flows/online.py`` holds DPO's step and dispatches), and the steps of the other two:

- GRPO (RLMT): prompts -> a group of samples per prompt (the policy's engine, n = the
  group size) -> strict-mode scores on the response only -> groups with advantages ->
  the GRPO job (k3 KL to the reference) -> the next policy;
- DRIFT: dissatisfaction rows -> the policy's revision of each dissatisfying turn ->
  pairs (revision chosen, real turn rejected, original prompt) -> reference log-probs ->
  DPO with the NLL term -> the next policy.

With ``online.eval_after_iteration`` the loop evaluates the SFT model and every
iteration's policy and draws the trajectory (SFT vs each iteration); GRPO's
``keep_best_by`` then returns the iteration with the best headline number of that
benchmark (the reward-hacking guard) instead of the last one. A model is evaluated just
after the next iteration has sampled from it, so its answers come from the engine that
sampling started (a start per model saved: minutes for a tensor-parallel 70B).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from prefect import get_run_logger
from prefect.exceptions import MissingContextError

from bolt.config import PipelineConfig, ReferencePolicy
from bolt.evals.trajectory import best_point, run_trajectory, trajectory_points
from bolt.online.grpo_data import grpo_config
from bolt.resources import POOL
from bolt.store import ArtifactStore, Manifest, local_model_dir
from bolt.train.fingerprints import MODEL_DIR
from tasks.drift import choose_feedback, make_drift_pairs, sample_revisions
from tasks.grpo import make_groups, score_groups, train_grpo
from tasks.online import choose_prompts, reference_logps, sample_policy, train_policy
from tasks.reporting import report_stage

# (model folder, label) -> its quick evaluation; None when iterations are not evaluated.
Evaluate = Callable[[str, str], Manifest] | None
# Called by a step once its samples are drawn (the loop's quick evaluations run then).
Sampled = Callable[[], None]
# (iteration, policy id, policy folder, SFT id, sampled) -> the iteration's policy manifest.
Step = Callable[[int, str, str, str, Sampled], Manifest]


def _logger():
    """The flow run's logger; the module's outside a run (the loop called directly)."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(__name__)


def reference_id(cfg: PipelineConfig, sft_id: str, policy_id: str) -> str:
    """The reference model of an iteration (``online.reference``): the SFT model or the
    policy it starts from."""
    return sft_id if cfg.online.reference == ReferencePolicy.sft else policy_id


def grpo_step(cfg: PipelineConfig) -> Step:
    sampling_cfg = grpo_config(cfg)  # n = the group size

    def step(
        iteration: int, policy_id: str, policy_dir: str, sft_id: str, sampled: Sampled
    ) -> Manifest:
        prompts = choose_prompts(cfg, iteration)
        samples = sample_policy(sampling_cfg, prompts, policy_id, policy_dir)
        sampled()
        scores = score_groups(cfg, samples, prompts)
        groups = make_groups(cfg, scores, prompts, iteration)
        _logger().info(
            "grpo iteration %s: %s samples, %s flat groups, %s malformed, mean reward %s",
            iteration,
            groups.counts.get("samples"),
            groups.counts.get("flat_groups"),
            scores.counts.get("malformed_thinking"),
            groups.stats.get("mean_reward"),
        )
        return train_grpo(cfg, iteration, groups, policy_id, reference_id(cfg, sft_id, policy_id))

    return step


def drift_step(cfg: PipelineConfig) -> Step:
    def step(
        iteration: int, policy_id: str, policy_dir: str, sft_id: str, sampled: Sampled
    ) -> Manifest:
        feedback = choose_feedback(cfg, iteration)
        samples = sample_revisions(cfg, feedback, policy_id, policy_dir)
        sampled()
        pairs = make_drift_pairs(cfg, samples, feedback, iteration)
        _logger().info(
            "drift iteration %s: %s rows (%s rejected), %s pairs, skipped %s",
            iteration,
            feedback.counts.get("rows"),
            feedback.counts.get("rejected"),
            pairs.counts.get("pairs"),
            {k: v for k, v in pairs.counts.items() if k.startswith("skipped.")},
        )
        reference = reference_logps(cfg, pairs, reference_id(cfg, sft_id, policy_id))
        return train_policy(cfg, iteration, pairs, reference, policy_id)

    return step


def run_iterations(
    cfg: PipelineConfig, sft: Manifest, step: Step, evaluate: Evaluate, model_cache: Path
) -> Manifest:
    """``online.iterations`` rounds of ``step`` from the SFT model, each model evaluated
    when ``evaluate`` is given; returns the kept policy (see the module docstring)."""
    store = ArtifactStore.from_config(cfg.storage)
    algorithm = cfg.online.algorithm.value
    sft_id = f"{sft.stage}/{sft.fingerprint}"
    sft_dir = local_model_dir(store, sft, MODEL_DIR, model_cache)
    evaluations: list[tuple[str, Manifest]] = []
    waiting = [(sft_dir, "SFT")] if evaluate else []

    def evaluate_waiting() -> None:
        while evaluate and waiting:
            model_dir, label = waiting.pop(0)
            evaluations.append((label, evaluate(model_dir, label)))

    policies: list[Manifest] = []
    policy_id, policy_dir = sft_id, sft_dir
    for iteration in range(1, cfg.online.iterations + 1):
        policy = step(iteration, policy_id, policy_dir, sft_id, evaluate_waiting)
        evaluate_waiting()  # a step that never calls it still gets its evaluations
        policies.append(policy)
        policy_id = f"{policy.stage}/{policy.fingerprint}"
        policy_dir = local_model_dir(store, policy, MODEL_DIR, model_cache)
        _logger().info(
            "%s iteration %s: loss %s -> %s, policy %s",
            algorithm,
            iteration,
            policy.stats.get("first_loss"),
            policy.stats.get("final_loss"),
            store.uri(policy.stage, policy.fingerprint),
        )
        report_stage(store, policy, cfg.name)
        if evaluate:
            waiting.append((policy_dir, f"{algorithm.upper()}-{iteration}"))
    evaluate_waiting()  # the last policy: no iteration samples from it
    POOL.release()
    if evaluations:
        trajectory = run_trajectory(store, evaluations)
        _logger().info(
            "%s trajectory: %s", algorithm, store.uri(trajectory.stage, trajectory.fingerprint)
        )
    return kept_policy(cfg, evaluations, policies) if policies else sft


def kept_policy(
    cfg: PipelineConfig, evaluations: list[tuple[str, Manifest]], policies: list[Manifest]
) -> Manifest:
    """The last policy, or with ``online.grpo.keep_best_by`` the iteration whose policy
    has that benchmark's best headline number (the SFT model is not a candidate)."""
    keep = cfg.online.grpo_settings.keep_best_by if cfg.online.algorithm == "grpo" else None
    if keep is None or not evaluations:
        return policies[-1]
    best = best_point(trajectory_points(evaluations)[1:], keep.value)
    if best is None:
        _logger().warning("no iteration has a %s headline: keeping the last", keep)
        return policies[-1]
    _logger().info("keeping iteration %s by %s", best + 1, keep)
    return policies[best]
