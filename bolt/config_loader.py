"""Load a PipelineConfig from YAML with dotted overrides; errors name file, line and key.

A config file may start from another with ``base: other.yaml`` (a path relative to the
file); mappings merge key by key, lists and scalars replace. Overrides such as
``sft.lr=1e-5`` or ``filter.rewards.0.weight=2`` are applied last and parsed as YAML
scalars, so ``true``, ``1e-5`` and ``[a, b]`` mean what they look like.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ValidationError

from bolt.config import PipelineConfig

BASE_KEY = "base"
MAX_BASE_DEPTH = 8


@dataclass(frozen=True)
class Problem:
    where: str  # "file:line" or "override k=v"
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.key}: {self.message}"


class ConfigError(ValueError):
    def __init__(self, problems: list[Problem]):
        self.problems = problems
        lines = "\n  ".join(str(p) for p in problems)
        super().__init__(f"invalid configuration ({len(problems)} problem(s)):\n  {lines}")


@dataclass
class _Source:
    path: Path
    root: yaml.Node


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> PipelineConfig:
    """Read, merge, override and validate; raise ConfigError naming every problem."""
    return read_config(path, overrides).validate()


@dataclass
class RawConfig:
    """A config file merged with its bases and overrides, before validation: what a
    program that rewrites configs (``bolt.rehearsal``) edits before ``validate``."""

    data: dict[str, Any]
    sources: list[_Source]
    applied: dict[tuple[str, ...], str]  # key path -> the override that set it

    def set(self, key_path: tuple[str, ...], value: Any, why: str) -> None:
        """Set ``key_path`` as an override would (sections it creates start from their
        defaults); ``why`` names the change in errors."""
        _set_path(self.data, key_path, value, why)
        self.applied[key_path] = why

    def validate(self) -> PipelineConfig:
        try:
            return PipelineConfig.model_validate(self.data)
        except ValidationError as e:
            raise ConfigError(
                [_locate(err, self.sources, self.applied) for err in e.errors()]
            ) from None


def read_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> RawConfig:
    """The merged, overridden config data of ``path``, not yet validated."""
    data, sources = _load_with_bases(Path(path), depth=0)
    raw = RawConfig(data, sources, {})
    for text in overrides:
        key_path, value = _parse_override(text)
        raw.set(_existing_keys(data, key_path), value, text)
    return raw


def _existing_keys(data: Any, parts: tuple[str, ...]) -> tuple[str, ...]:
    """``parts`` with the dotted keys of ``data`` put back together: a catalog name such as
    ``llama-3.1-8b-instruct`` is one key, so ``models.catalog.llama-3.1-8b-instruct.path``
    names its ``path``. The longest existing key wins; other parts stay as they are."""
    resolved, node, i = [], data, 0
    while i < len(parts):
        if isinstance(node, dict):
            j = next(
                (j for j in range(len(parts), i + 1, -1) if ".".join(parts[i:j]) in node), i + 1
            )
            key = ".".join(parts[i:j])
            node = node.get(key)
            resolved.append(key)
            i = j
        else:
            if isinstance(node, list) and parts[i].isdigit() and int(parts[i]) < len(node):
                node = node[int(parts[i])]
            else:
                node = None
            resolved.append(parts[i])
            i += 1
    return tuple(resolved)


def _load_with_bases(path: Path, depth: int) -> tuple[dict[str, Any], list[_Source]]:
    if depth > MAX_BASE_DEPTH:
        raise ConfigError([Problem(str(path), BASE_KEY, "base chain deeper than 8 (a cycle?)")])
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([Problem(str(path), "<file>", "no such config file")]) from None
    except UnicodeDecodeError as e:
        raise ConfigError(
            [Problem(str(path), "<file>", f"not UTF-8 text ({e.reason} at byte {e.start})")]
        ) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(
            [Problem(where, "<yaml>", f"invalid YAML: {getattr(e, 'problem', e)}")]
        ) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([Problem(f"{path}:1", "<root>", "expected a mapping of config sections")])
    sources = [_Source(path, node)] if node is not None else []
    base = data.pop(BASE_KEY, None)
    if base is None:
        return data, sources
    if not isinstance(base, str):
        raise ConfigError(
            [Problem(f"{path}:1", BASE_KEY, "expected a path to another config file")]
        )
    base_data, base_sources = _load_with_bases((path.parent / base).resolve(), depth + 1)
    return _deep_merge(base_data, data), sources + base_sources


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _parse_override(text: str) -> tuple[tuple[str, ...], Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(
            [
                Problem(
                    f"override {text!r}", "<override>", "expected KEY.PATH=VALUE, e.g. sft.lr=1e-5"
                )
            ]
        )
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as e:
        raise ConfigError(
            [Problem(f"override {text!r}", key, f"value is not valid YAML: {e}")]
        ) from None
    return tuple(key.strip().split(".")), value


def _set_path(data: Any, key_path: tuple[str, ...], value: Any, text: str) -> None:
    node = data
    for i, part in enumerate(key_path):
        last = i == len(key_path) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                where = ".".join(key_path[: i + 1])
                raise ConfigError(
                    [
                        Problem(
                            f"override {text!r}",
                            where,
                            f"no list item {part} (list has {len(node)})",
                        )
                    ]
                )
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                if part not in node:
                    node[part] = _section_default(key_path[: i + 1])
                node = node[part]
        else:
            where = ".".join(key_path[:i])
            raise ConfigError([Problem(f"override {text!r}", where, "is a value, not a section")])


def _section_default(key_path: tuple[str, ...]) -> dict[str, Any]:
    """What an override starts from when it creates a section the files leave out: the
    field's own default, so that ``eval.judge.engine.base_url=...`` keeps the judge
    engine's default ``kind: openai`` instead of falling back to EngineConfig's ``vllm``."""
    model: type[BaseModel] | None = PipelineConfig
    for i, part in enumerate(key_path):
        field = model.model_fields.get(part) if model else None
        if field is None:
            return {}
        if i < len(key_path) - 1:
            model = _model_class(field.annotation)
            continue
        if field.is_required():
            return {}
        default = field.get_default(call_default_factory=True)
        return (
            default.model_dump(mode="json", exclude_unset=True)
            if isinstance(default, BaseModel)
            else {}
        )
    return {}


def _model_class(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return next(filter(None, map(_model_class, get_args(annotation))), None)


def _locate(
    err: dict[str, Any], sources: list[_Source], applied: dict[tuple[str, ...], str]
) -> Problem:
    loc = tuple(str(p) for p in err["loc"])
    key = _dotted(err["loc"])
    for key_path, text in applied.items():
        if loc[: len(key_path)] == key_path:
            return Problem(f"override {text!r}", key, _explain(err))
    for source in sources:
        line = _line_of(source.root, loc)
        if line is not None:
            return Problem(f"{source.path}:{line}", key, _explain(err))
    return Problem(str(sources[0].path) if sources else "<config>", key, _explain(err))


def _line_of(root: yaml.Node, loc: tuple[str, ...]) -> int | None:
    """1-based line of the deepest node of ``loc`` present in this file, None if absent.

    A missing key is reported at its parent section, which is where it must be added.
    """
    node, line = root, None
    for part in loc:
        child = _child(node, part)
        if child is None:
            return line if line is not None else None
        key_node, node = child
        line = key_node.start_mark.line + 1
    return line


def _child(node: yaml.Node, part: str) -> tuple[yaml.Node, yaml.Node] | None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if str(k.value) == part:
                return k, v
    if isinstance(node, yaml.SequenceNode) and part.isdigit() and int(part) < len(node.value):
        item = node.value[int(part)]
        return item, item
    return None


def _dotted(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc) or "<root>"


def _explain(err: dict[str, Any]) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        return "unknown key (check the spelling; `bolt config schema` lists every key)"
    if kind == "missing":
        return "required key is missing"
    given = err.get("input")
    shown = repr(given) if not isinstance(given, dict) else "a mapping"
    return f"{err['msg']} (got {shown})"
