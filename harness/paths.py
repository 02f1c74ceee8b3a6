"""Where the harness reads and writes: repository root, results, caches."""

from __future__ import annotations

import os
from pathlib import Path


def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


def results_dir() -> Path:
    """Root of everything runs produce; ``$HARNESS_RESULTS`` overrides ``<repo>/results``."""
    return Path(os.environ.get("HARNESS_RESULTS", repo_root() / "results"))


def cache_dir() -> Path:
    """Downloads the harness manages itself; ``$HARNESS_CACHE`` overrides ``~/.cache/harness``."""
    return Path(os.environ.get("HARNESS_CACHE", Path.home() / ".cache" / "harness"))
