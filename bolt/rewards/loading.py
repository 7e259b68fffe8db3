"""Loading reward and judge models from the catalog: the path, the dtype, and remote code.

A reward model such as ArmoRM-Llama3-8B ships its own modelling code (``auto_map`` in
its ``config.json``), which transformers runs only with ``trust_remote_code=True``.
That code runs with the job's credentials, so it is allowed per model, in two places
of the config: the catalog entry asks for it (``trust_remote_code: true``) and the
model's id is listed in ``models.remote_code_allowlist``. Anything else is refused
with an error naming those keys, including a model that needs its own code but never
asked: transformers would otherwise quietly load the built-in Llama class in its
place, with a freshly initialised (random) reward head.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bolt.config import ModelEntry, ModelsConfig, S3Options
from bolt.models import catalog_entry, resolve_model
from bolt.rewards.base import RewardError

if TYPE_CHECKING:
    import torch


def model_ident(entry: ModelEntry) -> str:
    """The id that ``models.remote_code_allowlist`` lists (as the config validator reads it)."""
    ident = entry.hf_id or entry.path or entry.s3_uri or entry.gguf_package
    assert ident is not None  # ModelEntry requires exactly one source
    return ident


def remote_code_allowed(models: ModelsConfig, name: str) -> bool:
    """Whether catalog model ``name`` may run its own code; raises when it asks without
    being allow-listed."""
    entry = catalog_entry(models, name)
    if entry.trust_remote_code and model_ident(entry) not in models.remote_code_allowlist:
        raise RewardError(
            f"models.catalog.{name}.trust_remote_code is true but {model_ident(entry)!r} is not "
            "in models.remote_code_allowlist; add it there to run the model's own code"
        )
    return entry.trust_remote_code


def needs_remote_code(model_path: str, auto_class: str, revision: str | None = None) -> bool:
    """Whether the model's config maps ``auto_class`` to code shipped with the model."""
    from transformers import PretrainedConfig

    config, _ = PretrainedConfig.get_config_dict(model_path, revision=revision)
    return auto_class in config.get("auto_map", {})


def checked_model_path(
    models: ModelsConfig, name: str, auto_class: str, s3: S3Options | None = None
) -> tuple[str, bool]:
    """The loadable path of catalog model ``name`` and its ``trust_remote_code`` value.

    Refuses a model whose ``auto_class`` (e.g. ``AutoModelForSequenceClassification``)
    is its own code unless the config allows that code (see the module docstring).
    """
    allowed = remote_code_allowed(models, name)
    path = resolve_model(models, name, s3=s3)
    if not allowed and needs_remote_code(path, auto_class, catalog_entry(models, name).revision):
        entry = catalog_entry(models, name)
        raise RewardError(
            f"model {name!r} ({model_ident(entry)}) brings its own {auto_class} code; set "
            f"models.catalog.{name}.trust_remote_code: true and add {model_ident(entry)!r} to "
            "models.remote_code_allowlist to run it"
        )
    return path, allowed


def dtype_for(device: str) -> torch.dtype:
    """bf16 on GPUs (how ArmoRM and Skywork are served); fp32 on CPUs, where bf16 is
    emulated and slow on most chips."""
    import torch

    return torch.bfloat16 if device.startswith("cuda") else torch.float32
