"""Every results path a suite's jobs write and its reports read (the Snakefile, steps and reports use these)."""

from __future__ import annotations

from pathlib import Path

from harness.paths import results_dir
from harness.spec import Unit

EXTENSIONS = {"index": "json", "runs": "trec", "eval": "tsv", "cost": "json"}


def suite_file(suite: str, kind: str, system: str, unit: Unit) -> Path:
    """``results/<suite>/<kind>/<system>/<dataset>/<lang>.<ext>`` — the files Snakemake tracks."""
    return results_dir() / suite / kind / system / unit.dataset / f"{unit.lang}.{EXTENSIONS[kind]}"


def shard_file(suite: str, system: str, unit: Unit, shard: int) -> Path:
    """``results/<suite>/shards/<system>/<dataset>/<lang>/<shard>.json`` — one shard's pointer."""
    return results_dir() / suite / "shards" / system / unit.dataset / unit.lang / f"{shard}.json"


def train_file(suite: str, system: str) -> Path:
    """``results/<suite>/train/<system>.json`` — the pointer to a system's trained checkpoint."""
    return results_dir() / suite / "train" / f"{system}.json"


def tables_dir(suite: str) -> Path:
    return results_dir() / suite / "tables"
