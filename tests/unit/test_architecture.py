"""The architecture's rules, checked on every file (see ARCHITECTURE.md).

- No import cycle between files, nor between packages: a package is ``bolt.<sub>`` for a
  subpackage, each top-level module of ``bolt`` on its own, and ``tasks``, ``flows``,
  ``bolt_cli`` and ``bench`` each as a whole. Imports inside functions count like
  module-level ones: a deferred import hides a cycle, it does not remove it.
- ``bolt`` never loads Prefect, nor imports ``tasks``, ``flows`` or ``bolt_cli``: the
  library runs where Prefect is not installed (the training jobs).
- No file over 500 lines and no function over 80 lines, bench scripts included.
"""

from __future__ import annotations

import ast
import itertools
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ROOTS = ("bolt", "tasks", "flows", "bolt_cli", "bench")
MAX_FILE_LINES = 500
MAX_FUNCTION_LINES = 80


@dataclass(frozen=True)
class Import:
    source: str  # importing module
    target: str  # imported module, one of this repository's
    where: str  # file:line of the import statement


def _files() -> list[Path]:
    return sorted(p for root in ROOTS for p in (REPO / root).rglob("*.py"))


def _is_script_dir(root: str) -> bool:
    """bench/ holds scripts run by path: they import each other by bare name."""
    return not (REPO / root / "__init__.py").exists()


def _module_name(path: Path) -> str:
    rel = path.relative_to(REPO)
    if _is_script_dir(rel.parts[0]):
        return path.stem
    parts = rel.with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in _files()}


def _where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(REPO)}:{node.lineno}"


def _relative_base(module: str, path: Path, level: int) -> str:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for _ in range(level - 1):
        package = package.rpartition(".")[0]
    return package


def _deepest_known(dotted: str) -> str | None:
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        if (name := ".".join(parts[:end])) in _modules():
            return name
    return None


def _targets(node: ast.Import | ast.ImportFrom, module: str, path: Path) -> Iterator[str]:
    """The repository modules one import statement loads (a name imported from a
    package counts as its submodule when one of that name exists)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            prefix = _relative_base(module, path, node.level)
            base = f"{prefix}.{base}".strip(".") if base else prefix
        names = [base] + [f"{base}.{alias.name}" for alias in node.names]
    for name in names:
        if (known := _deepest_known(name)) is not None:
            yield known


@cache
def _imports() -> tuple[Import, ...]:
    found = []
    for module, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                found += [
                    Import(module, target, _where(path, node))
                    for target in _targets(node, module, path)
                    if target != module
                ]
    return tuple(found)


def _package_of(module: str) -> str:
    path = _modules()[module]
    parts = path.relative_to(REPO).parts
    if parts[0] != "bolt":
        return parts[0]
    if len(parts) == 2:  # a top-level module of bolt (or bolt/__init__.py)
        return module
    return f"bolt.{parts[1]}"


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm (Tarjan, 1972), iterative: the components of two or more nodes."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def _one_cycle(component: list[str], graph: dict[str, set[str]]) -> list[str]:
    """A shortest path from the component's first node back to itself, inside it."""
    start, members = component[0], set(component)
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for node in frontier:
            for child in sorted(graph[node] & members):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if child not in previous:
                    previous[child] = node
                    nxt.append(child)
        frontier = nxt
    raise AssertionError(f"{component} is not strongly connected")


def _cycle_report(node_of: dict[str, str]) -> list[str]:
    """One line per cycle: the nodes around it, each step with an import that makes it."""
    graph: dict[str, set[str]] = {node: set() for node in set(node_of.values())}
    evidence: dict[tuple[str, str], str] = {}
    for imp in _imports():
        a, b = node_of[imp.source], node_of[imp.target]
        if a != b:
            graph[a].add(b)
            evidence.setdefault((a, b), imp.where)
    report = []
    for component in _strongly_connected(graph):
        cycle = _one_cycle(component, graph)
        steps = [f"{a} -> {b} ({evidence[a, b]})" for a, b in itertools.pairwise(cycle)]
        report.append(f"cycle among {', '.join(component)}: " + "; ".join(steps))
    return report


def test_no_import_cycle_between_files():
    cycles = _cycle_report({module: module for module in _modules()})
    assert not cycles, "import cycles between files:\n" + "\n".join(cycles)


def test_no_import_cycle_between_packages():
    cycles = _cycle_report({module: _package_of(module) for module in _modules()})
    assert not cycles, "import cycles between packages:\n" + "\n".join(cycles)


def test_bolt_imports_neither_prefect_nor_the_layers_above_it():
    """Deferred imports included: a command or helper in bolt/ that reaches for flows
    loads Prefect the moment it runs, which the import-time check below cannot see."""
    above = {"prefect", "prefect_aws", "prefect_ray", "tasks", "flows", "bolt_cli"}
    found = []
    for path in (REPO / "bolt").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            else:
                continue
            found += [f"{_where(path, node)}: {n}" for n in names if n.split(".")[0] in above]
    assert not found, "bolt/ imports from above it:\n" + "\n".join(sorted(found))


# Runs in a fresh interpreter: imports every bolt module and, when Prefect is first
# requested, records the repository frames that asked for it.
_IMPORT_ALL = """
import importlib, json, pkgutil, sys, traceback

repo = sys.argv[1]
asked = []

class Witness:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "prefect" and not asked:
            asked.extend(
                f"{f.filename[len(repo) + 1:]}:{f.lineno}"
                for f in traceback.extract_stack()
                if f.filename.startswith(repo) and "/.venv/" not in f.filename
            )
        return None

sys.meta_path.insert(0, Witness())
import bolt

failed, first = {}, "bolt" if "prefect" in sys.modules else None

def not_walked(name):
    failed[name] = repr(sys.exc_info()[1])

for info in pkgutil.walk_packages(bolt.__path__, "bolt.", onerror=not_walked):
    try:
        importlib.import_module(info.name)
    except Exception as e:
        failed[info.name] = f"{type(e).__name__}: {e}"
    if first is None and "prefect" in sys.modules:
        first = info.name
print(json.dumps({"failed": failed, "first": first, "asked": asked}))
"""


def test_bolt_never_loads_prefect():
    proc = subprocess.run(
        [sys.executable, "-c", _IMPORT_ALL, str(REPO)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not result["failed"], "bolt modules that do not import:\n" + "\n".join(
        f"{name}: {why}" for name, why in sorted(result["failed"].items())
    )
    assert result["first"] is None, (
        f"importing {result['first']} loaded prefect; asked for at: "
        + " <- ".join(reversed(result["asked"]))
    )


def test_no_file_over_500_lines():
    long = [
        f"{p.relative_to(REPO)}:1: {n} lines"
        for p in _files()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_FILE_LINES
    ]
    assert not long, f"files over {MAX_FILE_LINES} lines:\n" + "\n".join(long)


def test_no_function_over_80_lines():
    long = []
    for path in _files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{_where(path, node)}: {node.name} is {lines} lines")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(long)


def test_test_modules_outside_packages_have_unique_names():
    """pytest imports a test file outside a package by its bare name: two files with one
    name in different tiers fail collection on a clean checkout."""
    tests = REPO / "tests"
    seen: dict[str, list[str]] = {}
    for path in tests.rglob("test_*.py"):
        if not (path.parent / "__init__.py").exists():
            seen.setdefault(path.name, []).append(str(path.relative_to(REPO)))
    assert not {name: paths for name, paths in seen.items() if len(paths) > 1}
