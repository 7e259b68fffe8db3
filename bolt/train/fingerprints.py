"""What names a trained model in the store: the fingerprints of the SFT model (BOLT §3.2)
and of each online DPO policy (§3.3), and the folder the weights sit in.

Light on purpose (no torch, no transformers): the Prefect tasks key their caches with
these before any job launches.
"""

from __future__ import annotations

from bolt.config import PipelineConfig, TrainCommon, output_fields
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
    # Only what trains this iteration: the iteration count, the sampling and the pairing
    # settings reach the policy through its upstreams, and the fields marked
    # AFFECTS_OUTPUT_NOT (memory knobs) change nothing.
    kept = output_fields(online)
    training = {name: kept[name] for name in TrainCommon.model_fields if name in kept}
    return fingerprint(
        Stage.online_policy,
        {**training, "beta": online.beta, "loss_type": online.loss_type, "iteration": iteration},
        upstream={"pairs": pairs_fp, "reference": reference_fp, "initial": initial_policy_id},
        code_version=POLICY_CODE_VERSION,
    )
