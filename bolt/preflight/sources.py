"""Preflight of the models and datasets a config names (nothing downloaded)."""

from __future__ import annotations

from pathlib import Path

from bolt.config import (
    BenchmarkName,
    EngineKind,
    PipelineConfig,
    RewardKind,
)
from bolt.preflight.base import PROBE_TIMEOUT_S, Context, Problem, bounded, offline

# --- models -----------------------------------------------------------------------


def _served(cfg: PipelineConfig, ref_key: str) -> bool:
    """Whether the model behind ``ref_key`` is only asked through an OpenAI-compatible
    server (its weights are not needed here). The SFT base model and sequence
    classifiers are always loaded."""
    from bolt.stages import Stage

    stage = {
        "data.labeler_model": Stage.curation,
        "bootstrap.teacher_model": Stage.bootstrap,
        "eval.judge.model": Stage.eval,
        "eval.baseline_model": Stage.eval_answers,
    }.get(ref_key)
    if ref_key.startswith(("filter.rewards[", "online.rewards[")):
        section = ref_key.split(".")[0]
        index = int(ref_key.split("[")[1].split("]")[0])
        if getattr(cfg, section).rewards[index].kind != RewardKind.lm_checklist:
            return False
        stage = Stage.score if section == "filter" else Stage.online_scores
    return stage is not None and cfg.engine_settings(stage).kind == EngineKind.openai


def check_models(ctx: Context) -> list[Problem]:
    """Every catalog entry a stage loads: its weights are where the entry says."""
    cfg = ctx.cfg
    users: dict[str, list[str]] = {}
    for ref_key, name in cfg.model_references():
        if not _served(cfg, ref_key):
            users.setdefault(name, []).append(ref_key)
    problems = []
    for name, refs in users.items():
        for key, why in _model_problems(ctx, name):
            problems.append(Problem(key, f"{why} (used by {', '.join(refs)})"))
    return problems


def _model_problems(ctx: Context, name: str) -> list[tuple[str, str]]:
    from bolt.models import ModelError, cache_root, find_package_gguf, is_prepared

    entry = ctx.cfg.models.catalog[name]
    base = f"models.catalog.{name}"
    if entry.path:
        path = Path(entry.path).expanduser()
        if not path.is_dir():
            return [(f"{base}.path", f"{entry.path!r} does not exist")]
        if not (path / "config.json").is_file():
            return [(f"{base}.path", f"{entry.path!r} holds no config.json: not a model folder")]
        return []
    if is_prepared(cache_root(ctx.cfg.models) / name):
        return []
    if entry.gguf_package:
        try:
            find_package_gguf(entry.gguf_package, entry.gguf_file)
        except ModelError as e:
            field_name = "gguf_file" if entry.gguf_file else "gguf_package"
            return [(f"{base}.{field_name}", str(e))]
        return []
    if entry.s3_uri:
        uri = entry.s3_uri.rstrip("/") + "/config.json"
        why = ctx.s3.object(uri)
        return [(f"{base}.s3_uri", f"{entry.s3_uri}: not a model ({why})")] if why else []
    return _hub_model_problems(entry.hf_id or "", entry.revision, base)


def _hub_model_problems(hf_id: str, revision: str | None, base: str) -> list[tuple[str, str]]:
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(hf_id, "config.json", revision=revision), str):
        return []
    at = f"{hf_id}@{revision}" if revision else hf_id
    if offline():
        return [
            (
                f"{base}.hf_id",
                (
                    f"{at} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set: "
                    "download it where the hub is reachable, or point the entry at a path or s3_uri"
                ),
            )
        ]
    why = _hub_access(hf_id, "model")
    return [(f"{base}.hf_id", f"{at} is not cached and {why}")] if why else []


def _hub_access(repo_id: str, repo_type: str) -> str | None:
    """Why the hub will not serve ``repo_id`` to this user, or None (nothing downloaded)."""
    from huggingface_hub import auth_check

    try:
        bounded(lambda: auth_check(repo_id, repo_type=repo_type), PROBE_TIMEOUT_S)
    except Exception as e:  # noqa: BLE001 -- gated, missing, unauthorised, unreachable
        return f"the hub does not serve it here ({type(e).__name__}: {e})"
    return None


# --- datasets ---------------------------------------------------------------------


def check_datasets(ctx: Context) -> list[Problem]:
    """Every query source, online prompt source and benchmark's items exist."""
    cfg = ctx.cfg
    targets = [(f"data.sources[{i}].uri", s.uri) for i, s in enumerate(cfg.data.sources)]
    if not cfg.data.sources:
        targets.append(("data.sources", ""))
    if cfg.online.iterations > 0:
        # DRIFT reads its dissatisfaction rows, the other algorithms the prompt sources.
        key, sources = "online.prompt_sources", cfg.online.prompt_sources
        if cfg.online.drift is not None and cfg.online.algorithm == "drift":
            key, sources = "online.drift.sources", cfg.online.drift.sources
        targets += [(f"{key}[{i}].uri", s.uri) for i, s in enumerate(sources)]
        if not sources:
            targets.append((key, ""))
    problems = []
    for benchmark in cfg.eval.benchmarks:
        uri = cfg.eval.data.get(benchmark)
        if uri is None and not _has_default_items(benchmark):
            problems.append(
                Problem(
                    f"eval.data.{benchmark.value}",
                    f"is not set: {benchmark.value} is in eval.benchmarks but has no items",
                )
            )
        elif uri is not None:
            targets.append((f"eval.data.{benchmark.value}", uri))
    if cfg.eval.judge.checklist_weights_uri:
        targets.append(("eval.judge.checklist_weights_uri", cfg.eval.judge.checklist_weights_uri))
    targets += _official_files(cfg)
    for key, uri in targets:
        if not uri:
            problems.append(Problem(key, "is empty: the stage would read nothing"))
        elif why := uri_problem(ctx, uri):
            problems.append(Problem(key, why))
    return problems


def _official_files(cfg: PipelineConfig) -> list[tuple[str, str]]:
    """The official files the benchmarks of ``cfg`` read beside their items: Arena-Hard's
    baseline answers and leaderboard pool, WildBench's reference outputs."""
    targets = []
    if BenchmarkName.arena_hard in cfg.eval.benchmarks:
        arena = cfg.eval.arena_hard
        if arena.baseline_answers:
            targets.append(("eval.arena_hard.baseline_answers", arena.baseline_answers))
        for field in ("leaderboard_judgments", "leaderboard_answers"):
            uris = getattr(arena, field)
            targets += [(f"eval.arena_hard.{field}[{i}]", u) for i, u in enumerate(uris)]
    if BenchmarkName.wildbench in cfg.eval.benchmarks:
        references = cfg.eval.wildbench.references
        targets += [(f"eval.wildbench.references.{m}", u) for m, u in references.items()]
    return targets


def _has_default_items(benchmark: BenchmarkName) -> bool:
    from bolt.evals.registry import BENCHMARKS

    return BENCHMARKS[benchmark].load_default is not None


def uri_problem(ctx: Context, uri: str) -> str | None:
    """Why the file, object or dataset at ``uri`` cannot be read, or None."""
    if uri.startswith("s3://"):
        return ctx.s3.object(uri)
    if uri.startswith("hf://"):
        name = uri.removeprefix("hf://")
        if Path(name).is_dir():
            return None
        repo_id = name.partition(":")[0]
        if offline():
            from huggingface_hub import constants

            cached = Path(constants.HF_HUB_CACHE) / f"datasets--{repo_id.replace('/', '--')}"
            return None if cached.is_dir() else f"{uri}: not cached and HF_HUB_OFFLINE is set"
        why = _hub_access(repo_id, "dataset")
        return f"{uri}: {why}" if why else None
    if "://" in uri:
        return f"{uri}: unsupported scheme (a local path, s3:// or hf://)"
    path = Path(uri).expanduser()
    if not path.exists():
        return f"{uri!r} does not exist (relative paths start at {Path.cwd()})"
    return None
