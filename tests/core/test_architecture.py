"""The shape of the code base: what may import what, how large a module may grow, one training loop."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

from harness.code import imported
from harness.paths import repo_root
from harness.system import catalog, system_class
from harness.system.base import Shardable, System, Trainable

MAX_LINES = 600


def registered_systems() -> dict:
    """The class of every catalogue name (importing each family), prefixes shown as ``prefix:<model>``."""
    return {name: system_class(name) for name in catalog.names()}


def modules() -> dict[str, Path]:
    """Every module of the project's packages by dotted name (packages by their ``__init__``)."""
    root = repo_root()
    found = {}
    for package in ("harness", "systems"):
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in graph[node]:
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
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

    sys.setrecursionlimit(10_000)
    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_among_project_modules() -> None:
    """Imports anywhere in a module count (inside functions too), except under ``TYPE_CHECKING``."""
    names = modules()
    graph = {name: {m for m in imported(name) if m in names and m != name} for name in names}
    assert cycles(graph) == []


def test_the_core_never_imports_a_system_family() -> None:
    offenders = {name: sorted(m for m in imported(name) if m.split(".")[0] == "systems")
                 for name in modules() if name.startswith("harness")}
    assert {name: found for name, found in offenders.items() if found} == {}


def test_training_modules_import_models_never_their_system() -> None:
    for name in modules():
        if name.startswith("systems.") and name.rsplit(".", 1)[-1] == "train":
            family = name.rsplit(".", 1)[0]
            assert f"{family}.system" not in imported(name), name


def test_no_module_is_over_the_size_limit() -> None:
    sizes = {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in modules().items()}
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}


def test_one_training_loop_calls_backward() -> None:
    """Every recipe hands a loss to `harness.training.loop.fit`; nothing else steps an optimiser."""
    calls = {name: len(re.findall(r"\.backward\(", path.read_text(encoding="utf-8")))
             for name, path in modules().items()}
    assert {name: n for name, n in calls.items() if n} == {"harness.training.loop": 1}


def test_every_catalogue_row_builds_its_class_and_defaults() -> None:
    classes = registered_systems()
    for name, row in catalog.SYSTEMS.items():
        cls = classes[name]
        assert f"{cls.__module__}:{cls.__qualname__}" == row.target
        assert set(row.defaults) <= set(cls.Params.model_fields), name
        revisions = [f for f in cls.Params.model_fields if f == "revision" or f.endswith("_revision")]
        assert not row.revisions or revisions, f"{name} pins commits but has no revision param"
    for prefix, row in catalog.PREFIXES.items():
        assert classes[f"{prefix}:<model>"].__module__ == row.module


def test_abilities_are_protocols_not_stubs() -> None:
    """Training and sharding are what a family has, not base-class methods that raise."""
    assert not hasattr(System, "train") and not hasattr(System, "index_shard") and not hasattr(System, "tiny")
    classes = registered_systems()
    assert {name for name, cls in classes.items() if not issubclass(cls, Trainable)} == {"bm25"}
    assert all(issubclass(cls, Shardable) for cls in classes.values())


def test_planning_and_listing_import_no_model_code() -> None:
    """Reading the catalogue and the system interface imports neither torch nor any family."""
    code = ("import sys; import harness.system, harness.jobs, harness.system.catalog; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'systems', 'transformers')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=repo_root(), check=True)
    assert done.stdout.strip() == "[]"


def test_module_docstrings() -> None:
    missing = [name for name, path in modules().items()
               if ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) is None]
    assert missing == []
