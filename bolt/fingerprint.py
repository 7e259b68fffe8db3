"""Stage fingerprints: a hash of exactly what changes a stage's output.

fingerprint = sha256(stage name, the output-relevant stage config, the upstream
fingerprints, the stage's code version). It names the output folder and is the Prefect
cache key, so a rerun finds finished work and a change anywhere upstream flows down.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel

from bolt.config import output_value

FINGERPRINT_CHARS = 16


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def fingerprint(
    stage: str,
    config: BaseModel | dict[str, Any],
    upstream: dict[str, str] | None = None,
    code_version: str = "1",
) -> str:
    """Hex digest (16 chars) of the stage, its output-relevant config and its inputs."""
    payload = {
        "stage": stage,
        # Models nested anywhere (a stage section, a catalog entry) count only by the
        # fields that change outputs: concurrency or a cost figure never forks a stage.
        "config": output_value(config),
        "upstream": dict(sorted((upstream or {}).items())),
        "code_version": code_version,
    }
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()[:FINGERPRINT_CHARS]
