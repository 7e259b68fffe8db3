"""Stage 1 (paper §3.1): the sections that build the LongCoT SFT set.

Query curation (``data``), few-shot bootstrapping (``bootstrap``), and format filtering,
reward scoring and selection (``filter``).
"""

from __future__ import annotations

from pydantic import Field, model_validator

from bolt.config.base import AFFECTS_OUTPUT_NOT, Strict
from bolt.config.compute import EngineConfig, SamplingConfig, engine_override
from bolt.config.enums import BalanceMode, RewardKind, SelectionMode


class QuerySource(Strict):
    name: str = Field(
        description="Short name, becomes part of query ids.", pattern=r"^[A-Za-z0-9_.-]+$"
    )
    uri: str = Field(
        description="Local path, s3:// URI, or hf://dataset-id[:split] (hub only where reachable)."
    )
    format: str = Field(
        "jsonl", description="jsonl, parquet or hf.", pattern="^(jsonl|parquet|hf)$"
    )
    text_field: str | None = Field("text", description="Field holding the query text (flat rows).")
    conversation_field: str | None = Field(
        None,
        description="Field holding a conversation list (ShareGPT's 'conversations'); its first user turn is the query.",
    )
    role_key: str = Field("from", description="Key of a turn's role in conversation_field.")
    content_key: str = Field("value", description="Key of a turn's text in conversation_field.")
    user_roles: list[str] = Field(
        default_factory=lambda: ["human", "user"], description="Role values that mean the user."
    )
    id_field: str | None = Field(
        None, description="Field with a stable id; a content hash when unset."
    )
    topic_field: str | None = Field(
        None, description="Field with a known topic (skips LLM topic tagging for the row)."
    )
    reference_field: str | None = Field(None, description="Field with a reference answer (math).")
    limit: int | None = Field(
        None, ge=1, description="Take at most this many rows from the source."
    )


class DataConfig(Strict):
    """Stage 1a: query curation (paper §3.1)."""

    sources: list[QuerySource] = Field(default_factory=list, description="Where queries come from.")
    near_dup_threshold: float = Field(
        0.85, gt=0, le=1, description="MinHash Jaccard above which two queries are near-duplicates."
    )
    minhash_perm: int = Field(128, ge=16, description="MinHash permutations.")
    difficulty_filter: bool = Field(
        True, description="Label the 7 criteria with an LLM and keep hard queries."
    )
    difficulty_threshold: int = Field(
        5, ge=0, le=7, description="Keep queries meeting at least this many criteria (paper: 5)."
    )
    labeler_model: str = Field(
        description="Catalog name of the model that labels difficulty and topic."
    )
    guided_labels: bool = Field(
        True,
        description="Constrain the labeller's answers to the expected format with structured outputs (vLLM).",
    )
    topics: list[str] = Field(
        default_factory=lambda: [
            "math",
            "coding",
            "logic",
            "writing",
            "data_analysis",
            "advice",
            "science",
            "humanities",
        ],
        description="Topics the labeller chooses from.",
    )
    balance: BalanceMode = Field(BalanceMode.caps, description="How the topic mix is re-balanced.")
    topic_cap: int | None = Field(None, ge=1, description="Max queries per topic (balance=caps).")
    topic_shares: dict[str, float] = Field(
        default_factory=dict, description="Target share per topic (balance=shares)."
    )
    max_queries: int | None = Field(None, ge=1, description="Queries kept in the end.")
    engine: EngineConfig | None = engine_override("the labeller")


class BootstrapConfig(Strict):
    """Stage 1b: few-shot LongCoT bootstrapping (paper §3.1)."""

    teacher_model: str = Field(
        description="Catalog name of the instruct model that writes LongCoT answers."
    )
    examples_dir: str = Field(
        "prompts/longcot", description="Folder of the in-context LongCoT examples."
    )
    examples_per_prompt: int = Field(
        3, ge=1, description="In-context examples per prompt (paper: 3 of 10)."
    )
    engine: EngineConfig | None = engine_override("the teacher")
    sampling: SamplingConfig = Field(
        default_factory=lambda: SamplingConfig(
            n=8, temperature=0.7, top_p=0.95, max_new_tokens=4096
        ),
        description="Samples per query and decoding (paper: 8 per query).",
    )
    guided_decoding: bool = Field(
        False, description="Force the thoughts/response shape with structured outputs."
    )
    guided_max_chars: tuple[int, int] | None = Field(
        None,
        description="With guided_decoding: at most this many characters of thoughts and of "
        "response, so the shape closes within max_new_tokens (tiny runs); unbounded when unset.",
    )
    shard_size: int = Field(
        64, ge=1, description="Queries per shard (the unit of retry and resume)."
    )


class RewardBackend(Strict):
    kind: RewardKind = Field(description="Which reward.")
    name: str = Field(description="Name under which its score is stored.")
    model: str | None = Field(None, description="Catalog name of the reward/judge model.")
    weight: float = Field(1.0, description="Weight in the combined reward.")
    batch_size: int = Field(
        8, ge=1, description="Scoring batch size.", json_schema_extra=AFFECTS_OUTPUT_NOT
    )


class FilterConfig(Strict):
    """Stage 1c: format filter, reward scoring, selection (paper §3.1)."""

    rewards: list[RewardBackend] = Field(description="Reward backends, combined by weight.")
    percentile: float = Field(
        30, ge=0, lt=100, description="Drop samples below this percentile of reward (paper: 30)."
    )
    selection: SelectionMode = Field(
        SelectionMode.best, description="What is kept per query after the cut."
    )
    top_k: int = Field(1, ge=1, description="Samples kept per query when selection=top_k.")
    max_repeat_fraction: float = Field(
        0.3, gt=0, le=1, description="Degenerate-repetition threshold of the format filter."
    )
    engine: EngineConfig | None = engine_override("the generative reward models (lm_checklist)")

    @model_validator(mode="after")
    def _pass_rate_needs_checklist(self) -> FilterConfig:
        if self.selection == SelectionMode.best_of_n_pass_rate and not any(
            b.kind == RewardKind.lm_checklist for b in self.rewards
        ):
            raise ValueError(
                "selection best_of_n_pass_rate needs an lm_checklist reward in rewards"
            )
        names = [b.name for b in self.rewards]
        if len(names) != len(set(names)):
            raise ValueError(f"reward names must be unique, got {names}")
        return self
