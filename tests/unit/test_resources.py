"""The one hand-off rule of live resources (bolt.resources), on hand-made resources."""

from __future__ import annotations

from bolt.resources import ResourcePool, Role


class Thing:
    def __init__(self, name: str, log: list[str]):
        self.name, self.log, self.dead = name, log, False

    def close(self) -> None:
        self.log.append(f"closed {self.name}")


def test_a_resource_is_made_once_and_shared():
    pool, log = ResourcePool(), []
    first = pool.get("teacher", Role.generation, lambda: Thing("teacher", log))
    assert pool.get("teacher", Role.generation, lambda: Thing("other", log)) is first
    assert log == []


def test_acquiring_one_role_releases_the_other_and_keeps_its_own():
    pool, log = ResourcePool(), []
    pool.get("teacher", Role.generation, lambda: Thing("teacher", log))
    pool.get("labeller", Role.generation, lambda: Thing("labeller", log))
    pool.get("rm", Role.scoring, lambda: Thing("rm", log))
    assert sorted(log) == ["closed labeller", "closed teacher"]
    pool.get("judge", Role.scoring, lambda: Thing("judge", log))
    assert pool.live() == {"rm": Role.scoring, "judge": Role.scoring}
    pool.get("policy", Role.generation, lambda: Thing("policy", log))
    assert pool.live() == {"policy": Role.generation}


def test_a_dead_resource_is_replaced_on_the_next_request():
    pool, log = ResourcePool(), []
    engine = pool.get("teacher", Role.generation, lambda: Thing("teacher", log))
    engine.dead = True
    fresh = pool.get("teacher", Role.generation, lambda: Thing("teacher-2", log))
    assert fresh is not engine and log == ["closed teacher"]


def test_release_closes_everything_or_one_role():
    pool, log = ResourcePool(), []
    pool.get("rm", Role.scoring, lambda: Thing("rm", log))
    pool.release(Role.generation)
    assert pool.live() == {"rm": Role.scoring}
    pool.release()
    assert pool.live() == {} and log == ["closed rm"]
