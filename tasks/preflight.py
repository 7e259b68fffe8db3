"""Preflight under Prefect: ``bolt.preflight``'s checks plus the two only Prefect can
answer, the work pool (``compute.work_pool``) and the judge's Secret block
(``eval.judge.api_key_secret_block``), each read from the Prefect server within a
bounded time. ``preflight_task`` is the first thing the pipeline flow runs.
"""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from bolt.config import JudgeKind, PipelineConfig
from bolt.preflight import DEFAULT_CHECKS, Check, Context, Problem, preflight, require
from bolt.preflight.base import bounded

PREFECT_TIMEOUT_S = 5.0


def _api_url() -> str | None:
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value()


def _read(fn_name: str, *args: object, **kwargs: object) -> object:
    """One call on a sync Prefect client, bounded in time (the client retries on its own)."""
    from prefect.client.orchestration import get_client

    def call() -> object:
        with get_client(sync_client=True) as client:
            return getattr(client, fn_name)(*args, **kwargs)

    return bounded(call, PREFECT_TIMEOUT_S)


def _unreachable(key: str, e: Exception) -> Problem:
    return Problem(
        key, f"the Prefect server at {_api_url()} does not answer ({type(e).__name__}: {e})"
    )


def check_work_pool(ctx: Context) -> list[Problem]:
    """``compute.work_pool`` exists on the Prefect server (unset: nothing to check)."""
    from prefect.exceptions import ObjectNotFound

    name, key = ctx.cfg.compute.work_pool, "compute.work_pool"
    if not name:
        return []
    if not _api_url():
        return [
            Problem(key, f"names {name!r} but no Prefect server is configured (PREFECT_API_URL)")
        ]
    try:
        _read("read_work_pool", name)
    except ObjectNotFound:
        try:
            known = ", ".join(sorted(p.name for p in _read("read_work_pools"))) or "none"  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 -- the list is a courtesy
            known = "unknown"
        return [
            Problem(
                key, f"no work pool {name!r} on the Prefect server at {_api_url()} (known: {known})"
            )
        ]
    except Exception as e:  # noqa: BLE001 -- connection refused, timeout, HTTP errors
        return [_unreachable(key, e)]
    return []


def check_secret_block(ctx: Context) -> list[Problem]:
    """The API judge's Secret block exists (its value is not read here)."""
    from prefect.exceptions import ObjectNotFound

    judge, key = ctx.cfg.eval.judge, "eval.judge.api_key_secret_block"
    if judge.kind != JudgeKind.api or not judge.api_key_secret_block:
        return []
    try:
        _read("read_block_document_by_name", judge.api_key_secret_block, block_type_slug="secret")
    except ObjectNotFound:
        return [
            Problem(key, f"no Secret block {judge.api_key_secret_block!r} on the Prefect server")
        ]
    except Exception as e:  # noqa: BLE001 -- connection refused, timeout, HTTP errors
        return [_unreachable(key, e)]
    return []


PREFECT_CHECKS: tuple[Check, ...] = (
    *DEFAULT_CHECKS,
    Check("work pool", "compute.work_pool", check_work_pool),
    Check("secret block", "eval.judge.api_key_secret_block", check_secret_block),
)


def run_preflight(cfg: PipelineConfig) -> list[Problem]:
    """Every problem, library checks and Prefect checks together (for `bolt preflight`)."""
    return preflight(cfg, checks=PREFECT_CHECKS)


@task(name="preflight", cache_policy=NO_CACHE, retries=0)
def preflight_task(cfg: PipelineConfig) -> None:
    """Raise PreflightError naming every config key at fault, before any stage starts."""
    require(cfg, checks=PREFECT_CHECKS)
