"""Where the harness reads and writes: repository root, results, caches."""

from __future__ import annotations

import os
from pathlib import Path


def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


def results_dir() -> Path:
    """Root of everything runs produce: ``results/`` under the working directory (where Snakemake
    runs), or ``$HARNESS_RESULTS``."""
    return Path(os.environ.get("HARNESS_RESULTS", "results"))


def suite_dirs() -> list[Path]:
    """Where suite YAML files are looked up: ``./suites`` first, then the repository's."""
    return list(dict.fromkeys([Path("suites").resolve(), repo_root() / "suites"]))


def cache_dir() -> Path:
    """Downloads the harness manages itself; ``$HARNESS_CACHE`` overrides ``~/.cache/harness``."""
    return Path(os.environ.get("HARNESS_CACHE", Path.home() / ".cache" / "harness"))
