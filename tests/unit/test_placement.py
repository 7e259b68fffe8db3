"""GPUs per shard task and engines per node (bolt.placement): what Ray is asked for and
what `bolt plan` counts are the same numbers."""

from __future__ import annotations

import pytest

from bolt.config_loader import load_config
from bolt.placement import PlacementError, engines_per_node, parallel_devices, task_gpus
from bolt.plan import working_devices
from bolt.stages import Stage
from tests.conftest import REPO

PAPER = REPO / "configs/paper-8b.yaml"


def _cfg(*overrides: str):
    return load_config(PAPER, list(overrides))


def test_generation_tasks_hold_their_tensor_parallel_gpus():
    cfg = _cfg()  # 1 node x 8 GPUs, tensor parallel 8
    assert task_gpus(cfg, Stage.bootstrap) == 8 and engines_per_node(cfg, Stage.bootstrap) == 1
    cfg = _cfg("engine.tensor_parallel_size=2")
    assert task_gpus(cfg, Stage.curation) == 2 and engines_per_node(cfg, Stage.curation) == 4
    assert parallel_devices(cfg, Stage.curation) == 8


def test_engines_per_node_widens_each_task_to_its_share_of_the_node():
    cfg = _cfg("engine.tensor_parallel_size=2", "compute.engines_per_node=2")
    assert engines_per_node(cfg, Stage.bootstrap) == 2 and task_gpus(cfg, Stage.bootstrap) == 4
    assert parallel_devices(cfg, Stage.bootstrap) == 4  # 2 engines x 2 GPUs; 4 GPUs idle
    with pytest.raises(PlacementError, match="engines_per_node=5"):
        engines_per_node(
            _cfg("engine.tensor_parallel_size=2", "compute.engines_per_node=5"), Stage.bootstrap
        )


def test_cpu_and_api_work_holds_no_gpu():
    assert task_gpus(_cfg("compute.device=cpu"), Stage.bootstrap) == 0
    assert task_gpus(_cfg("engine.kind=openai"), Stage.bootstrap) == 0
    assert task_gpus(_cfg(), Stage.eval) == 0  # the API judge
    assert task_gpus(_cfg(), Stage.score) == 1  # ArmoRM on one GPU
    assert task_gpus(_cfg("filter.rewards=[{kind: format, name: format}]"), Stage.score) == 0


def test_plan_counts_the_engines_that_fit():
    cfg = _cfg("engine.tensor_parallel_size=3")  # 2 engines of 3 GPUs on 8: 6 busy
    assert working_devices(cfg, "bootstrap") == 6 and working_devices(cfg, "sft") == 8
    assert working_devices(cfg, "online.2.sample") == 6 and working_devices(cfg, "eval") == 6
    assert working_devices(cfg, "filter") == 8


def test_ray_shard_tasks_are_submitted_asking_for_those_gpus():
    from prefect_ray.context import RemoteOptionsContext

    from tasks.runtime import shard_resources

    with shard_resources(_cfg(), Stage.bootstrap):  # paper-8b runs on Ray
        assert RemoteOptionsContext.get().current_remote_options == {"num_gpus": 8.0}
    with shard_resources(_cfg("compute.task_runner=threads"), Stage.bootstrap):
        assert RemoteOptionsContext.get().current_remote_options == {}
