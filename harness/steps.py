"""The steps every suite runs — index, retrieve, evaluate, tables — one mechanism for all.

Each step computes its identity, asks the registry for the record (building it only when absent)
and then publishes a suite-facing file at the path Snakemake expects (`suite_file`). Published
files are written atomically, so a failed step leaves nothing behind that looks complete.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from harness import registry
from harness.data import load_dataset
from harness.data.base import sha256_file
from harness.evaluate import evaluate, means, read_per_query, write_per_query
from harness.paths import results_dir
from harness.runs import read_trec, write_trec
from harness.spec import Suite, Unit
from harness.system import System, build_system, code_version

EXTENSIONS = {"index": "json", "runs": "trec", "eval": "tsv"}


def suite_file(suite: str, kind: str, system: str, unit: Unit) -> Path:
    """``results/<suite>/<kind>/<system>/<dataset>/<lang>.<ext>`` — the files Snakemake tracks."""
    return results_dir() / suite / kind / system / unit.dataset / f"{unit.lang}.{EXTENSIONS[kind]}"


def tables_dir(suite: str) -> Path:
    return results_dir() / suite / "tables"


def publish_json(data: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=True)
    os.replace(f.name, path)


def publish_copy(source: Path, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as f:
        tmp = Path(f.name)
    shutil.copyfile(source, tmp)
    os.replace(tmp, path)


def _system(suite: Suite, label: str) -> System:
    spec = suite.system(label)
    return build_system(spec.system, spec.params)


def index(suite: Suite, label: str, unit: Unit) -> registry.Record:
    """Build (or find) the index of ``unit`` for system ``label``."""
    system = _system(suite, label)
    dataset = load_dataset(unit.dataset_id)
    identity = system.index_identity(dataset)

    def build(out: Path) -> dict[str, Any]:
        info = system.index(dataset, out)
        return {"outputs": {"index": "."}, "dataset": dataset.describe(), "info": info}

    record = registry.produce("index", identity, build)
    publish_json({"record": record.id, "path": str(record.path)}, suite_file(suite.name, "index", label, unit))
    return record


def retrieve(suite: Suite, label: str, unit: Unit) -> registry.Record:
    """Search the unit's queries against its index; publish the TREC run."""
    pointer = suite_file(suite.name, "index", label, unit)
    if not pointer.is_file():
        raise FileNotFoundError(f"{pointer}: no index for {label} on {unit.dataset_id}; run the index step first")
    index_record = registry.find(json.loads(pointer.read_text())["record"])
    system = _system(suite, label)
    dataset = load_dataset(unit.dataset_id)
    identity = {"index": index_record.id, "system": system.identity(), "queries": dataset.fingerprint,
                "depth": suite.depth}

    def build(out: Path) -> dict[str, Any]:
        queries = dataset.queries()
        run = system.retrieve(queries, index_record.output("index"), suite.depth)
        write_trec(run, out / "run.trec", tag=label)
        return {"outputs": {"run": "run.trec"}, "queries": len(queries), "dataset": dataset.describe()}

    record = registry.produce("retrieve", identity, build)
    publish_copy(record.output("run"), suite_file(suite.name, "runs", label, unit))
    return record


def evaluate_run(suite: Suite, label: str, unit: Unit) -> registry.Record:
    """Per-query values of the suite's measures for the published run."""
    run_path = suite_file(suite.name, "runs", label, unit)
    run = read_trec(run_path)
    dataset = load_dataset(unit.dataset_id)
    identity = {"run": sha256_file(run_path).hex(), "qrels": dataset.fingerprint,
                "measures": suite.measures, "code": code_version("harness.evaluate")}

    def build(out: Path) -> dict[str, Any]:
        per_query = evaluate(run, dataset.qrels(), suite.measures)
        write_per_query(per_query, out / "per_query.tsv")
        return {"outputs": {"per_query": "per_query.tsv"}, "means": means(per_query), "system": label,
                "dataset": dataset.describe()}

    record = registry.produce("evaluate", identity, build)
    publish_copy(record.output("per_query"), suite_file(suite.name, "eval", label, unit))
    return record


def tables(suite: Suite) -> list[Path]:
    """Effectiveness tables (Markdown, CSV, LaTeX) from the published per-query files."""
    from harness.report.tables import effectiveness, write_tables

    cells = {
        (label, unit): read_per_query(suite_file(suite.name, "eval", label, unit))
        for label in suite.systems
        for unit in suite.units()
    }
    return write_tables(effectiveness(cells, suite.measures), tables_dir(suite.name), "effectiveness")


def finish(suite: Suite, out: Path) -> None:
    """The completion manifest Snakemake's ``suites/<name>`` target is."""
    produced = sorted(str(p.relative_to(results_dir())) for p in tables_dir(suite.name).iterdir())
    publish_json({"suite": suite.name, "tables": produced, "results": str(results_dir() / suite.name)}, out)
