"""The SFT set and each iteration's training data (preference pairs; GRPO's scored groups)
as Hugging Face dataset folders:
``data/train-0000i-of-0000n.parquet`` (one Parquet shard per store shard, the records'
fields as columns) and a ``README.md`` dataset card whose YAML names the files, so
``datasets.load_dataset(folder)`` and the Hub's viewer read them as one ``train`` split.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from huggingface_hub import DatasetCard, DatasetCardData

from bolt.config import OnlineAlgorithm
from bolt.export import cards
from bolt.export.lineage import data_algorithm
from bolt.records import GroupSample, PreferencePair, SftExample
from bolt.store import ArtifactStore, Manifest

DATA_DIR = "data"
SPLIT = "train"


@dataclass(frozen=True)
class Exported:
    """One folder an export wrote: a dataset or a model, and where it came from."""

    kind: str  # "dataset" or "model"
    name: str  # the folder's name, and the repo id's suffix when pushed
    folder: Path
    source: str  # stage/fingerprint in the store
    rows: int | None = None


def _message_list():
    import datasets

    return datasets.List({"role": datasets.Value("string"), "content": datasets.Value("string")})


def sft_features():
    import datasets

    return datasets.Features(
        {
            "id": datasets.Value("string"),
            "query_id": datasets.Value("string"),
            "messages": _message_list(),
            "reward": datasets.Value("float64"),
        }
    )


def pair_features():
    import datasets

    return datasets.Features(
        {
            "prompt_id": datasets.Value("string"),
            "prompt": _message_list(),
            "chosen": datasets.Value("string"),
            "rejected": datasets.Value("string"),
            "chosen_reward": datasets.Value("float64"),
            "rejected_reward": datasets.Value("float64"),
            "iteration": datasets.Value("int64"),
        }
    )


def group_features():
    import datasets

    return datasets.Features(
        {
            "prompt_id": datasets.Value("string"),
            "prompt": _message_list(),
            "completion": datasets.Value("string"),
            "sample_index": datasets.Value("int64"),
            "reward": datasets.Value("float64"),
            "advantage": datasets.Value("float64"),
            "malformed": datasets.Value("bool"),
            "iteration": datasets.Value("int64"),
        }
    )


@contextmanager
def _quiet():
    """No per-file progress bars from ``datasets`` (the CLI shows one step for all)."""
    import datasets

    was_on = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_on:
            datasets.enable_progress_bars()


def write_parquet_shards(
    store: ArtifactStore, manifest: Manifest, record_type: type, features: Any, folder: Path
) -> list[Any]:
    """One Parquet file per store shard (an empty shard keeps its schema) in a fresh
    ``folder``; returns the records."""
    import datasets

    if folder.exists():  # a previous export's shards must not join this one's
        shutil.rmtree(folder)
    (folder / DATA_DIR).mkdir(parents=True)
    total = max(1, len(manifest.shards))
    everything: list[Any] = []
    shards = manifest.shards or [None]
    for i, info in enumerate(shards):
        records = (
            []
            if info is None
            else list(store.read_shard(manifest.stage, manifest.fingerprint, info, record_type))
        )
        everything += records
        rows = [r.model_dump(mode="json") for r in records]
        columns = {name: [row[name] for row in rows] for name in features}
        path = folder / DATA_DIR / f"{SPLIT}-{i:05d}-of-{total:05d}.parquet"
        with _quiet():
            datasets.Dataset.from_dict(columns, features=features).to_parquet(str(path))
    return everything


def card_data(n_rows: int, license: str, tags: Sequence[str], pretty_name: str) -> DatasetCardData:
    extra = {"license_name": "see-card"} if license == "other" else {}
    return DatasetCardData(
        license=license,
        language=["en"],
        task_categories=["text-generation"],
        tags=[*cards.TAGS, *tags],
        size_categories=[cards.size_category(n_rows)],
        pretty_name=pretty_name,
        configs=[
            {
                "config_name": "default",
                "data_files": [{"split": SPLIT, "path": f"{DATA_DIR}/{SPLIT}-*.parquet"}],
            }
        ],
        **extra,
    )


def render(data: DatasetCardData, body: str) -> DatasetCard:
    """The card: YAML front matter from ``data``, then the markdown ``body``."""
    return DatasetCard(f"---\n{data.to_yaml()}\n---\n\n{body}")


def _sft_body(
    title: str, manifest: Manifest, records: list[SftExample], lineage: list[Manifest], uri: str
) -> str:
    rewards = cards.numbers(r.reward for r in records)
    turns = Counter(len(r.messages) for r in records)
    chars = cards.numbers(len(r.messages[-1].content) for r in records if r.messages)
    intro = (
        f"# {title}\n\nThe LongCoT SFT set of BOLT's §3.1: bootstrapped long chain-of-thought "
        f"answers that passed the format filter and the reward selection, as chat "
        f"conversations (`messages`, the assistant turn holds the thoughts and the response). "
        f"{len(records):,} examples from stored output `{cards.ref(manifest)}`; "
        f"conversations by number of turns: {dict(sorted(turns.items()))}."
    )
    usage = (
        "## Use\n\n```python\nimport datasets\n\n"
        'ds = datasets.load_dataset("<this repo or folder>", split="train")\n'
        'print(ds[0]["messages"])\n```'
    )
    return cards.join(
        intro,
        usage,
        cards.counts_section(manifest),
        cards.stats_section(
            "Filter and reward statistics",
            manifest,
            {"reward of kept examples": rewards, "assistant turn (chars)": chars},
        ),
        cards.provenance_section(manifest, lineage, uri),
        cards.citation_section(),
    )


def _pairs_intro(manifest: Manifest, n_pairs: int) -> str:
    iteration = manifest.config.get("iteration")
    if data_algorithm(manifest) == OnlineAlgorithm.drift:
        made = (
            f"The preference pairs of DRIFT iteration {iteration}: for each real turn a user "
            f"was dissatisfied with, the policy's revision given the user's feedback "
            f"(chosen) against that turn (rejected), under the original prompt without the "
            f"feedback; preferred by construction (rewards 1 against 0)."
        )
    else:
        made = (
            f"The preference pairs of online DPO iteration {iteration} (BOLT §3.3): for each "
            f"prompt, samples of the current policy scored by the reward backends, the "
            f"chosen sample against the rejected one "
            f"(`{manifest.config.get('pair_strategy')}`)."
        )
    return f"{made} {n_pairs:,} pairs from stored output `{cards.ref(manifest)}`."


def _pairs_body(
    title: str, manifest: Manifest, records: list[PreferencePair], lineage: list[Manifest], uri: str
) -> str:
    computed = {
        "chosen reward": cards.numbers(p.chosen_reward for p in records),
        "rejected reward": cards.numbers(p.rejected_reward for p in records),
        "reward gap": cards.numbers(p.chosen_reward - p.rejected_reward for p in records),
        "chosen (chars)": cards.numbers(len(p.chosen) for p in records),
        "rejected (chars)": cards.numbers(len(p.rejected) for p in records),
    }
    usage = (
        "## Use\n\nColumns: `prompt` (chat messages), `chosen` and `rejected` (the assistant "
        "text), their rewards and the iteration. For TRL's `DPOTrainer`, map `chosen` and "
        "`rejected` to `[{'role': 'assistant', 'content': ...}]` for the conversational format."
    )
    return cards.join(
        f"# {title}\n\n{_pairs_intro(manifest, len(records))}",
        usage,
        cards.counts_section(manifest),
        cards.stats_section("Pair statistics", manifest, computed),
        cards.provenance_section(manifest, lineage, uri),
        cards.citation_section(data_algorithm(manifest)),
    )


def _groups_body(
    title: str, manifest: Manifest, records: list[GroupSample], lineage: list[Manifest], uri: str
) -> str:
    intro = (
        f"# {title}\n\nThe scored groups of GRPO iteration {manifest.config.get('iteration')} "
        f"(RLMT): per prompt, a group of the policy's samples (thinking, then the response), "
        f"each with its reward on the response only (strict mode scores a malformed "
        f"thinking block as an empty response) and its group-relative advantage. "
        f"{len(records):,} samples from stored output `{cards.ref(manifest)}`."
    )
    computed = {
        "reward": cards.numbers(r.reward for r in records),
        "advantage": cards.numbers(r.advantage for r in records),
        "completion (chars)": cards.numbers(len(r.completion) for r in records),
    }
    usage = (
        "## Use\n\nColumns: `prompt` (chat messages), `completion` (the sampled text), its "
        "`sample_index` in the prompt's group, `reward`, `advantage`, `malformed` and the "
        "iteration."
    )
    return cards.join(
        intro,
        usage,
        cards.counts_section(manifest),
        cards.stats_section("Group statistics", manifest, computed),
        cards.provenance_section(manifest, lineage, uri),
        cards.citation_section(OnlineAlgorithm.grpo),
    )


def export_sft_set(
    store: ArtifactStore,
    manifest: Manifest,
    lineage: list[Manifest],
    folder: Path,
    title: str,
    license: str,
) -> Exported:
    records = write_parquet_shards(store, manifest, SftExample, sft_features(), folder)
    uri = store.uri(manifest.stage, manifest.fingerprint)
    body = _sft_body(title, manifest, records, lineage, uri)
    render(card_data(len(records), license, ["sft"], title), body).save(folder / "README.md")
    return Exported("dataset", folder.name, folder, cards.ref(manifest), len(records))


def export_pairs(
    store: ArtifactStore,
    manifest: Manifest,
    lineage: list[Manifest],
    folder: Path,
    title: str,
    license: str,
) -> Exported:
    records = write_parquet_shards(store, manifest, PreferencePair, pair_features(), folder)
    uri = store.uri(manifest.stage, manifest.fingerprint)
    body = _pairs_body(title, manifest, records, lineage, uri)
    algorithm = data_algorithm(manifest)
    tags = ["dpo", "preference"] + ([str(algorithm)] if algorithm != OnlineAlgorithm.dpo else [])
    render(card_data(len(records), license, tags, title), body).save(folder / "README.md")
    return Exported("dataset", folder.name, folder, cards.ref(manifest), len(records))


def export_groups(
    store: ArtifactStore,
    manifest: Manifest,
    lineage: list[Manifest],
    folder: Path,
    title: str,
    license: str,
) -> Exported:
    records = write_parquet_shards(store, manifest, GroupSample, group_features(), folder)
    uri = store.uri(manifest.stage, manifest.fingerprint)
    body = _groups_body(title, manifest, records, lineage, uri)
    tags = ["grpo", "rlmt"]
    render(card_data(len(records), license, tags, title), body).save(folder / "README.md")
    return Exported("dataset", folder.name, folder, cards.ref(manifest), len(records))
