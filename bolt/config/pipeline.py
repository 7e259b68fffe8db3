"""PipelineConfig: the stage sections composed into one recipe, and what spans them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, model_validator

from bolt.config.base import AFFECTS_OUTPUT_NOT, Strict
from bolt.config.compute import ComputeConfig, EngineConfig, StorageConfig
from bolt.config.data import BootstrapConfig, DataConfig, FilterConfig
from bolt.config.enums import JudgeKind
from bolt.config.evaluation import EvalConfig
from bolt.config.models import ModelsConfig
from bolt.config.plan import PlanConfig
from bolt.config.tracking import TrackingConfig
from bolt.config.train import OnlineConfig, SftConfig
from bolt.stages import Stage

# The section whose own ``engine`` overrides the top-level one for each stage that runs
# generative models; any other stage uses the top-level ``engine``.
ENGINE_SECTION: dict[Stage, str] = {
    Stage.curation: "data",
    Stage.bootstrap: "bootstrap",
    Stage.score: "filter",
    Stage.filter: "filter",
    Stage.online_samples: "online",
    Stage.online_scores: "online",
    Stage.eval_answers: "eval",
    Stage.eval: "eval",
    Stage.eval_trajectory: "eval",
}


class PipelineConfig(Strict):
    """The whole BOLT recipe: every number of a run comes from one of these."""

    name: str = Field(
        description="Run name; used for Prefect run names and tags.", pattern=r"^[A-Za-z0-9_.-]+$"
    )
    seed: int = Field(0, description="Global seed.")
    storage: StorageConfig = Field(
        default_factory=StorageConfig, description="Where artifacts live."
    )
    compute: ComputeConfig = Field(
        default_factory=ComputeConfig, description="Hardware, task runner, launcher."
    )
    models: ModelsConfig = Field(default_factory=ModelsConfig, description="The model catalog.")
    engine: EngineConfig = Field(
        default_factory=EngineConfig,
        description="The generation engine every stage runs its models on (labeller, teacher, "
        "reward models, policy sampling, answering); a stage section's own `engine` overrides "
        "the fields it names for that stage.",
    )
    data: DataConfig = Field(description="Stage 1a: query curation.")
    bootstrap: BootstrapConfig = Field(description="Stage 1b: LongCoT bootstrapping.")
    filter: FilterConfig = Field(description="Stage 1c: filtering and selection.")
    sft: SftConfig = Field(description="Stage 2: LongCoT SFT.")
    online: OnlineConfig = Field(description="Stage 3: online DPO.")
    eval: EvalConfig = Field(description="Stage 4: evaluation.")
    plan: PlanConfig = Field(
        default_factory=PlanConfig, description="Assumptions of the `bolt plan` estimate."
    )
    tracking: TrackingConfig = Field(
        default_factory=TrackingConfig,
        description="Experiment tracking (MLflow, W&B); changes no artifact.",
        json_schema_extra=AFFECTS_OUTPUT_NOT,
    )

    @model_validator(mode="before")
    @classmethod
    def _stage_engines_inherit(cls, data: Any) -> Any:
        """A stage's ``engine`` names only what differs from the top-level ``engine``: the
        fields it leaves out are the top-level's (``eval.engine: {kind: openai, base_url:
        ...}`` keeps the top-level dtype), so ``bootstrap.engine.enforce_eager=true`` on the
        command line changes one field, not every field back to its default."""
        if not isinstance(data, dict):
            return data
        top = data.get("engine")
        top = top.model_dump(exclude_unset=True) if isinstance(top, BaseModel) else top or {}
        merged = dict(data)
        for section in set(ENGINE_SECTION.values()):
            stage = merged.get(section)
            own = stage.get("engine") if isinstance(stage, dict) else None
            if isinstance(own, dict):
                merged[section] = {**stage, "engine": {**top, **own}}
        return merged

    @model_validator(mode="after")
    def _models_exist(self) -> PipelineConfig:
        """Every model a stage names must be in the catalog (fails at load, not hours later)."""
        for key, name in self.model_references():
            if name not in self.models.catalog:
                known = ", ".join(sorted(self.models.catalog)) or "none"
                raise ValueError(f"{key} = {name!r} is not in models.catalog (known: {known})")
        for name, entry in self.models.catalog.items():
            ident = entry.hf_id or entry.path or entry.s3_uri or entry.gguf_package
            if entry.trust_remote_code and ident not in self.models.remote_code_allowlist:
                raise ValueError(
                    f"models.catalog.{name}.trust_remote_code is true but {ident!r} is not in "
                    "models.remote_code_allowlist"
                )
        return self

    def engine_settings(self, stage: Stage) -> EngineConfig:
        """The engine settings ``stage`` runs its models with: its section's ``engine``
        when set, else the top-level ``engine`` (see ``override_of``)."""
        section = ENGINE_SECTION.get(stage)
        override = getattr(self, section).engine if section else None
        return override if override is not None else self.engine

    def model_references(self) -> list[tuple[str, str]]:
        refs = [
            ("data.labeler_model", self.data.labeler_model),
            ("bootstrap.teacher_model", self.bootstrap.teacher_model),
            ("sft.base_model", self.sft.base_model),
        ]
        for section, backends in (("filter", self.filter.rewards), ("online", self.online.rewards)):
            refs += [
                (f"{section}.rewards[{i}].model", b.model)
                for i, b in enumerate(backends)
                if b.model
            ]
        refs += [
            (f"data.synthetic_sources[{i}].model", source.model)
            for i, source in enumerate(self.data.synthetic_sources)
        ]
        if self.data.embedding is not None and self.data.embedding.model:
            refs.append(("data.embedding.model", self.data.embedding.model))
        for section, refinement in (
            ("bootstrap", self.bootstrap.refinement),
            ("online", self.online.refinement),
        ):
            if refinement is not None and refinement.judge_model:
                refs.append((f"{section}.refinement.judge_model", refinement.judge_model))
        if self.eval.judge.kind == JudgeKind.local_checklist:
            refs.append(("eval.judge.model", self.eval.judge.model))
        if self.eval.baseline_model:
            refs.append(("eval.baseline_model", self.eval.baseline_model))
        return refs


# The config sections of the stages, in pipeline order (`bolt run --until` names one).
# These are section names, not store stages (`Stage`): `filter` runs the score and filter
# stages, `online` six stages, `eval` three.
STAGE_SECTIONS = ("data", "bootstrap", "filter", "sft", "online", "eval")
