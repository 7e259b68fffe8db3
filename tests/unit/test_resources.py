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


def test_claims_on_the_accelerator_that_do_not_fit_release_the_oldest_claimant():
    pool, log = ResourcePool(), []
    pool.get("baseline", Role.generation, lambda: Thing("baseline", log), claim=0.9)
    pool.get("tokenizer", Role.generation, lambda: Thing("tokenizer", log))  # claims nothing
    pool.get("model", Role.generation, lambda: Thing("model", log), claim=0.9)
    assert log == ["closed baseline"]
    assert pool.live() == {"tokenizer": Role.generation, "model": Role.generation}
    pool.get("small-a", Role.generation, lambda: Thing("a", log), claim=0.05)
    pool.get("small-b", Role.generation, lambda: Thing("b", log), claim=0.05)
    assert log == ["closed baseline"]  # 0.9 + 0.05 + 0.05 fits
    pool.get("model", Role.generation, lambda: Thing("other", log), claim=0.9)  # live: shared
    pool.get("big", Role.generation, lambda: Thing("big", log), claim=0.5)
    assert log == ["closed baseline", "closed model"]  # the oldest claimant went first
    assert set(pool.live()) == {"tokenizer", "small-a", "small-b", "big"}


def test_a_vllm_engine_claims_its_memory_share_off_the_cpu_only():
    from bolt.config import EngineConfig, EngineKind
    from bolt.engines.live import accelerator_claim

    vllm = EngineConfig(kind=EngineKind.vllm, gpu_memory_utilization=0.85)
    assert accelerator_claim(vllm, "cuda") == 0.85
    assert accelerator_claim(vllm, "cpu") == 0.0
    assert accelerator_claim(EngineConfig(kind=EngineKind.transformers), "cuda") == 0.0
    assert accelerator_claim(EngineConfig(kind=EngineKind.openai), "cuda") == 0.0
