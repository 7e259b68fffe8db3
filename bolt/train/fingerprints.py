"""What names a trained model in the store: the fingerprints of the SFT model (BOLT §3.2)
and of each online DPO policy (§3.3), and the folder the weights sit in.

Light on purpose (no torch, no transformers): the Prefect tasks key their caches with
these before any job launches.
"""

from __future__ import annotations

from bolt.config import (
    GrpoLossAggregation,
    OnlineAlgorithm,
    OnlineConfig,
    PipelineConfig,
    TrainCommon,
    output_fields,
)
from bolt.fingerprint import fingerprint
from bolt.stages import Stage

SFT_CODE_VERSION = "1"
POLICY_CODE_VERSION = "1"
# A trained model's files inside its stage folder (``<stage>/<fp>/model/...``).
MODEL_DIR = "model"


def sft_fingerprint(cfg: PipelineConfig, sft_set_fp: str) -> str:
    """What changes the trained model: the SFT config, the base model and the data."""
    return fingerprint(
        Stage.sft,
        {"sft": cfg.sft, "base_model": cfg.models.catalog[cfg.sft.base_model]},
        upstream={"filter": sft_set_fp},
        code_version=SFT_CODE_VERSION,
    )


def policy_fingerprint(
    cfg: PipelineConfig, pairs_fp: str, reference_fp: str, initial_policy_id: str, iteration: int
) -> str:
    """What changes the trained policy: the training config, its data and its start.

    ``initial_policy_id`` names the policy training starts from (``sft/<fp>`` or
    ``online-policy/<fp>``)."""
    online = cfg.online
    # DRIFT's NLL term; plain DPO's payload is what it was before the algorithms existed.
    extra = {}
    if online.algorithm == OnlineAlgorithm.drift:
        extra = {"algorithm": online.algorithm, "rpo_alpha": rpo_alpha(online)}
    # Only what trains this iteration: the iteration count, the sampling and the pairing
    # settings reach the policy through its upstreams, and the fields marked
    # AFFECTS_OUTPUT_NOT (memory knobs) change nothing.
    return fingerprint(
        Stage.online_policy,
        {
            **_training_fields(online),
            "beta": online.beta,
            "loss_type": online.loss_type,
            "iteration": iteration,
            **extra,
        },
        upstream={"pairs": pairs_fp, "reference": reference_fp, "initial": initial_policy_id},
        code_version=POLICY_CODE_VERSION,
    )


def rpo_alpha(online: OnlineConfig) -> float:
    """The weight of the NLL term the DPO job adds (DRIFT's rpo_alpha; 0 for plain DPO)."""
    if online.algorithm == OnlineAlgorithm.drift and online.drift is not None:
        return online.drift.rpo_alpha
    return 0.0


def _training_fields(online: OnlineConfig) -> dict:
    kept = output_fields(online)
    return {name: kept[name] for name in TrainCommon.model_fields if name in kept}


def grpo_policy_fingerprint(
    cfg: PipelineConfig, groups_fp: str, initial_policy_id: str, reference_id: str, iteration: int
) -> str:
    """What changes a GRPO policy (RLMT): the training config, the loss settings, the
    iteration's groups, the policy it starts from and the KL's reference model."""
    online = cfg.online
    g = online.grpo_settings
    loss: dict = {"kl_coef": g.kl_coef, "clip_epsilon": g.clip_epsilon}
    loss["loss_aggregation"] = g.loss_aggregation
    if g.loss_aggregation == GrpoLossAggregation.constant_length:
        loss["max_tokens"] = online.sampling.max_new_tokens
    upstream = {"groups": groups_fp, "initial": initial_policy_id}
    if g.kl_coef > 0:
        upstream["reference"] = reference_id
    return fingerprint(
        Stage.online_policy,
        {**_training_fields(online), "algorithm": "grpo", **loss, "iteration": iteration},
        upstream=upstream,
        code_version=POLICY_CODE_VERSION,
    )
