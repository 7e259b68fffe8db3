"""The suite's heavy shared resources: users run back to back, stopped after the last."""

from __future__ import annotations

from types import SimpleNamespace

from shared_resources import SharedResources, users_back_to_back


def _item(name: str, *fixtures: str) -> SimpleNamespace:
    return SimpleNamespace(name=name, fixturenames=["tmp_path", *fixtures])


def test_each_fixtures_users_move_up_behind_its_first_user():
    items = [
        _item("a"),
        _item("server-1", "vllm_server"),
        _item("b"),
        _item("engine-1", "vllm_engine"),
        _item("c"),
        _item("server-2", "vllm_server"),
        _item("engine-2", "vllm_engine"),
        _item("d"),
    ]
    order = [i.name for i in users_back_to_back(items)]
    assert order == ["a", "server-1", "server-2", "b", "engine-1", "engine-2", "c", "d"]


def test_a_resource_stops_when_the_next_test_does_not_use_it_and_starts_again_if_asked():
    events, shared = [], SharedResources()

    def start():
        events.append("start")
        return object()

    first = shared.get("vllm_server", start, lambda r: events.append("stop"))
    assert shared.get("vllm_server", start, lambda r: events.append("stop")) is first
    shared.release_unless_next_uses(_item("x", "vllm_server"), _item("y", "vllm_server"))
    assert events == ["start"]
    shared.release_unless_next_uses(_item("y", "vllm_server"), _item("z"))
    assert events == ["start", "stop"]
    assert shared.get("vllm_server", start, lambda r: events.append("stop")) is not first
    shared.release_unless_next_uses(_item("w", "vllm_server"), None)  # the session's last test
    assert events == ["start", "stop", "start", "stop"]
