"""The Prefect task of LongCoT SFT: launch the training job, follow it, retry by resuming.

The job runs wherever ``compute.launcher`` says (bolt.train.launch, through
bolt.train.stage.train_stage); this task turns its progress lines into a Prefect
progress artifact and log lines. A failed job (a node lost, a pod evicted, an scancel)
fails the task; Prefect's retry relaunches it and the entrypoint resumes from the last
checkpoint in the store, so a retry redoes at most ``sft.save_steps`` steps.
"""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.context import TaskRunContext

from bolt.config import PipelineConfig
from bolt.stages import Stage
from bolt.store import Manifest
from bolt.train.fingerprints import sft_fingerprint
from bolt.train.stage import NothingToTrainOn, require_examples, sft_job, train_stage
from tasks.runtime import CACHED_RESULT, stage_key
from tasks.training import TrainingProgress


def _sft_key(ctx: TaskRunContext, params: dict[str, Any]) -> str:
    fp = sft_fingerprint(params["cfg"], params["sft_set"].fingerprint)
    return stage_key(ctx, params["cfg"], Stage.sft, fp)


def _retry_unless_nothing_to_train(task, task_run, state) -> bool:
    """A lost node or an scancel is retried; an empty SFT set is not (a retry finds it
    empty again, a minute later)."""
    try:
        state.result()
    except NothingToTrainOn:
        return False
    except Exception:  # noqa: BLE001 -- any other failure is the job's: retry it
        return True
    return True


@task(
    name="train-sft",
    retries=2,
    retry_delay_seconds=60,
    retry_condition_fn=_retry_unless_nothing_to_train,
    cache_key_fn=_sft_key,
    **CACHED_RESULT,
)
def train_sft(cfg: PipelineConfig, sft_set: Manifest) -> Manifest:
    require_examples(sft_set, "SFT set")
    job = sft_job(cfg, sft_set.fingerprint)
    progress = TrainingProgress(f"sft {job.fingerprint}", {"tokens/s": "tokens_per_s"})
    return train_stage(cfg, job, progress)
