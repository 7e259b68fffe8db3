"""Stage 3's other algorithms (``online.algorithm``): RLMT's GRPO and DRIFT.

- GRPO (RLMT: Bhaskar et al., 2025, arXiv 2509.20357): the policy thinks, then answers; a
  group of samples per prompt is scored by a preference reward model on the response
  only, and trained with group-relative advantages and a k3 KL term to the reference.
- DRIFT (Wang et al., 2025, arXiv 2510.02341; github.com/cacayaya/DRIFT): DPO pairs
  anchored on real dissatisfying assistant turns (rejected), the chosen side the current
  policy's revision given the user's complaint; DPO with an NLL term on the chosen side.
"""

from __future__ import annotations

from pydantic import Field

from bolt.config.base import AFFECTS_OUTPUT_NOT, Strict
from bolt.config.data import QuerySource
from bolt.config.enums import BenchmarkName, GrpoLossAggregation

# DRIFT's gen-drift.py, the instruction after the user's feedback.
DRIFT_INSTRUCTION = (
    "Based on the user's latest feedback, please provide an improved response that "
    "addresses their concerns."
)


class GrpoConfig(Strict):
    """``online.algorithm: grpo``: RLMT's recipe (their grpo__llamabase__warm-start__think)."""

    group_size: int = Field(
        8, ge=2, description="Samples per prompt, the group of the advantages (RLMT: 8)."
    )
    kl_coef: float = Field(
        0.001,
        ge=0,
        description="Weight of the k3 (low-variance) KL estimator to the reference policy "
        "(RLMT: 0.001); 0 skips the reference pass.",
    )
    clip_epsilon: float = Field(
        0.2,
        gt=0,
        lt=1,
        description="PPO clip range of the ratio to the sampling policy (TRL's default), "
        "active from an iteration's second optimizer step on.",
    )
    strict_format: bool = Field(
        True,
        description="RLMT's strict mode: a sample whose thinking block is malformed is "
        "scored as an empty response.",
    )
    scale_by_std: bool = Field(
        True,
        description="Divide each advantage by its group's standard deviation (GRPO); "
        "false centres only (Dr. GRPO).",
    )
    advantage_eps: float = Field(
        1e-4, gt=0, description="Added to the group's std before dividing (TRL: 1e-4)."
    )
    loss_aggregation: GrpoLossAggregation = Field(
        GrpoLossAggregation.sequence_mean,
        description="sequence_mean (GRPO) or constant_length (Dr. GRPO: no length bias).",
    )
    keep_best_by: BenchmarkName | None = Field(
        None,
        description="The benchmark whose headline number picks the iteration whose policy "
        "the online stage returns (the reward-hacking guard: RLMT kept step ~135 of 234 "
        "by hand); needs online.eval_after_iteration. Unset: the last iteration's.",
        json_schema_extra=AFFECTS_OUTPUT_NOT,
    )


class DriftConfig(Strict):
    """``online.algorithm: drift``: DRIFT's recipe (their configs/qwen2.5-7b)."""

    sources: list[QuerySource] = Field(
        default_factory=list,
        description="Dissatisfaction rows in DRIFT's WildFeedback release format (JSONL: "
        "`prompt` the turns before, `rejected` the dissatisfying assistant turn, "
        "`user_preference` the user's feedback, optional `satisfied` follow-up); a "
        "source's `id_field` names the row id.",
    )
    rows_per_iteration: int | None = Field(
        None, ge=1, description="Rows each iteration pairs (DRIFT: all of them)."
    )
    rpo_alpha: float = Field(
        0.001,
        ge=0,
        description="Weight of the NLL of the chosen side, token mean over the batch, "
        "added to the DPO loss (DRIFT: 0.001, TRL's rpo_alpha).",
    )
    instruction: str = Field(
        DRIFT_INSTRUCTION,
        min_length=1,
        description="Appended to the user's feedback when the policy revises the "
        "dissatisfying turn (DRIFT's gen-drift.py).",
    )
