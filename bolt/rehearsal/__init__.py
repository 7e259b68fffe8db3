"""Rehearsal: run any config end to end on a CPU, small, before renting the GPUs.

``bolt rehearse configs/paper-8b.yaml`` runs the config's own stages with its own
launcher, storage layout, rewards, judges and benchmarks, through the same code as the
real run, with two differences, both printed:

- every size shrunk and the CPU in place of the accelerators (``bolt.rehearsal.shrink``);
- every catalog model replaced by a tiny stand-in of its family
  (``bolt.rehearsal.stand_ins``): random weights, but the real model's chat template,
  special tokens, missing pad token, context length and served name.

What it finds in minutes is what would otherwise fail hours into the real run: a missing
dataset, credential or work pool (preflight, first), a chat template the few-shot prompts
break, a tokenizer without a pad token, a job that reads the worker's disk instead of the
store, a served model asked for under the wrong name. Then, per stage, the rehearsal's
wall time is printed beside ``bolt plan``'s projection for the real run.

A model whose family is not known here (``bolt.rehearsal.families``) is named with
``--stand-in NAME=PATH``; a model the config already declares under 1B parameters runs as
it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bolt.config import PipelineConfig, RewardKind
from bolt.config_loader import ConfigError, Problem, RawConfig
from bolt.engines.live import served_name
from bolt.rehearsal.families import family_of, is_base_model
from bolt.rehearsal.shrink import Change, shrink
from bolt.rehearsal.stand_ins import Role, StandInSpec, build_stand_in

SMALL_ENOUGH_B = 1.0  # a declared model this small runs as it is
DEFAULT_CONTEXT = 8192  # a stand-in's context length when the catalog gives none


@dataclass(frozen=True)
class Replacement:
    name: str  # the catalog name
    real: str  # where the real weights come from
    stand_in: str  # the folder that replaces them ("" when the model is kept)
    family: str
    role: str
    pad_token: str | None
    served_name: str


@dataclass(frozen=True)
class Rehearsal:
    cfg: PipelineConfig
    changes: list[Change]
    replacements: list[Replacement]


def prepare(
    raw: RawConfig,
    donor: Path,
    stand_in_cache: Path,
    stand_ins: Mapping[str, str] | None = None,
) -> Rehearsal:
    """The rehearsal of the config in ``raw``: shrunk, its models replaced (stand-ins built
    under ``stand_in_cache`` from the vocabulary of the model folder ``donor``, or taken
    from ``stand_ins``: catalog name -> folder)."""
    real = raw.validate()
    stand_ins = dict(stand_ins or {})
    unknown = sorted(set(stand_ins) - set(real.models.catalog))
    if unknown:
        raise ConfigError([Problem("--stand-in", n, "not in models.catalog") for n in unknown])
    changes = shrink(real)
    for change in changes:
        raw.set(change.key, change.rehearsal, f"rehearsal: {change.dotted} ({change.why})")
    replacements = []
    for name, role in _model_roles(real).items():
        replacement = _replace(real, name, role, donor, stand_in_cache, stand_ins.get(name))
        replacements.append(replacement)
        if replacement.stand_in:
            raw.set(("models", "catalog", name), _entry(real, name, replacement), "rehearsal")
    return Rehearsal(raw.validate(), changes, replacements)


def _model_roles(cfg: PipelineConfig) -> dict[str, Role | None]:
    """Each catalog model a stage uses and what it is used as (None: an embedding model,
    which has no stand-in here)."""
    classifiers = {
        b.model
        for b in (*cfg.filter.rewards, *cfg.online.rewards)
        if b.kind == RewardKind.sequence_classifier
    }
    embedding = cfg.data.embedding.model if cfg.data.embedding is not None else None
    roles: dict[str, Role | None] = {}
    for _, name in cfg.model_references():
        if name == embedding:
            roles[name] = None
        else:
            roles[name] = Role.reward_model if name in classifiers else Role.causal_lm
    return roles


def _replace(
    cfg: PipelineConfig,
    name: str,
    role: Role | None,
    donor: Path,
    cache: Path,
    given: str | None,
) -> Replacement:
    entry = cfg.models.catalog[name]
    real = entry.hf_id or entry.path or entry.s3_uri or entry.gguf_package or name
    served = served_name(cfg.models, name)
    family = family_of(entry.hf_id) if entry.hf_id else None
    if given is not None:
        return Replacement(name, real, given, "given", str(role or "embedding"), None, served)
    if family is None or role is None:
        if entry.params_b is not None and entry.params_b <= SMALL_ENOUGH_B:
            return Replacement(
                name, real, "", "kept (small)", str(role or "embedding"), None, served
            )
        what = "its family" if role is not None else "an embedding model's stand-in"
        raise ConfigError(
            [
                Problem(
                    "rehearsal",
                    f"models.catalog.{name}",
                    f"{real!r}: {what} is not known here; pass --stand-in {name}=PATH "
                    "(a small model folder with the same tokenizer)",
                )
            ]
        )
    spec = StandInSpec(
        name,
        family,
        role,
        base_model=is_base_model(entry.hf_id or ""),
        context_length=entry.context_length or DEFAULT_CONTEXT,
    )
    folder = build_stand_in(spec, donor, cache)
    return Replacement(name, real, str(folder), family.name, str(role), family.pad, served)


def _entry(cfg: PipelineConfig, name: str, replacement: Replacement) -> dict:
    """The catalog entry of a stand-in: its folder, the real model's served name (so an
    OpenAI-compatible server is still asked for what the config asks for) and sizes."""
    entry = cfg.models.catalog[name]
    return {
        "path": replacement.stand_in,
        "served_name": replacement.served_name,
        "context_length": entry.context_length,
        # the stand-in's own size (fp32 weights), for preflight's memory plan
        "params_b": _params_b(Path(replacement.stand_in)),
    }


def _params_b(folder: Path) -> float:
    weights = sum(f.stat().st_size for f in folder.glob("*.safetensors"))
    return max(weights / 4 / 1e9, 1e-6)
