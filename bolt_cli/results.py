"""What `bolt run` and `bolt rehearse` print, and the environment they give Prefect."""

from __future__ import annotations

import logging
import os

from bolt.config import PipelineConfig
from bolt.stages import Stage
from bolt.store import ArtifactStore
from bolt.summary import collect, file_rows, iteration_rows, score_rows
from bolt_cli.output import Field, print_rows


def use_prefect() -> None:
    """Before Prefect is imported: its embedded server gets 20 s to start by default,
    which a busy 2-core machine (vLLM loading beside it) can exceed. The user's own
    setting wins."""
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    # Batch jobs on machines that often have no route out: no telemetry from that server.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # bolt's own log lines (an engine or reward model starting, a shard resumed) go to the
    # console and to the flow run's log in the UI, beside Prefect's.
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "bolt")
    logging.getLogger("bolt").setLevel(os.environ.get("BOLT_LOG_LEVEL", "INFO"))


SUMMARY_FIELDS = (
    Field("stage"),
    Field("fingerprint"),
    Field("records", cell="{:,}".format, numeric=True),
    Field("uri", "where"),
)


def print_summary(summary: dict[str, dict]) -> None:
    rows = [{"stage": name, **info} for name, info in summary.items()]
    print_rows(rows, SUMMARY_FIELDS, title="stage outputs")


def _number(value: object) -> str:
    if value is None:
        return "—"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _by_backend(rewards: dict[str, float | None]) -> str:
    return ", ".join(f"{name} {_number(v)}" for name, v in rewards.items()) or "—"


def _loss(row: dict) -> str:
    return f"{_number(row['first_loss'])} → {_number(row['final_loss'])}"


SCORE_FIELDS = (
    Field("model"),
    Field("benchmark"),
    Field("metric"),
    Field("score", cell=_number, numeric=True),
    Field("judge", "graded by"),
    Field("items", cell=_number, numeric=True),
)
ITERATION_FIELDS = (
    Field("iteration", numeric=True),
    Field("sampled_from", "samples of"),
    Field("samples", numeric=True),
    Field("mean_reward", "mean reward", cell=_number, numeric=True),
    Field("backend_rewards", "per reward", cell=_by_backend),
    Field("pairs", cell=_number, numeric=True),
    Field("loss", "loss first → last"),
    Field("reward_margin", "reward margin", cell=_number, numeric=True),
    Field("kl", "KL (GRPO)", cell=_number, numeric=True),
    Field("policy", "policy"),
)
FILE_FIELDS = (Field("model"), Field("what"), Field("path", "where"))


def print_results(cfg: PipelineConfig, summary: dict[str, dict]) -> None:
    """What the run came for: each model's headline scores and their judge, the reward
    of each online iteration's samples, and where the reports and plots are."""
    store = ArtifactStore.from_config(cfg.storage)

    def stored(stage: Stage):
        info = summary.get(stage)
        return store.manifest(stage, str(info["fingerprint"])) if info else None

    results = collect(store, stored(Stage.online_policy), stored(Stage.eval_trajectory))
    if results.evals:
        title = "scores: each model's headline number per benchmark, and who graded it"
        print_rows(score_rows(results.evals), SCORE_FIELDS, title=title)
    if results.iterations:
        rows = [r | {"loss": _loss(r)} for r in iteration_rows(results.iterations, store.uri)]
        title = (
            f"online {results.algorithms()}: the reward of the samples each iteration trained on"
        )
        print_rows(rows, ITERATION_FIELDS, title=title)
    if files := file_rows(results.evals, results.trajectory, store.uri):
        print_rows(files, FILE_FIELDS, title="reports and plots")
