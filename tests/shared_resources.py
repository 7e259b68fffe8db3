"""Heavy resources that a few tests share: started on first use, stopped after the last.

The served vLLM server (~3.7 GB resident) and the session's vLLM engine (~4.3 GB) are
used by a handful of tests each. Held for the whole session, they sat idle beside every
later test; with two test workers that idle memory is what ran CI's 24 GB out. So
``tests/conftest.py`` runs each one's users back to back (and, under pytest-xdist, on one
worker), and ``SHARED.release_unless_next_uses`` stops a resource as soon as the test
after its last user does not name it. A later test that asks again gets a fresh one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

# The fixtures served through ``SHARED``, by name.
HEAVY_FIXTURES = ("vllm_server", "vllm_engine")


class SharedResources:
    def __init__(self) -> None:
        self._live: dict[str, tuple[Any, Callable[[Any], None]]] = {}

    def get(self, name: str, start: Callable[[], Any], stop: Callable[[Any], None]) -> Any:
        if name not in self._live:
            self._live[name] = (start(), stop)
        return self._live[name][0]

    def release(self, name: str) -> None:
        live = self._live.pop(name, None)
        if live is not None:
            resource, stop = live
            stop(resource)

    def release_unless_next_uses(self, item: pytest.Item, nextitem: pytest.Item | None) -> None:
        later = set(getattr(nextitem, "fixturenames", ())) if nextitem is not None else set()
        for name in list(self._live):
            if name not in later:
                self.release(name)

    def release_all(self) -> None:
        for name in list(self._live):
            self.release(name)


SHARED = SharedResources()


def users_back_to_back(items: list[pytest.Item]) -> list[pytest.Item]:
    """``items`` with each heavy fixture's users moved up behind its first user (order
    otherwise kept), so one start serves them all."""
    first_of: dict[str, int] = {}
    keyed = []
    for position, item in enumerate(items):
        names = [n for n in HEAVY_FIXTURES if n in getattr(item, "fixturenames", ())]
        anchor = min((first_of.setdefault(n, position) for n in names), default=position)
        keyed.append((anchor, HEAVY_FIXTURES.index(names[0]) if names else -1, position, item))
    return [item for *_, item in sorted(keyed, key=lambda k: k[:3])]
