"""A model named the way the pipeline names models (``sft/<fp>``, ``online-policy/<fp>``,
or ``catalog/<name>``), fetched by the job that needs it into its own scratch.

This is how a training or reference job gets its initial policy or reference model: the
worker passes the name, never a folder of its own, so the job depends on nothing but
the store (and, for a catalog model, the catalog's own source).
"""

from __future__ import annotations

import fcntl
import shutil
from pathlib import Path

from bolt.config import PipelineConfig
from bolt.stages import Stage
from bolt.store import ArtifactStore
from bolt.train.fingerprints import MODEL_DIR

# Stages whose manifests name a trained model under MODEL_DIR.
MODEL_STAGES = (Stage.sft, Stage.online_policy)
CATALOG = "catalog"
FETCHED = ".bolt-fetched"


def model_id(stage: str, fp: str) -> str:
    """The id of a stored model, as policy and reference fingerprints name it."""
    return f"{stage}/{fp}"


def parse_model_id(ident: str) -> tuple[str, str]:
    """(stage, fingerprint) of a stored model, or (``catalog``, name) of a catalog model
    (a bare name counts as a catalog name)."""
    stage, sep, rest = ident.partition("/")
    if not sep:
        return CATALOG, ident
    if stage == CATALOG or stage in MODEL_STAGES:
        return stage, rest
    known = ", ".join([*(f"{s}/<fp>" for s in MODEL_STAGES), f"{CATALOG}/<name>"])
    raise ValueError(f"model id {ident!r} names no model (expected {known})")


def fetch_model(cfg: PipelineConfig, store: ArtifactStore, ident: str, scratch: Path) -> str:
    """A local folder of the model ``ident``: a stored model is copied from the store into
    ``scratch/models`` once (under a lock, so the ranks of one node fetch it once; a
    marker written last, so an interrupted copy is redone); a catalog model resolves
    from its own source."""
    stage, name = parse_model_id(ident)
    if stage == CATALOG:
        from bolt.models import resolve_model

        return resolve_model(cfg.models, name, cfg.storage.s3)
    manifest = store.require(stage, name)
    dest = scratch / "models" / stage / name
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest.parent / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (dest / FETCHED).is_file():
            shutil.rmtree(dest, ignore_errors=True)
            store.get_dir(manifest, MODEL_DIR, dest)
            (dest / FETCHED).write_text(f"{ident}\n")
    return str(dest)
