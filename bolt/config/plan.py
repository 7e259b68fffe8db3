"""The assumptions behind `bolt plan` (estimates only: nothing here changes an artifact)."""

from __future__ import annotations

from pydantic import Field

from bolt.config.base import Strict


class PlanConfig(Strict):
    """Assumptions behind `bolt plan` (estimates only: nothing here changes an artifact)."""

    source_queries: int | None = Field(
        None,
        ge=1,
        description="Candidate queries before curation; counted from local sources when unset.",
    )
    difficulty_pass_rate: float = Field(
        0.3, gt=0, le=1, description="Share of candidates the difficulty filter keeps."
    )
    mean_query_tokens: int = Field(200, ge=1, description="Mean query length in tokens.")
    mean_output_tokens: int | None = Field(
        None, ge=1, description="Mean generated length; half of max_new_tokens when unset."
    )
    pair_skip_rate: float = Field(
        0.1, ge=0, lt=1, description="Share of online prompts skipped (equal rewards, small gap)."
    )
    judge_tokens_per_item: int = Field(
        2500, ge=0, description="Judge prompt + reply tokens per judged item."
    )
    judge_reply_tokens_per_item: int = Field(
        600,
        ge=0,
        description="Of judge_tokens_per_item, the judge's reply: priced at the judge's "
        "usd_per_1k_output, the rest at its usd_per_1k_input.",
    )
    api_judge_seconds_per_item: float = Field(
        20.0,
        ge=0,
        description="Wall seconds an API judge spends on one judged item, its calls one after "
        "another (an estimate: a ~600-token reply at 30-60 tokens/s, plus latency); the "
        "judge's engine.concurrency items are judged at once.",
    )
    peak_tflops: float | None = Field(
        None,
        gt=0,
        description="Dense bf16 TFLOPS of one device; from compute.gpu_type when unset.",
    )
    inference_mfu: float = Field(
        0.25, gt=0, le=1, description="Model FLOPs utilisation of generation and scoring."
    )
    training_mfu: float = Field(0.4, gt=0, le=1, description="Model FLOPs utilisation of training.")
    generation_tokens_per_device_s: float | None = Field(
        None,
        gt=0,
        description="Measured output tokens/s per device; replaces the FLOPs estimate for generation.",
    )
    stored_bytes_per_token: float = Field(
        1.5, gt=0, description="Gzipped JSONL bytes per token (about 4 chars x 0.35)."
    )
    checkpoints_kept: int = Field(
        2, ge=1, description="Resumable checkpoints (weights + optimizer) kept per training run."
    )
    feedback_rows: int | None = Field(
        None,
        ge=1,
        description="DRIFT: dissatisfaction rows per iteration; online.drift.rows_per_iteration "
        "when set, else counted from local sources.",
    )
    mean_conversation_tokens: int | None = Field(
        None,
        ge=1,
        description="DRIFT: mean tokens of a row's conversation (prompt, dissatisfying turn, "
        "feedback); 3 x mean_query_tokens when unset.",
    )
