"""The system catalogue: which module defines each system name, and what its jobs need.

Rows are data, read without importing model code, so planning a suite (job resources, code
identity) imports no torch and `harness.system.system_class` imports only the one module a name
needs. A module registers its names with `harness.system.register_system` when imported; a test
checks that every row's module registers exactly the rows' names.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CPU_JOB = {"mem_mb": 4000}
DENSE_JOB = {"mem_mb": 16000, "gpu": 1}
COLBERT_JOB = {"mem_mb": 32000, "gpu": 1}


@dataclass(frozen=True)
class Entry:
    """One system name: the module that registers it and the Snakemake resources of its index,
    shard and train jobs (``gpu: 1`` for systems that want one)."""

    module: str
    resources: dict[str, int] = field(default_factory=lambda: dict(CPU_JOB))


SYSTEMS: dict[str, Entry] = {
    "bm25": Entry("systems.bm25"),
    "dpr-xm": Entry("systems.dense", DENSE_JOB),
    "arctic-embed-m": Entry("systems.dense", DENSE_JOB),
    "arctic-embed-m-256": Entry("systems.dense", DENSE_JOB),
    "arctic-embed-l": Entry("systems.dense", DENSE_JOB),
    "arctic-embed-l-256": Entry("systems.dense", DENSE_JOB),
    "nllb-e5": Entry("systems.nllb_e5", DENSE_JOB),
    "colbert-xm": Entry("systems.colbert", COLBERT_JOB),
    "mtd-colbertx": Entry("systems.colbert", COLBERT_JOB),
    "mtd-colbertx-mix-passages": Entry("systems.colbert", COLBERT_JOB),
    "mtd-colbertx-mix-entries": Entry("systems.colbert", COLBERT_JOB),
    "mtd-colbertx-round-robin": Entry("systems.colbert", COLBERT_JOB),
}
"""Plain system names."""

PREFIXES: dict[str, Entry] = {
    "st": Entry("systems.dense", DENSE_JOB),
}
"""Prefixes of ``prefix:<model>`` names (``st:<model id or path>``)."""


def entry(name: str) -> Entry | None:
    """The row of a plain name or a ``prefix:<model>`` name; None when the catalogue has neither."""
    if name in SYSTEMS:
        return SYSTEMS[name]
    prefix, sep, model = name.partition(":")
    return PREFIXES.get(prefix) if sep and model else None
