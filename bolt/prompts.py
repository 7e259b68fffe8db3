"""The prompt room: the in-context LongCoT examples and the Jinja2 templates.

BOLT (Pang et al., 2025, §3.1) bootstraps long chain-of-thought from 10 hand-written
in-context examples, each a query with *internal thoughts* and an *external
response*. They live in ``prompts/longcot/`` as one YAML file each, so that a human
edits them as prose and a reviewer diffs them one at a time; the templates for the
curation prompts (difficulty, topic) and the bootstrapping instruction live beside
them. This module loads both and fails loudly, naming the file, on anything malformed:
a broken example would silently teach the teacher model a broken format.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from bolt.longcot import ALL_TAGS, render_longcot

PROMPTS_DIR = Path(__file__).resolve().parents[1] / "prompts"
LONGCOT_DIR = PROMPTS_DIR / "longcot"


class LongCoTExample(BaseModel):
    """One hand-written in-context example (paper §3.1: query + thoughts + response)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    topic: str
    query: str
    thoughts: str
    response: str

    def assistant_text(self) -> str:
        """The assistant turn exactly as the bootstrapping prompt shows it."""
        return render_longcot(self.thoughts, self.response)


def _read_yaml_mapping(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(data, dict):
        # ValueError, not TypeError: to the caller this is one more malformed file.
        raise ValueError(f"{path}: expected a mapping, got {type(data).__name__}")  # noqa: TRY004
    return data


def _describe_validation_error(err: ValidationError) -> str:
    """One line per bad key, so the author sees which key to fix, not a pydantic dump."""
    problems = []
    for item in err.errors():
        key = ".".join(str(part) for part in item["loc"]) or "<root>"
        problems.append(f"key {key!r}: {item['msg']}")
    return "; ".join(problems)


def _check_no_tags(path: Path, example: LongCoTExample) -> None:
    # A tag inside the text would make the rendered example unparseable by the very
    # format filter the bootstrapped answers must pass (paper §3.1, format filter).
    for key in ("thoughts", "response"):
        text = getattr(example, key)
        found = [tag for tag in ALL_TAGS if tag in text]
        if found:
            raise ValueError(f"{path}: key {key!r} contains the format tag(s) {found}")


def load_example(path: Path) -> LongCoTExample:
    """Load and validate one example file; errors name the file and the key."""
    data = _read_yaml_mapping(path)
    try:
        example = LongCoTExample.model_validate(data)
    except ValidationError as err:
        raise ValueError(f"{path}: {_describe_validation_error(err)}") from err
    _check_no_tags(path, example)
    return example


def load_examples(directory: Path = LONGCOT_DIR) -> list[LongCoTExample]:
    """All ``*.yaml`` examples in ``directory``, sorted by id, ids unique.

    Sorting by id (not by file name) makes the order, and therefore which examples a
    seeded sampler picks for each prompt, independent of how files are named.
    """
    directory = Path(directory)
    paths = sorted(directory.glob("*.yaml"))
    if not paths:
        raise ValueError(f"{directory}: no *.yaml example files")
    seen: dict[str, Path] = {}
    examples = []
    for path in paths:
        example = load_example(path)
        if example.id in seen:
            raise ValueError(
                f"{path}: key 'id': duplicate id {example.id!r} (also in {seen[example.id]})"
            )
        seen[example.id] = path
        examples.append(example)
    return sorted(examples, key=lambda example: example.id)


def _template_environment(directory: Path) -> jinja2.Environment:
    # StrictUndefined: a misspelt variable must fail, not render as an empty string
    # into a prompt that a model then answers confidently. No autoescape: these are
    # prompts for a model, not HTML.
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(directory),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )


def render_template(name: str, /, **variables: Any) -> str:
    """Render ``prompts/<name>`` with ``variables``; an undefined variable raises."""
    return _template_environment(PROMPTS_DIR).get_template(name).render(**variables)
