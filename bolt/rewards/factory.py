"""Which reward backend a config names: the one dispatch on :class:`~bolt.config.RewardKind`.

It sits above the backends, which share only :mod:`bolt.rewards.base` and never import
it back; adding a backend is one new module and one case here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, assert_never

from bolt.config import ModelsConfig, RewardBackend, RewardKind, S3Options
from bolt.rewards.base import RewardError, RewardModel

if TYPE_CHECKING:
    from bolt.engines.base import Engine
    from bolt.rewards.reweighting import ChecklistWeights


def make_reward(
    backend: RewardBackend,
    models: ModelsConfig,
    *,
    device: str = "cpu",
    checklist_engine: Engine | None = None,
    checklist_cache_dir: Path | None = None,
    judge_engine: Engine | None = None,
    s3: S3Options | None = None,
) -> RewardModel:
    """Build the backend ``backend.kind`` names; the only dispatch on :class:`RewardKind`.

    ``checklist_engine`` writes the checklists of ``lm_checklist`` (any engine: the
    stage's own is fine) and ``checklist_cache_dir`` keeps them across runs;
    ``judge_engine`` is the judge of a ``principles`` backend whose ``judge_engine`` is
    set. Backends are imported here, not at the top: torch and transformers take
    seconds to import and the rule-based rewards need neither.
    """
    match backend.kind:
        case RewardKind.sequence_classifier:
            from bolt.rewards.sequence_classifier import SequenceClassifierReward

            return SequenceClassifierReward.from_catalog(
                models, _model_name(backend), batch_size=backend.batch_size, device=device, s3=s3
            )
        case RewardKind.lm_checklist:
            from bolt.rewards.checklist import ChecklistMaker
            from bolt.rewards.lm_checklist import LMChecklistReward

            if checklist_engine is None or checklist_cache_dir is None:
                raise RewardError(
                    f"reward {backend.name!r} (kind lm_checklist) needs an engine to write its "
                    "checklists and a folder to cache them in"
                )
            maker = ChecklistMaker(checklist_engine, checklist_cache_dir)
            return LMChecklistReward.from_catalog(
                models,
                _model_name(backend),
                maker,
                batch_size=backend.batch_size,
                device=device,
                s3=s3,
                weights=_checklist_weights(backend, s3),
            )
        case RewardKind.principles:
            from bolt.rewards.principles import PrinciplesReward

            return PrinciplesReward.from_backend(
                backend, models, judge_engine=judge_engine, device=device, s3=s3
            )
        case RewardKind.math_verify:
            from bolt.rewards.math_verify_reward import MathVerifyReward

            return MathVerifyReward()
        case RewardKind.format:
            from bolt.rewards.format_reward import FormatReward

            return FormatReward()
        case _:
            assert_never(backend.kind)


def _checklist_weights(backend: RewardBackend, s3: S3Options | None) -> ChecklistWeights | None:
    if backend.checklist_weights is None:
        return None
    from bolt.rewards.reweighting import load_weights

    try:
        return load_weights(backend.checklist_weights, s3)
    except (OSError, ValueError) as err:
        raise RewardError(f"reward {backend.name!r}: checklist_weights: {err}") from err


def _model_name(backend: RewardBackend) -> str:
    if backend.model is None:
        raise RewardError(
            f"reward {backend.name!r} (kind {backend.kind.value}) needs `model`: the catalog "
            "name of its reward or judge model"
        )
    return backend.model
