"""What a rehearsal changes in a config: sizes, the CPU, and what noise-making models need.

``shrink`` reads the validated config (so defaults count) and returns every change as a
``Change``: the key, the real value, the rehearsal's, and why. Three kinds, nothing else:

- **sizes**: rows per source, queries kept, samples per prompt, new tokens, shard sizes
  (several shards per stage, so resume paths run), training steps, batch and sequence
  length, online iterations and prompts, eval items, judge output;
- **the machine**: the CPU instead of the accelerators (``compute.device``, one node,
  no GPUs, tensor parallelism 1, fp32 where the real run trains in bf16, eager vLLM).
  Context lengths stay: the few-shot prompts are as long as the real run's, and a
  stand-in's KV cache is small enough to hold them;
- **what a random stand-in cannot do**: copy the LongCoT tags from three examples (the
  shape is forced with guided decoding, as the tiny CPU config does for SmolLM2) or give
  labels worth a threshold (the difficulty bar is lowered so later stages get data).

The stages, their order, launchers, storage layout (under ``<root>/rehearsal``), rewards,
pairing, losses, judges and benchmarks stay as the config says.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from bolt.config import PipelineConfig

ROWS_PER_SOURCE = 24
QUERIES_KEPT = 8
SHARD_SIZE = 4
SAMPLES_PER_PROMPT = 2
NEW_TOKENS = 96
JUDGE_NEW_TOKENS = 96
TRAIN_STEPS = 2
TRAIN_BATCH = 2
TRAIN_MAX_LENGTH = 512
ONLINE_ITERATIONS = 2
ONLINE_PROMPTS = 4
EVAL_ITEMS = 2
JOB_TIME_LIMIT_HOURS = 1.0
# Thoughts and response, in characters: with the four tags (~20 tokens) they fit in
# NEW_TOKENS at ~2.5 characters a token, so a guided sample ends, not truncated.
GUIDED_MAX_CHARS = [100, 50]
STORE_SUFFIX = "rehearsal"

SIZE = "smaller"
CPU = "the CPU"
STAND_IN = "a stand-in's output is noise"


@dataclass(frozen=True)
class Change:
    key: tuple[str, ...]  # the path in the config data (list items by index)
    real: Any
    rehearsal: Any
    why: str

    @property
    def dotted(self) -> str:
        return ".".join(self.key)


def shrink(cfg: PipelineConfig) -> list[Change]:
    """Every change a rehearsal of ``cfg`` makes, in config order."""
    data = cfg.model_dump(mode="json")
    changes = [*_machine(data), *_walk_sizes(data, ()), *_stand_in_needs(data)]
    changes.append(
        Change(
            ("storage", "root"),
            data["storage"]["root"],
            f"{data['storage']['root'].rstrip('/')}/{STORE_SUFFIX}",
            "beside the real run's outputs, same layout",
        )
    )
    return [c for c in changes if c.real != c.rehearsal]


def _at_most(value: int | None, bound: int) -> int:
    return bound if value is None else min(value, bound)


def _machine(data: dict[str, Any]) -> Iterator[Change]:
    compute = data["compute"]
    yield Change(("compute", "device"), compute["device"], "cpu", CPU)
    yield Change(("compute", "nodes"), compute["nodes"], 1, CPU)
    yield Change(("compute", "gpus_per_node"), compute["gpus_per_node"], 0, CPU)
    yield Change(("compute", "max_workers"), compute["max_workers"], 1, CPU)
    if compute["engines_per_node"] is not None:
        yield Change(("compute", "engines_per_node"), compute["engines_per_node"], None, CPU)
    yield Change(
        ("compute", "time_limit_hours"),
        compute["time_limit_hours"],
        min(compute["time_limit_hours"], JOB_TIME_LIMIT_HOURS),
        "a rehearsal job running longer is stuck",
    )


def _walk_sizes(node: Any, path: tuple[str, ...]) -> Iterator[Change]:
    """Size changes wherever a section of that shape sits (stage engines, GRPO, DRIFT...)."""
    if isinstance(node, list):
        for i, item in enumerate(node):
            yield from _walk_sizes(item, (*path, str(i)))
        return
    if not isinstance(node, dict):
        return
    yield from _section_sizes(node, path)
    for key, value in node.items():
        if key != "compute":
            yield from _walk_sizes(value, (*path, key))


def _section_sizes(section: dict[str, Any], path: tuple[str, ...]) -> Iterator[Change]:
    def change(key: str, value: Any, why: str = SIZE) -> Change:
        return Change((*path, key), section[key], value, why)

    keys = section.keys()
    if "shard_size" in keys and isinstance(section["shard_size"], int):
        yield change("shard_size", min(section["shard_size"], SHARD_SIZE), "several shards")
    if {"temperature", "max_new_tokens", "n"} <= keys:  # sampling
        yield change("n", min(section["n"], SAMPLES_PER_PROMPT))
        yield change("max_new_tokens", min(section["max_new_tokens"], NEW_TOKENS))
    if {"uri", "format", "limit"} <= keys:  # a query source
        yield change("limit", _at_most(section["limit"], ROWS_PER_SOURCE))
    if "group_size" in keys:  # GRPO: groups of two still have a relative advantage
        yield change("group_size", min(section["group_size"], SAMPLES_PER_PROMPT))
    if {"queries", "model"} <= keys and section.get("kind") == "magpie":
        yield change("queries", min(section["queries"], QUERIES_KEPT))
    if {"examples", "model"} <= keys and section.get("kind") == "skillmix":
        yield change("examples", min(section["examples"], QUERIES_KEPT))
    if "tensor_parallel_size" in keys and section["kind"] != "openai":  # a local engine
        yield change("tensor_parallel_size", 1, CPU)
        yield change("enforce_eager", True, CPU)
        if section["dtype"] in ("auto", "bfloat16", "float16"):
            yield change("dtype", "float32", CPU)
    if "global_batch_size" in keys:  # a training section
        yield from _training(section, change)
    if "max_new_tokens" in keys and "checklist_max_new_tokens" in keys:  # a judge
        yield change("max_new_tokens", min(section["max_new_tokens"], JUDGE_NEW_TOKENS))
        yield change(
            "checklist_max_new_tokens", min(section["checklist_max_new_tokens"], JUDGE_NEW_TOKENS)
        )
    if path == ("data",):
        yield change("max_queries", _at_most(section["max_queries"], QUERIES_KEPT))
    if path == ("online",):
        yield change("iterations", min(section["iterations"], ONLINE_ITERATIONS))
        yield change("prompts_per_iteration", min(section["prompts_per_iteration"], ONLINE_PROMPTS))
        if section["eval_after_iteration"]:
            yield change(
                "eval_items_per_iteration",
                _at_most(section["eval_items_per_iteration"], EVAL_ITEMS),
            )
    if path == ("eval",):
        yield change("max_items", _at_most(section["max_items"], EVAL_ITEMS))


def _training(section: dict[str, Any], change) -> Iterator[Change]:
    yield change("epochs", min(section["epochs"], 1.0))
    yield change("max_steps", _at_most(section["max_steps"], TRAIN_STEPS))
    yield change("save_steps", 1, "a checkpoint every step, so resume runs")
    yield change("global_batch_size", min(section["global_batch_size"], TRAIN_BATCH))
    yield change("micro_batch_size", 1)
    yield change("max_length", min(section["max_length"], TRAIN_MAX_LENGTH))
    if section["precision"] != "fp32":
        yield change("precision", "fp32", CPU)


def _stand_in_needs(data: dict[str, Any]) -> Iterator[Change]:
    boot = data["bootstrap"]
    if not boot["guided_decoding"]:
        yield Change(
            ("bootstrap", "guided_decoding"), False, True, f"{STAND_IN}: the shape is forced"
        )
        yield Change(
            ("bootstrap", "guided_max_chars"), boot["guided_max_chars"], GUIDED_MAX_CHARS, SIZE
        )
    if data["data"]["difficulty_filter"]:
        yield Change(
            ("data", "difficulty_threshold"),
            data["data"]["difficulty_threshold"],
            0,
            f"{STAND_IN}: every query passes",
        )
