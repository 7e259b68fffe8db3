"""Preflight of credentials, storage, the cluster and the training memory plan."""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
from pathlib import Path
from urllib.parse import urlparse

from bolt.config import (
    EngineConfig,
    EngineKind,
    JudgeKind,
    Launcher,
    PipelineConfig,
)
from bolt.preflight.base import (
    PROBE_TIMEOUT_S,
    S3_CONNECT_TIMEOUT_S,
    Context,
    Problem,
    bounded,
    split_s3,
)

# The sections with their own `engine` override (stages without one use `engine`).
ENGINE_SECTIONS = ("data", "bootstrap", "filter", "online", "eval")


def engines(cfg: PipelineConfig) -> list[tuple[str, EngineConfig]]:
    """Each engine setting a stage runs on, under the key it is written at."""
    found: dict[str, EngineConfig] = {}
    for section in ENGINE_SECTIONS:
        override = getattr(cfg, section).engine
        found.setdefault(f"{section}.engine" if override else "engine", override or cfg.engine)
    if cfg.eval.judge.kind == JudgeKind.api:
        found["eval.judge.engine"] = cfg.eval.judge.engine
    return list(found.items())


def check_credentials(ctx: Context) -> list[Problem]:
    """API keys of OpenAI-compatible engines and the API judge; AWS credentials and the
    storage bucket when anything lives on S3."""
    cfg, problems = ctx.cfg, []
    for key, engine in engines(cfg):
        if engine.kind != EngineKind.openai:
            continue
        if not engine.base_url:
            problems.append(Problem(f"{key}.base_url", "is unset: where is the server?"))
        elif why := _tcp_problem(engine.base_url):
            problems.append(Problem(f"{key}.base_url", why))
        secret = key == "eval.judge.engine" and cfg.eval.judge.api_key_secret_block
        if not secret and not os.environ.get(engine.api_key_env):
            problems.append(
                Problem(
                    f"{key}.api_key_env",
                    f"environment variable {engine.api_key_env} is not set",
                )
            )
    return problems + _s3_credentials(ctx)


def _tcp_problem(url: str) -> str | None:
    parsed = urlparse(url)
    if not parsed.hostname:
        return f"{url!r} is not a URL"
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=S3_CONNECT_TIMEOUT_S):
            return None
    except OSError as e:
        return f"{url} does not answer ({type(e).__name__}: {e})"


def _s3_credentials(ctx: Context) -> list[Problem]:
    cfg = ctx.cfg
    keys = [("storage.root", cfg.storage.root)] if cfg.storage.root.startswith("s3://") else []
    keys += [
        (f"models.catalog.{n}.s3_uri", e.s3_uri) for n, e in cfg.models.catalog.items() if e.s3_uri
    ]
    keys += [(f"data.sources[{i}].uri", s.uri) for i, s in enumerate(cfg.data.sources)]
    keys += [(f"eval.data.{b.value}", u) for b, u in cfg.eval.data.items()]
    keys = [(k, u) for k, u in keys if u.startswith("s3://")]
    if not keys:
        return []
    if why := ctx.s3.credentials():
        key = "storage.s3.profile" if cfg.storage.s3.profile else keys[0][0]
        return [Problem(key, why)]
    if cfg.storage.root.startswith("s3://"):
        why = ctx.s3.bucket(split_s3(cfg.storage.root)[0])
        return [Problem("storage.root", why)] if why else []
    return []


def check_storage(ctx: Context) -> list[Problem]:
    """A local storage root can be created and written."""
    root = ctx.cfg.storage.root
    if not root.startswith("file://"):
        return []
    path = Path(root.removeprefix("file://")).expanduser()
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is None or not os.access(existing, os.W_OK):
        return [Problem("storage.root", f"{path} cannot be written (nearest folder: {existing})")]
    return []


# --- cluster and memory -----------------------------------------------------------


def _run(command: list[str]) -> tuple[int, str]:
    """(exit status, output) of a short command; status 124 when it hung."""
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        return 124, f"{command[0]} did not answer within {PROBE_TIMEOUT_S:.0f} s"
    except OSError as e:
        return 127, str(e)
    return done.returncode, (done.stdout + done.stderr).strip()


def check_cluster(ctx: Context) -> list[Problem]:
    """The launcher's tools answer; the accelerators the config asks for are here."""
    c = ctx.cfg.compute
    problems = _gpu_problems(ctx.cfg)
    if c.launcher == Launcher.slurm:
        problems += _slurm_problems(ctx.cfg)
    elif c.launcher == Launcher.kubernetes:
        problems += _kubernetes_problems(ctx.cfg)
    return problems


def _gpu_problems(cfg: PipelineConfig) -> list[Problem]:
    c = cfg.compute
    if c.device != "cuda":
        return []
    if not shutil.which("nvidia-smi"):
        return [Problem("compute.device", "is cuda but this machine has no nvidia-smi (no GPU)")]
    status, out = _run(["nvidia-smi", "-L"])
    gpus = sum(1 for line in out.splitlines() if line.startswith("GPU "))
    if status != 0 or gpus == 0:
        return [Problem("compute.device", f"is cuda but no GPU answers ({out[:200]})")]
    if c.launcher == Launcher.local and gpus < c.gpus_per_node:
        return [
            Problem(
                "compute.gpus_per_node",
                f"is {c.gpus_per_node} but this machine has {gpus} GPU(s) (launcher local)",
            )
        ]
    return []


def _slurm_problems(cfg: PipelineConfig) -> list[Problem]:
    missing = [tool for tool in ("sbatch", "squeue", "sinfo") if not shutil.which(tool)]
    if missing:
        return [
            Problem("compute.launcher", f"is slurm but {', '.join(missing)} is not on PATH here")
        ]
    status, out = _run(["sinfo", "-h", "-o", "%P"])
    if status != 0:
        return [Problem("compute.launcher", f"is slurm but sinfo fails: {out[:300]}")]
    partitions = {p.rstrip("*") for p in out.split()}
    wanted = cfg.compute.slurm_partition
    if wanted and wanted not in partitions:
        known = ", ".join(sorted(partitions)) or "none"
        return [
            Problem("compute.slurm_partition", f"{wanted!r} is not a partition (known: {known})")
        ]
    return []


def _kubernetes_problems(cfg: PipelineConfig) -> list[Problem]:
    if importlib.util.find_spec("kubernetes") is None:
        return [
            Problem(
                "compute.launcher",
                "is kubernetes but the kubernetes package is not installed "
                "(pip install 'bolt-pipeline[k8s]')",
            )
        ]
    from kubernetes import client, config

    try:
        try:
            config.load_incluster_config()
        except config.ConfigException:
            config.load_kube_config()
    except Exception as e:  # noqa: BLE001 -- missing file, bad context, bad YAML
        return [Problem("compute.launcher", f"is kubernetes but no kube config loads: {e}")]
    namespace = cfg.compute.namespace
    try:
        bounded(
            lambda: client.CoreV1Api().read_namespace(namespace, _request_timeout=PROBE_TIMEOUT_S),
            PROBE_TIMEOUT_S + 1,
        )
    except Exception as e:  # noqa: BLE001 -- unreachable, forbidden, not found
        return [Problem("compute.namespace", f"{namespace!r} cannot be read: {e}")]
    return []


def check_memory(ctx: Context) -> list[Problem]:
    """The training launcher's own plan check (batch divides the world size, the
    per-GPU share fits the device), run before anything else instead of at launch."""
    from bolt.train.job import TrainJob
    from bolt.train.launch import check_plan
    from bolt.train.plan import PlanError

    cfg = ctx.cfg
    sections = ["sft"] + (["online"] if cfg.online.iterations > 0 else [])
    problems = []
    for section in sections:
        job = TrainJob("preflight", "0" * 16, "", (), cfg.name, section=section)  # type: ignore[arg-type]
        try:
            check_plan(cfg, job)
        except PlanError as e:
            text = str(e)
            if "global_batch_size" in text and "multiple" in text:
                key = f"{section}.global_batch_size"
            else:
                key = "compute.gpu_type"
            problems.append(Problem(key, f"{section}: {text}"))
    return problems
