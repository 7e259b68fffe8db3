"""Stages 2 and 3 (paper §3.2, §3.3): LongCoT SFT and online DPO."""

from __future__ import annotations

from pydantic import Field, model_validator

from bolt.config.base import AFFECTS_OUTPUT_NOT, ENTERS_WHEN_SET, Strict
from bolt.config.compute import EngineConfig, SamplingConfig, engine_override
from bolt.config.data import QuerySource, RewardBackend
from bolt.config.enums import (
    DpoLoss,
    OnlineAlgorithm,
    PairStrategyName,
    Precision,
    ReferencePolicy,
    ZeroStage,
)
from bolt.config.online_methods import DriftConfig, GrpoConfig
from bolt.config.reward_methods import RefinementConfig


class TrainCommon(Strict):
    lr: float = Field(gt=0, description="Peak learning rate.")
    epochs: float = Field(gt=0, description="Passes over the data.")
    scheduler: str = Field("cosine", description="LR schedule (HF scheduler name).")
    warmup_ratio: float = Field(0.1, ge=0, lt=1, description="Share of steps spent warming up.")
    optimizer: str = Field("adamw_torch", description="HF optimizer name.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    global_batch_size: int = Field(
        128,
        ge=1,
        description="Sequences per optimizer step; accumulation follows from the world size.",
    )
    micro_batch_size: int = Field(1, ge=1, description="Sequences per device per forward.")
    max_length: int = Field(16384, ge=16, description="Max tokens per sequence.")
    precision: Precision = Field(Precision.bf16, description="Training precision.")
    gradient_checkpointing: bool = Field(
        True, description="Trade compute for memory.", json_schema_extra=AFFECTS_OUTPUT_NOT
    )
    zero: ZeroStage = Field(ZeroStage.zero3, description="DeepSpeed ZeRO configuration.")
    seed: int = Field(42, description="Training seed.")
    save_steps: int = Field(200, ge=1, description="Checkpoint every this many optimizer steps.")
    max_steps: int | None = Field(None, ge=1, description="Stop after this many steps (tiny runs).")


class SftConfig(TrainCommon):
    """Stage 2: LongCoT SFT (paper §3.2)."""

    base_model: str = Field(description="Catalog name of the model to fine-tune.")
    packing: bool = Field(True, description="Pack examples without attention across them.")


class OnlineConfig(TrainCommon):
    """Stage 3: online DPO (paper §3.3)."""

    iterations: int = Field(3, ge=0, description="Sample-score-pair-train rounds (paper: 3).")
    prompts_per_iteration: int = Field(
        33000, ge=1, description="Hard prompts per iteration (paper: 33k)."
    )
    prompt_sources: list[QuerySource] = Field(
        default_factory=list, description="Prompts for online training."
    )
    sampling: SamplingConfig = Field(
        default_factory=lambda: SamplingConfig(
            n=8, temperature=1.0, top_p=1.0, max_new_tokens=4096
        ),
        description="Policy sampling (paper: 8 per prompt, temperature 1.0, top-p 1.0).",
    )
    shard_size: int | None = Field(
        None,
        ge=1,
        description="Prompts per sampling shard (the unit of retry and resume; scoring "
        "follows the same shards); unset: one shard per iteration. It enters the samples "
        "fingerprint once set: an engine seeded once (never per request) samples "
        "differently when the same prompts are cut differently.",
        json_schema_extra=ENTERS_WHEN_SET,
    )
    rewards: list[RewardBackend] = Field(
        description="Outcome reward + format reward (paper: ArmoRM + rule)."
    )
    refinement: RefinementConfig | None = Field(
        None,
        description="STICK self-refinement of the policy's samples that fail checklist "
        "items, before scoring (revisions join the samples pairs are chosen from); off "
        "when unset.",
        json_schema_extra=ENTERS_WHEN_SET,
    )
    pair_strategy: PairStrategyName = Field(
        PairStrategyName.max_min, description="How pairs are built (paper: max vs min)."
    )
    min_reward_gap: float = Field(
        0.0, ge=0, description="Skip prompts whose best-worst gap is below this."
    )
    beta: float = Field(0.1, gt=0, description="DPO beta.")
    loss_type: DpoLoss = Field(DpoLoss.sigmoid, description="DPO loss.")
    reference: ReferencePolicy = Field(
        ReferencePolicy.sft, description="Reference policy: the SFT model or the previous iterate."
    )
    eval_after_iteration: bool = Field(
        True,
        description="Evaluate the SFT model and each iteration's policy (the trajectory of "
        "paper Fig. 6).",
        json_schema_extra=AFFECTS_OUTPUT_NOT,
    )
    eval_items_per_iteration: int | None = Field(
        None,
        ge=1,
        description="Items per benchmark of that quick evaluation (default: eval.max_items).",
        json_schema_extra=AFFECTS_OUTPUT_NOT,
    )
    engine: EngineConfig | None = engine_override(
        "the policy's sampling and the generative reward models of online scoring"
    )
    algorithm: OnlineAlgorithm = Field(
        OnlineAlgorithm.dpo,
        description="dpo (BOLT §3.3), grpo (RLMT: GRPO with a preference reward) or drift "
        "(DPO on real dissatisfied turns).",
        json_schema_extra=ENTERS_WHEN_SET,
    )
    grpo: GrpoConfig | None = Field(
        None,
        description="Settings of algorithm grpo (its defaults when unset).",
        json_schema_extra=ENTERS_WHEN_SET,
    )
    drift: DriftConfig | None = Field(
        None,
        description="Settings of algorithm drift (needs its sources).",
        json_schema_extra=ENTERS_WHEN_SET,
    )

    @model_validator(mode="after")
    def _algorithm_settings(self) -> OnlineConfig:
        """DRIFT needs rows to anchor on; keeping the best GRPO step needs its evaluations."""
        if self.algorithm == OnlineAlgorithm.drift and not (self.drift and self.drift.sources):
            raise ValueError("online.algorithm is drift but online.drift.sources is empty")
        keep = self.grpo.keep_best_by if self.grpo else None
        if self.algorithm == OnlineAlgorithm.grpo and keep and not self.eval_after_iteration:
            raise ValueError(
                "online.grpo.keep_best_by needs online.eval_after_iteration (it picks among "
                "the evaluated iterations)"
            )
        return self

    @property
    def grpo_settings(self) -> GrpoConfig:
        return self.grpo or GrpoConfig()
