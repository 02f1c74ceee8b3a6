"""Every results path: the Snakefile's patterns, the pointers the steps publish, what reports read.

A suite's results live under ``results/<suite>/``. Each step publishes there a *pointer*: a small
JSON file naming the registry record it built or found (``record``, ``step``), that record's folder
(``path``) and its output files (``outputs``: name → path), plus what makes reading easy (the
evaluate step adds its ``settings`` digest, the cost step its summary). The files themselves stay in
the registry: a suite's TREC run for one system and collection is the ``outputs.run`` of
``results/<suite>/runs/<system>/<dataset>/<lang>.json``. Readers go through `pointed`, which looks
the record up by step and id.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from harness import registry
from harness.files import atomic_write
from harness.paths import results_dir
from harness.spec import Unit

PATTERNS = {
    "data": "{suite}/data/{key}.json",
    "train": "{suite}/train/{system}.json",
    "shard": "{suite}/shards/{system}/{dataset}/{lang}/{shard}.json",
    "index": "{suite}/index/{system}/{dataset}/{lang}.json",
    "retrieve": "{suite}/runs/{system}/{dataset}/{lang}.json",
    "evaluate": "{suite}/eval/{system}/{dataset}/{lang}.json",
    "cost": "{suite}/cost/{system}/{dataset}/{lang}.json",
    "tables": "{suite}/tables/manifest.json",
}
"""What each Snakemake rule publishes, under the results folder (wildcards in braces)."""

SUITE_TARGET = "suites/{suite}"
"""The completion manifest a suite's Snakemake target is (``snakemake suites/<name>``), beside the suite files."""


def pattern(step: str) -> str:
    """The Snakemake pattern of what ``step`` publishes."""
    return str(results_dir() / PATTERNS[step])


def path(step: str, suite: str, system: str | None = None, unit: Unit | None = None,
         shard: int | None = None) -> Path:
    """What ``step`` publishes for ``system`` on ``unit`` (shard ``shard``) of ``suite``."""
    fields: dict[str, Any] = {"suite": suite, "system": system, "shard": shard}
    if unit is not None:
        fields.update(dataset=unit.dataset, lang=unit.lang)
    return results_dir() / PATTERNS[step].format(**fields)


def data_key(dataset_id: str, training: bool) -> str:
    """The name of the data pointer of collection ``dataset_id`` (of its training split when ``training``):
    keyed by what is fetched, so one job fetches it for every unit and system of the suite that reads it."""
    kind = "train" if training else "eval"
    return f"{kind}-{hashlib.sha256(f'{kind} {dataset_id}'.encode()).hexdigest()[:16]}"


def data(suite: str, dataset_id: str, training: bool) -> Path:
    """What the data step publishes for collection ``dataset_id`` (its training split when ``training``)."""
    return results_dir() / PATTERNS["data"].format(suite=suite, key=data_key(dataset_id, training))


def tables_dir(suite: str) -> Path:
    return path("tables", suite).parent


def publish_json(data: dict[str, Any], path: Path) -> None:
    """Publish ``data`` as JSON at ``path`` atomically (a reader never sees a partial file)."""
    with atomic_write(path, encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=True)


def write_pointer(pointer: Path, record: registry.Record, **extra: Any) -> None:
    """Publish ``pointer`` to ``record`` (atomically), with ``extra`` fields."""
    outputs = {name: str(record.output(name)) for name in record.data["outputs"]}
    publish_json({"record": record.id, "step": record.step, "path": str(record.path), "outputs": outputs, **extra},
                 pointer)


def read_pointer(pointer: Path) -> dict[str, Any]:
    """The fields of a published pointer; a missing one is a `FileNotFoundError` naming it."""
    if not pointer.is_file():
        raise FileNotFoundError(f"{pointer}: missing; run the step that writes it first")
    return json.loads(pointer.read_text(encoding="utf-8"))


def pointed(pointer: Path) -> registry.Record:
    """The registry record a published pointer names."""
    fields = read_pointer(pointer)
    return registry.get(fields["step"], fields["record"])


def run_file(suite: str, system: str, unit: Unit) -> Path:
    """The TREC run of ``system`` on ``unit`` that the suite's retrieve step published."""
    return pointed(path("retrieve", suite, system, unit)).output("run")


def per_query_file(suite: str, system: str, unit: Unit) -> Path:
    """The per-query values of ``system`` on ``unit`` that the suite's evaluate step published."""
    return pointed(path("evaluate", suite, system, unit)).output("per_query")
