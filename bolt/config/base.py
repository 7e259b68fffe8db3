"""What every config section shares: strict parsing and the fingerprint rule.

The rule: a stage's fingerprint hashes the JSON of the config it reads, less the fields
marked ``AFFECTS_OUTPUT_NOT`` (concurrency, progress, batch sizes of pure throughput
knobs). That marker is the only way a field is kept out of a fingerprint; changing such
a field must not invalidate finished work.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.fields import FieldInfo

# Marks a field that changes how fast a stage runs but not what it writes.
AFFECTS_OUTPUT_NOT: dict[str, Any] = {"affects_output": False}


def override_of(section: str) -> dict[str, Any]:
    """Marks a stage's own copy of the top-level ``section``, used instead of it when set.

    Where a setting is written must not fork a stage, only what it resolves to: so the
    override is ``AFFECTS_OUTPUT_NOT`` itself, and a stage whose output depends on the
    section fingerprints the resolved value (``PipelineConfig.engine_settings``). The
    ``overrides`` key names the section in the JSON Schema and the config reference.
    """
    return {**AFFECTS_OUTPUT_NOT, "overrides": section}


# Marks a field added after the fingerprints were pinned: it enters ``output_fields``
# only while its value differs from its default, so every config that leaves it alone
# keeps the fingerprint it had before the field existed (set it once and it counts).
ENTERS_WHEN_SET: dict[str, Any] = {"enters_fingerprint": "when_set"}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_enum_values=False)


def _affects_output(field_extra: Any) -> bool:
    """False for a field marked AFFECTS_OUTPUT_NOT (or an override, built on it)."""
    return not (isinstance(field_extra, dict) and field_extra.get("affects_output") is False)


def _left_at_default(model: BaseModel, name: str, field: FieldInfo) -> bool:
    """True for an ``ENTERS_WHEN_SET`` field that still holds its default."""
    extra = field.json_schema_extra
    if not (isinstance(extra, dict) and extra.get("enters_fingerprint") == "when_set"):
        return False
    return getattr(model, name) == field.get_default(call_default_factory=True)


def output_fields(model: BaseModel) -> dict[str, Any]:
    """The JSON of ``model`` without the fields marked AFFECTS_OUTPUT_NOT, recursively.

    This is what enters a stage fingerprint: two configs that differ only in
    concurrency or cache locations give the same fingerprint, so no work is redone.
    An ``ENTERS_WHEN_SET`` field is left out while it holds its default.
    """
    return {
        name: output_value(getattr(model, name))
        for name, field in type(model).model_fields.items()
        if _affects_output(field.json_schema_extra) and not _left_at_default(model, name, field)
    }


def output_value(value: Any) -> Any:
    """``value`` with every pydantic model in it reduced to its output fields."""
    if isinstance(value, BaseModel):
        return output_fields(value)
    if isinstance(value, list):
        return [output_value(v) for v in value]
    if isinstance(value, dict):
        return {k: output_value(v) for k, v in value.items()}
    if isinstance(value, StrEnum):
        return value.value
    return value
