"""Code identity from file contents: a module and every project module it imports, hashed.

Imports are read from the source with `ast` (top-level and inside functions alike, those under
``if TYPE_CHECKING:`` excepted), so nothing is imported and no list of modules is kept by hand: an
edit to any file a step's code reaches changes that step's identity, and only that step's. A
package's ``__init__`` counts as a file when one of its submodules is imported, and its own imports
are followed only when the package itself is imported (``from harness.data import load_dataset``).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
from functools import cache
from pathlib import Path

from harness import __version__
from harness.paths import repo_root

PACKAGES = ("harness", "systems")
"""Top-level packages whose source is project code."""


def module_file(name: str) -> Path | None:
    """The source file of project module ``name`` (a package's ``__init__.py``), or None."""
    if name.split(".")[0] not in PACKAGES:
        return None
    base = repo_root().joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def _import_nodes(node: ast.AST):
    for child in ast.iter_child_nodes(node):
        if _type_checking(child):
            continue
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child
        yield from _import_nodes(child)


@cache
def imported(name: str) -> frozenset[str]:
    """Project modules that module ``name`` imports directly."""
    path = module_file(name) or _outside_file(name)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_bytes(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:
            parts = package.split(".")
            base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
        for alias in node.names:
            submodule = f"{base}.{alias.name}"
            found.add(submodule if module_file(submodule) else base)
    return frozenset(m for m in found if module_file(m) is not None)


def _parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _outside_file(name: str) -> Path:
    """The source file of a module outside the project (a plugin, a test's system), found without
    importing it (only its parent packages)."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        raise ModuleNotFoundError(f"no Python source for module {name!r}")
    return Path(spec.origin)


@cache
def closure(*modules: str) -> tuple[Path, ...]:
    """Every source file that ``modules`` reach through project imports, sorted. A module outside
    the project's packages counts as its own file plus what it reaches inside them."""
    followed: set[str] = set()
    files: set[Path] = set()
    todo = list(modules)
    while todo:
        name = todo.pop()
        if name in followed:
            continue
        path = module_file(name) or _outside_file(name)
        followed.add(name)
        files.add(path)
        files.update(p for parent in _parents(name) if (p := module_file(parent)) is not None)
        todo.extend(imported(name) - followed)
    return tuple(sorted(files))


@cache
def code_version(*modules: str) -> str:
    """Harness version plus a hash of every file ``modules`` reach (paths relative to the repository)."""
    h = hashlib.sha256()
    root = repo_root()
    for path in closure(*sorted(set(modules))):
        name = path.relative_to(root) if path.is_relative_to(root) else path.name
        h.update(str(name).encode() + b"\0" + path.read_bytes() + b"\0")
    return f"{__version__}+{h.hexdigest()[:12]}"
