"""Pipeline configuration: one pydantic model per stage, composed into PipelineConfig.

Every field is documented once, with ``Field(description=...)``; the README's config
reference and the JSON Schema are generated from these descriptions. A field reaches a
stage's fingerprint unless it is marked ``AFFECTS_OUTPUT_NOT`` (see ``base``).

The package is split by concern: ``base`` (the fingerprint rule), ``enums``, ``models``
(the catalog), ``compute`` (storage, cluster, engine, sampling), ``tracking``, one module per group of
stage sections (``data``, ``train``, ``evaluation``, ``plan``) and ``pipeline``. Import
from ``bolt.config``; the modules are how it is kept, not an interface.
"""

from __future__ import annotations

from bolt.config.base import (
    AFFECTS_OUTPUT_NOT,
    ENTERS_WHEN_SET,
    Strict,
    output_fields,
    output_value,
    override_of,
)
from bolt.config.compute import (
    ComputeConfig,
    EngineConfig,
    S3Options,
    SamplingConfig,
    StorageConfig,
)
from bolt.config.data import (
    BootstrapConfig,
    DataConfig,
    FilterConfig,
    QuerySource,
    RewardBackend,
)
from bolt.config.enums import (
    BalanceMode,
    BenchmarkName,
    DpoLoss,
    EngineKind,
    GrpoLossAggregation,
    JudgeKind,
    Launcher,
    OnlineAlgorithm,
    PairStrategyName,
    Precision,
    ReferencePolicy,
    RewardKind,
    SelectionMode,
    ServerSideEncryption,
    TaskRunnerKind,
    TrackingBackend,
    ZeroStage,
)
from bolt.config.evaluation import EvalConfig, JudgeConfig
from bolt.config.models import ModelEntry, ModelsConfig
from bolt.config.online_methods import DRIFT_INSTRUCTION, DriftConfig, GrpoConfig
from bolt.config.pipeline import STAGE_SECTIONS, PipelineConfig
from bolt.config.plan import PlanConfig
from bolt.config.reward_methods import (
    Principle,
    PrincipleFilter,
    RefinementConfig,
    principle_key,
)
from bolt.config.tracking import TrackingConfig
from bolt.config.train import OnlineConfig, SftConfig, TrainCommon

__all__ = [
    "AFFECTS_OUTPUT_NOT",
    "DRIFT_INSTRUCTION",
    "ENTERS_WHEN_SET",
    "STAGE_SECTIONS",
    "BalanceMode",
    "BenchmarkName",
    "BootstrapConfig",
    "ComputeConfig",
    "DataConfig",
    "DpoLoss",
    "DriftConfig",
    "EngineConfig",
    "EngineKind",
    "EvalConfig",
    "FilterConfig",
    "GrpoConfig",
    "GrpoLossAggregation",
    "JudgeConfig",
    "JudgeKind",
    "Launcher",
    "ModelEntry",
    "ModelsConfig",
    "OnlineAlgorithm",
    "OnlineConfig",
    "PairStrategyName",
    "PipelineConfig",
    "PlanConfig",
    "Precision",
    "Principle",
    "PrincipleFilter",
    "QuerySource",
    "ReferencePolicy",
    "RefinementConfig",
    "RewardBackend",
    "RewardKind",
    "S3Options",
    "SamplingConfig",
    "SelectionMode",
    "ServerSideEncryption",
    "SftConfig",
    "StorageConfig",
    "Strict",
    "TaskRunnerKind",
    "TrackingBackend",
    "TrackingConfig",
    "TrainCommon",
    "ZeroStage",
    "output_fields",
    "output_value",
    "override_of",
    "principle_key",
]
