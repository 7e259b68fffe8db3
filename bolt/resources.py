"""The live engines and models of this process: one pool, one release, one hand-off rule.

Starting a vLLM engine costs a minute, loading an 8B reward model half of one, so a
stage reuses what an earlier stage in the same process started (the labeller and the
teacher share an engine when they name the same model with the same settings). But an
accelerator cannot hold everything at once: a generation engine takes 90% of its memory
(``gpu_memory_utilization``), so the rule, kept here and nowhere else, is

    acquiring a resource of one role releases every live resource of the other role.

``Role.generation`` is what samples text for a stage (the teacher, the policy, the model
under evaluation); ``Role.scoring`` is what grades it (reward models, judges and the
engines inside them). Resources of one role coexist, except where their shares of the
accelerator do not fit: a resource may ``claim`` a fraction of it (a vLLM engine on a
GPU claims its ``gpu_memory_utilization``; vLLM refuses to start when that much is not
free), and a new claim that would take the live claims past the whole releases the
oldest claimants first (the evaluation's baseline engine and the model's, say). Training
runs in its own process (a launched job) and gets the accelerator after ``release()``.

A resource whose process died (``dead`` is true, see ``bolt.engines.base.EngineDead``)
is replaced on the next request for it, so a task's retry runs on a live one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

logger = logging.getLogger("bolt.resources")
T = TypeVar("T")


class Role(StrEnum):
    generation = "generation"
    scoring = "scoring"


@dataclass
class _Live:
    resource: Any
    role: Role
    claim: float


def _close(resource: Any) -> None:
    close = getattr(resource, "close", None)
    if callable(close):
        close()


class ResourcePool:
    """Live resources by key; see the module docstring for the hand-off rule."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._live: dict[str, _Live] = {}

    def get(
        self,
        key: str,
        role: Role,
        make: Callable[[], T],
        label: str | None = None,
        claim: float = 0.0,
    ) -> T:
        """The live resource ``key``, or ``make()``'s after the other role is released and
        room is made for its ``claim`` (a fraction of the accelerator). ``label`` names
        it in the log (keys carry whole settings as JSON)."""
        with self._lock:
            live = self._live.get(key)
            if live is not None and getattr(live.resource, "dead", False):
                logger.warning("%s died; starting a new one", label or key)
                self._drop(key)
                live = None
            if live is None:
                self.release(Role.scoring if role is Role.generation else Role.generation)
                self._make_room(claim)
                logger.info("starting %s (%s)", label or key, role.value)
                live = self._live[key] = _Live(make(), role, claim)
            return live.resource

    def _make_room(self, claim: float) -> None:
        """Release claimants, oldest first, until ``claim`` fits beside the rest."""
        for key in [k for k, v in self._live.items() if v.claim > 0]:  # insertion order
            if claim <= 0 or sum(v.claim for v in self._live.values()) + claim <= 1.0:
                return
            logger.info("releasing %s: its share of the accelerator is needed", key[:80])
            self._drop(key)

    def release(self, role: Role | None = None) -> None:
        """Close every live resource (of ``role`` only, when given)."""
        with self._lock:
            for key in [k for k, v in self._live.items() if role is None or v.role is role]:
                self._drop(key)

    def live(self) -> dict[str, Role]:
        with self._lock:
            return {k: v.role for k, v in self._live.items()}

    def _drop(self, key: str) -> None:
        live = self._live.pop(key)
        try:
            _close(live.resource)
        except Exception:  # a dead engine may fail to close; it holds nothing any more
            logger.exception("closing %s failed", key)


# The process's pool: every stage takes its engines and models from here.
POOL = ResourcePool()
