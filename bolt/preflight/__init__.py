"""Preflight: everything a config names is checked before the first stage starts.

Models, datasets, credentials, the cluster and the training memory plan are checked
here, each by a small function that returns ``Problem``s naming the exact config key
(``models.catalog.llama-3.1-8b-instruct.path``, ``data.sources[0].uri``,
``eval.data.arena_hard``, ...). Nothing is downloaded and nothing is loaded: a local
path is looked at, an ``s3://`` object is HEADed, a hub id is looked up in the local
Hugging Face cache. Every probe is bounded (short connect timeouts, subprocess
timeouts, and one deadline over all checks, which run side by side), so a hanging
endpoint costs seconds, not the run.

The Prefect work pool and Secret block checks need Prefect, which ``bolt`` never
imports: they live in ``tasks.preflight`` and are passed in through ``checks``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from bolt.config import PipelineConfig
from bolt.preflight.base import DEADLINE_S, Check, Context, PreflightError, Problem, in_thread
from bolt.preflight.infra import check_cluster, check_credentials, check_memory, check_storage
from bolt.preflight.sources import check_datasets, check_models

__all__ = [
    "DEADLINE_S",
    "DEFAULT_CHECKS",
    "Check",
    "Context",
    "PreflightError",
    "Problem",
    "preflight",
    "require",
]

DEFAULT_CHECKS: tuple[Check, ...] = (
    Check("models", "models.catalog", check_models),
    Check("datasets", "data", check_datasets),
    Check("credentials", "storage.s3", check_credentials),
    Check("storage", "storage.root", check_storage),
    Check("cluster", "compute.launcher", check_cluster),
    Check("memory", "compute.gpu_type", check_memory),
)


def preflight(
    cfg: PipelineConfig,
    *,
    checks: Sequence[Check] = DEFAULT_CHECKS,
    deadline_s: float = DEADLINE_S,
) -> list[Problem]:
    """Every problem the checks find, side by side, within ``deadline_s`` seconds; a
    check still running then is a problem itself (it names the check's key)."""
    ctx = Context(cfg)
    results: dict[str, list[Problem]] = {}
    threads = []
    for check in checks:

        def target(check: Check = check) -> None:
            try:
                results[check.name] = check.run(ctx)
            except Exception as e:  # noqa: BLE001 -- a broken check is a finding, not a crash
                results[check.name] = [
                    Problem(check.key, f"{check.name} check failed: {type(e).__name__}: {e}")
                ]

        thread = in_thread(target, f"preflight-{check.name}")
        threads.append((check, thread))
    end = time.monotonic() + deadline_s
    problems: list[Problem] = []
    for check, thread in threads:
        thread.join(max(0.0, end - time.monotonic()))
        if check.name in results:
            problems += results[check.name]
        else:
            problems.append(
                Problem(check.key, f"{check.name} check did not finish within {deadline_s:.0f} s")
            )
    return problems


def require(
    cfg: PipelineConfig, *, checks: Sequence[Check] = DEFAULT_CHECKS, deadline_s: float = DEADLINE_S
) -> None:
    """Raise PreflightError listing every problem; return quietly when there is none."""
    if problems := preflight(cfg, checks=checks, deadline_s=deadline_s):
        raise PreflightError(problems)
