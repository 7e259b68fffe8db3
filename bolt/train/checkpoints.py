"""Training checkpoints in the artifact store, so a job relaunched on other nodes resumes.

Layout under the stage folder: ``checkpoints/checkpoint-<step>/...`` (the HF Trainer's
folder as written, DeepSpeed shards included) and ``checkpoints/checkpoint-<step>.complete.json``,
written by world rank 0 only after every rank has uploaded its files. A checkpoint
without that marker was cut short by a crash and is never resumed from.

Each rank uploads the files it wrote: DeepSpeed names per-rank shards
``*zero_pp_rank_<r>_*``; everything else is rank 0's. So uploads run in parallel and
a shared filesystem does not upload the same bytes from every node.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from bolt.store import ArtifactStore

PREFIX = "checkpoints"
MARKER_SUFFIX = ".complete.json"
_STEP = re.compile(r"^checkpoint-(\d+)$")
_RANK_SHARD = re.compile(r"zero_pp_rank_(\d+)_")


def checkpoint_name(step: int) -> str:
    return f"checkpoint-{step}"


def owner_rank(relpath: str) -> int:
    """The world rank that wrote (and uploads) a file of a checkpoint folder."""
    match = _RANK_SHARD.search(Path(relpath).name)
    return int(match.group(1)) if match else 0


def files_of_rank(checkpoint_dir: Path, rank: int) -> list[Path]:
    return [
        p
        for p in sorted(checkpoint_dir.rglob("*"))
        if p.is_file() and owner_rank(p.relative_to(checkpoint_dir).as_posix()) == rank
    ]


def upload_rank_files(
    store: ArtifactStore, stage: str, fingerprint: str, checkpoint_dir: Path, rank: int
) -> int:
    """Upload this rank's files of ``checkpoint_dir``; returns how many."""
    files = files_of_rank(checkpoint_dir, rank)
    for path in files:
        rel = path.relative_to(checkpoint_dir).as_posix()
        store.put_file(stage, fingerprint, f"{PREFIX}/{checkpoint_dir.name}/{rel}", path)
    return len(files)


def mark_complete(
    store: ArtifactStore, stage: str, fingerprint: str, step: int, meta: dict
) -> None:
    store.put_json(stage, fingerprint, f"{PREFIX}/{checkpoint_name(step)}{MARKER_SUFFIX}", meta)


def mark_local(output_dir: Path, step: int) -> None:
    """Record that ``output_dir`` holds checkpoint ``step`` complete (see fetch_checkpoint)."""
    (output_dir / f"{checkpoint_name(step)}{MARKER_SUFFIX}").write_text("{}\n")


def completed_steps(store: ArtifactStore, stage: str, fingerprint: str) -> list[int]:
    """Steps of the checkpoints every rank finished uploading, ascending."""
    steps = []
    for rel in store.list_files(stage, fingerprint, PREFIX):
        name = rel.removeprefix(f"{PREFIX}/")
        if "/" not in name and name.endswith(MARKER_SUFFIX):
            match = _STEP.match(name.removesuffix(MARKER_SUFFIX))
            if match:
                steps.append(int(match.group(1)))
    return sorted(steps)


def fetch_checkpoint(
    store: ArtifactStore, stage: str, fingerprint: str, step: int, output_dir: Path
) -> Path:
    """Copy checkpoint ``step`` from the store into ``output_dir`` (skipped when a complete
    local copy is there already, e.g. a rerun on the same node)."""
    name = checkpoint_name(step)
    local = output_dir / name
    marker = output_dir / f"{name}{MARKER_SUFFIX}"
    if marker.is_file():
        return local
    staging = output_dir / f".{name}.fetching"
    shutil.rmtree(staging, ignore_errors=True)
    prefix = f"{PREFIX}/{name}/"
    for rel in store.list_files(stage, fingerprint, f"{PREFIX}/{name}"):
        store.fetch_file(stage, fingerprint, rel, staging / rel.removeprefix(prefix))
    shutil.rmtree(local, ignore_errors=True)
    staging.rename(local)
    mark_local(output_dir, step)
    return local
