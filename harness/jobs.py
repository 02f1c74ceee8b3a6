"""What each job of a suite depends on: the settings and the code whose change must rerun it.

The Snakefile hands these to Snakemake as each job's params, so an edited setting or source file
reruns exactly the jobs it reaches; the registry identities cover the same code (a system's
`code_version`, a dataset's fingerprint), so a rerun job rebuilds instead of finding its old record.
Computed from the suite and file contents alone, importing no model code.
The evaluate step writes the digest of `eval_settings` into each eval pointer it publishes, and
`stale_cells` lists the published evaluations whose digest no longer matches the suite and the code.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from harness import layout
from harness.code import code_version
from harness.data.registry import parse_dataset_id
from harness.data.union import union_parts
from harness.spec import Suite, Unit
from harness.system.catalog import entry

UNION = "union"
REPORT_MODULES = ("harness.report.suite",)


def dataset_code(dataset_id: str) -> str:
    """The code version of the loader of ``dataset_id`` (``harness.data.<scheme>``; a union's parts too)."""
    scheme, _, _ = parse_dataset_id(dataset_id)
    modules = [f"harness.data.{scheme}"]
    if scheme == UNION:
        modules += [f"harness.data.{parse_dataset_id(part)[0]}" for part in union_parts(dataset_id)]
    return code_version(*modules)


def data_needed(suite: Suite) -> dict[str, tuple[str, bool]]:
    """Each collection the suite reads, by the key of its data pointer (`layout.data_key`): its id, and
    whether the training split is read (a system's train section) or the collection itself (a unit)."""
    needed = [(unit.dataset_id, False) for unit in suite.units()]
    for label in suite.systems:
        if (spec := suite.system(label).train) is not None:
            needed += [(i, spec.split == "training") for i in spec.dataset_ids().values()]
    return {layout.data_key(i, training): (i, training) for i, training in needed}


def system_code(suite: Suite, label: str) -> str:
    """The code version of the module of the system ``label`` (and of passage splitting where used)."""
    spec = suite.system(label)
    row = entry(spec.system)
    modules = [row.module] if row else []
    return code_version(*modules, *(["harness.system.passages"] if spec.passages else []))


def digest(settings: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:20]


def energy(suite: Suite) -> Any:
    """Whether (and where) energy is measured: part of every record's identity that carries a reading."""
    return suite.cost.model_dump(include={"country", "region"}) if suite.cost else None


def train_settings(suite: Suite, label: str) -> dict[str, Any] | None:
    spec = suite.system(label)
    if spec.train is None:
        return None
    return {"train": spec.train.model_dump(), "system": spec.system, "params": spec.params,
            "code": system_code(suite, label), "energy": energy(suite),
            "data": {lang: dataset_code(i) for lang, i in spec.train.dataset_ids().items()}}


def index_settings(suite: Suite, label: str, unit: Unit) -> dict[str, Any]:
    spec = suite.system(label)
    return {"system": spec.system, "params": spec.params, "passages": spec.passages and spec.passages.model_dump(),
            "train": train_settings(suite, label), "dataset": unit.dataset_id, "shards": unit.shards,
            "code": system_code(suite, label), "data": dataset_code(unit.dataset_id), "energy": energy(suite)}


def retrieve_settings(suite: Suite, label: str, unit: Unit) -> dict[str, Any]:
    return {**index_settings(suite, label, unit), "depth": suite.depth}


def eval_settings(suite: Suite, label: str, unit: Unit) -> dict[str, Any]:
    identical = {"ignore_identical_ids": True} if unit.ignore_identical_ids else {}
    return {**retrieve_settings(suite, label, unit), "measures": suite.measures,
            "evaluate": code_version("harness.evaluate"), **identical}


def cost_settings(suite: Suite, label: str, unit: Unit) -> dict[str, Any]:
    return {**retrieve_settings(suite, label, unit), "cost": suite.cost and suite.cost.model_dump(),
            "measure": code_version("harness.measure")}


def tables_settings(suite: Suite) -> dict[str, Any]:
    return {**suite.model_dump(mode="json", include={"measures", "statistics", "cost"}),
            "code": code_version(*REPORT_MODULES)}


def current(suite: Suite, label: str, unit: Unit) -> bool:
    """Whether the published evaluation of (``label``, ``unit``) was made with the suite's settings and code now."""
    pointer = layout.path("evaluate", suite.name, label, unit)
    return pointer.is_file() and layout.read_pointer(pointer).get("settings") == digest(
        eval_settings(suite, label, unit))


def stale_cells(suite: Suite) -> list[tuple[str, Unit]]:
    """(system label, unit) of each published evaluation made with other settings or code than now."""
    return [(label, unit) for label in suite.systems for unit in suite.units()
            if layout.path("evaluate", suite.name, label, unit).is_file() and not current(suite, label, unit)]


def describe_stale(suite: Suite, stale: list[tuple[str, Unit]]) -> str:
    """One line naming stale eval files and the command that refreshes them."""
    names = ", ".join(f"{label} {unit.dataset}/{unit.lang}" for label, unit in stale[:6])
    return (f"{len(stale)} eval files of suite {suite.name!r} were made with other settings or code than now "
            f"({names}{', …' if len(stale) > 6 else ''}); rerun `snakemake --cores all suites/{suite.name}`")

