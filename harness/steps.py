"""The steps every suite runs — index, retrieve, evaluate, tables — one mechanism for all.

Each step computes its identity, asks the registry for the record (building it only when absent)
and then publishes a suite-facing file at the path Snakemake expects (`suite_file`). Published
files are written atomically, so a failed step leaves nothing behind that looks complete.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness import jobs, measure, registry
from harness.code import code_version
from harness.data import DataError, Dataset, load_dataset
from harness.data.base import sha256_file
from harness.evaluate import evaluate, means, read_per_query, write_per_query
from harness.files import atomic_write
from harness.layout import shard_file, suite_file, tables_dir, train_file
from harness.passages import aggregate, as_passages
from harness.paths import results_dir
from harness.runs import read_trec, write_trec
from harness.spec import CostSpec, Suite, SuiteError, TrainSpec, Unit
from harness.system import System, build_system, train_params
from harness.training import TrainingData


def publish_json(data: dict[str, Any], path: Path) -> None:
    with atomic_write(path, encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=True)


def publish_copy(source: Path, path: Path) -> None:
    with atomic_write(path, "wb") as f, open(source, "rb") as src:
        shutil.copyfileobj(src, f)


@contextmanager
def metered(suite: Suite, phase: str) -> Iterator[dict[str, Any]]:
    """Measure the block's energy when the suite asks for cost; the reading lands in the dict."""
    found: dict[str, Any] = {}
    if suite.cost is None:
        yield found
        return
    with measure.energy(phase, suite.cost.country, suite.cost.region) as reading:
        yield found
    found["energy"] = reading.as_dict()


def _labels(suite: Suite, label: str, unit: Unit | None = None) -> dict[str, str | None]:
    """What a record was built for, shown by `harness registry list`; never part of its identity."""
    return {"suite": suite.name, "system": label, "dataset": unit.dataset if unit else None,
            "lang": unit.lang if unit else None}


def _collection(suite: Suite, label: str, unit: Unit) -> Dataset:
    """The unit's dataset as the system indexes it: whole documents, or passages."""
    dataset = load_dataset(unit.dataset_id)
    spec = suite.system(label).passages
    return as_passages(dataset, spec) if spec else dataset


def _system(suite: Suite, label: str) -> System:
    """The suite's system ``label``, loading its trained checkpoint when the suite trains it."""
    spec = suite.system(label)
    system = build_system(spec.system, spec.params)
    if spec.train is None:
        return system
    record = _pointed(train_file(suite.name, label))
    return system.with_checkpoint(record.output("checkpoint"), f"train:{record.id}")


def training_data(spec: TrainSpec) -> TrainingData:
    """The training splits (and teacher run) a suite's train section names."""
    splits = {}
    for lang, dataset_id in spec.dataset_ids().items():
        dataset = load_dataset(dataset_id)
        split = dataset.training() if spec.split == "training" else dataset
        if split is None:
            raise DataError(f"{dataset_id} has no training split; if the id names training data itself "
                            f"(e.g. an ir_datasets train split), set 'split: dataset'")
        splits[lang] = split
    return TrainingData(splits, Path(spec.teacher) if spec.teacher else None)


def train(suite: Suite, label: str) -> registry.Record:
    """Run the system's training recipe (from a tiny random checkpoint when the suite says so)."""
    spec = suite.system(label)
    if spec.train is None:
        raise SuiteError(f"suite {suite.name!r}: system {label!r} has no train section")
    params = train_params(spec.system, spec.train.params)
    system = build_system(spec.system, spec.params)
    data = training_data(spec.train)
    identity = _with_energy(suite, {
        "system": system.identity(), "recipe": params.model_dump(mode="json"), "init": spec.train.init,
        "split": spec.train.split,
        "data": {lang: split.fingerprint for lang, split in data.splits.items()},
        "teacher": sha256_file(spec.train.teacher).hex() if spec.train.teacher else None})

    def build(out: Path) -> dict[str, Any]:
        with metered(suite, "train") as cost:
            start = system.tiny(data, out / "init") if spec.train.init == "tiny" else system
            info = start.train(data, params, out / "checkpoint")
        return {"outputs": {"checkpoint": "checkpoint"}, "info": info,
                "data": {lang: split.describe() for lang, split in data.splits.items()}, **cost}

    record = registry.produce("train", identity, build, {**_labels(suite, label), "lang": ",".join(data.splits)})
    publish_json({"record": record.id, "path": str(record.path)}, train_file(suite.name, label))
    return record


def _retrieve_identity(suite: Suite, system_label: str, system: System, index_rec: registry.Record,
                       dataset: Dataset) -> dict[str, Any]:
    return _with_energy(suite, {"index": index_rec.id, "system": system.identity(), "queries": dataset.fingerprint,
                                "depth": suite.depth, "passages": _dump(suite.system(system_label).passages)})


def _dump(model: Any) -> Any:
    return model.model_dump() if model is not None else None


def _with_energy(suite: Suite, identity: dict[str, Any]) -> dict[str, Any]:
    """A record that carries an energy reading is a different record from one without."""
    if suite.cost is None:
        return identity
    return {**identity, "energy": suite.cost.model_dump(include={"country", "region"})}


def _retrieve_id(suite: Suite, label: str, unit: Unit) -> str:
    system = _system(suite, label)
    return registry.identity_hash(_retrieve_identity(suite, label, system, index_record(suite, label, unit),
                                                     load_dataset(unit.dataset_id)))


def shard(suite: Suite, label: str, unit: Unit, number: int) -> registry.Record:
    """The per-document part of indexing for one shard of a sharded collection."""
    system = _system(suite, label)
    dataset = _collection(suite, label, unit)
    identity = _with_energy(suite, {**system.index_identity(dataset), "shard": number, "of": unit.shards})

    def build(out: Path) -> dict[str, Any]:
        with metered(suite, "index") as cost:
            info = system.index_shard(dataset, number, unit.shards, out)
        return {"outputs": {"shard": "."}, "dataset": dataset.describe(), "info": info, **cost}

    record = registry.produce("shard", identity, build, _labels(suite, label, unit))
    publish_json({"record": record.id, "path": str(record.path)}, shard_file(suite.name, label, unit, number))
    return record


def index(suite: Suite, label: str, unit: Unit) -> registry.Record:
    """Build (or find) the index of ``unit`` for system ``label``; a sharded unit merges its shards."""
    system = _system(suite, label)
    dataset = _collection(suite, label, unit)
    identity = _with_energy(suite, system.index_identity(dataset))
    shards = [_pointed(shard_file(suite.name, label, unit, i)) for i in range(unit.shards)] if unit.shards > 1 else []
    if shards:
        identity["shards"] = [r.id for r in shards]

    def build(out: Path) -> dict[str, Any]:
        with metered(suite, "index") as cost:
            if shards:
                info = system.merge_shards(dataset, [r.output("shard") for r in shards], out)
            else:
                info = system.index(dataset, out)
        if shards and "energy" in cost:  # the index's energy is its shards' and the merge's together
            for key in ("kwh", "kg_co2eq", "duration_s", "joules"):
                cost["energy"][key] += sum(r.data["energy"][key] for r in shards)
        return {"outputs": {"index": "."}, "dataset": dataset.describe(), "info": info, **cost}

    record = registry.produce("index", identity, build, _labels(suite, label, unit))
    publish_json({"record": record.id, "path": str(record.path)}, suite_file(suite.name, "index", label, unit))
    return record


def retrieve(suite: Suite, label: str, unit: Unit) -> registry.Record:
    """Search the unit's queries against its index; publish the TREC run."""
    index_rec = index_record(suite, label, unit)
    system = _system(suite, label)
    dataset = load_dataset(unit.dataset_id)
    identity = _retrieve_identity(suite, label, system, index_rec, dataset)

    passages = suite.system(label).passages

    def build(out: Path) -> dict[str, Any]:
        queries = dataset.queries()
        with metered(suite, "retrieve") as cost:
            if passages:
                hits = system.retrieve(queries, index_rec.output("index"), suite.depth * passages.search_factor)
                run = aggregate(hits, suite.depth)
            else:
                run = system.retrieve(queries, index_rec.output("index"), suite.depth)
        write_trec(run, out / "run.trec", tag=label)
        return {"outputs": {"run": "run.trec"}, "queries": len(queries), "dataset": dataset.describe(), **cost}

    record = registry.produce("retrieve", identity, build, _labels(suite, label, unit))
    publish_copy(record.output("run"), suite_file(suite.name, "runs", label, unit))
    if suite.cost is not None:  # while the model is loaded: the cost step then only reads the record
        latency(suite, suite.cost, system, index_rec, dataset, labels=_labels(suite, label, unit))
    return record


def _pointed(pointer: Path) -> registry.Record:
    """The record a published pointer file names."""
    if not pointer.is_file():
        raise FileNotFoundError(f"{pointer}: missing; run the step that writes it first")
    return registry.find(json.loads(pointer.read_text())["record"])


def index_record(suite: Suite, label: str, unit: Unit) -> registry.Record:
    """The index record a suite's published pointer file names."""
    return _pointed(suite_file(suite.name, "index", label, unit))


def latency(suite: Suite, settings: CostSpec, system: System, index_rec: registry.Record,
            dataset: Dataset, *, labels: dict[str, str | None]) -> registry.Record:
    """The latency record of ``system`` on the first ``latency_queries`` queries of ``dataset`` (made once)."""
    identity = {"index": index_rec.id, "system": system.identity(), "queries": dataset.fingerprint,
                "depth": suite.depth, "settings": settings.model_dump(), "hardware": registry.hardware(),
                "code": code_version("harness.measure")}

    def build(out: Path) -> dict[str, Any]:
        queries = dataset.queries()[: settings.latency_queries]
        timing = measure.latency(system, index_rec.output("index"), queries, suite.depth, settings.warmup,
                                 settings.batch_size)
        (out / "latency.json").write_text(json.dumps(timing, indent=2))
        return {"outputs": {"latency": "latency.json"}, "latency": timing, "dataset": dataset.describe()}

    return registry.produce("latency", identity, build, labels)


def cost(suite: Suite, label: str, unit: Unit) -> registry.Record:
    """Latency and throughput of one system on one collection, next to its index and energy figures
    (the latency is usually measured already, by the retrieve step while the model was loaded)."""
    if suite.cost is None:
        raise ValueError(f"suite {suite.name!r} declares no cost settings")
    index_rec = index_record(suite, label, unit)
    record = latency(suite, suite.cost, _system(suite, label), index_rec, load_dataset(unit.dataset_id),
                     labels=_labels(suite, label, unit))
    retrieve_rec = registry.find(_retrieve_id(suite, label, unit))
    train_rec = _pointed(train_file(suite.name, label)) if suite.system(label).train else None
    publish_json({
        "system": label, "dataset": unit.dataset, "lang": unit.lang, "hardware": record.data["hardware"],
        "latency": record.data["latency"], "index": {"seconds": index_rec.data["duration_s"], **index_rec.data["info"]},
        "energy": {"train": train_rec.data.get("energy") if train_rec else None,
                   "index": index_rec.data.get("energy"), "retrieve": retrieve_rec.data.get("energy")},
        "queries": retrieve_rec.data["queries"],
        "records": {"index": index_rec.id, "retrieve": retrieve_rec.id, "latency": record.id},
    }, suite_file(suite.name, "cost", label, unit))
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

    record = registry.produce("evaluate", identity, build, _labels(suite, label, unit))
    published = suite_file(suite.name, "eval", label, unit)
    publish_copy(record.output("per_query"), published)
    jobs.write_settings(published, jobs.eval_settings(suite, label, unit))
    return record


def tables(suite: Suite) -> list[Path]:
    """The suite's tables (Markdown, CSV, LaTeX) from its published per-query and cost files."""
    from harness.report import ReportError
    from harness.report import cost as cost_report
    from harness.report.tables import Block, column_labels, effectiveness, write_tables

    if stale := jobs.stale_cells(suite):
        raise ReportError(jobs.describe_stale(suite, stale))

    cells = {
        (label, unit): read_per_query(suite_file(suite.name, "eval", label, unit))
        for label in suite.systems
        for unit in suite.units()
    }
    from harness.report import significance

    blocks = [Block(measure, frame) for measure, frame in effectiveness(cells, suite.measures).items()]
    labels = column_labels(suite.units())
    by_collection = {(label, labels[unit]): values for (label, unit), values in cells.items()}
    comparisons = significance.run_comparisons(by_collection, suite.statistics, suite.measures)
    if "t-test" in suite.statistics.tests:
        significance.mark_effectiveness(blocks, comparisons, suite.statistics.baseline)
    written = write_tables(blocks, tables_dir(suite.name), "effectiveness")
    if comparisons:
        written += write_tables([significance.comparisons_block(comparisons)], tables_dir(suite.name), "significance")
    if any(c.test == "tost" for c in comparisons):
        written += write_tables(significance.equivalence_blocks(comparisons, list(suite.systems), suite.statistics.margin),
                                tables_dir(suite.name), "equivalence")
    if suite.cost is not None:
        costs = {(label, labels[unit]): json.loads(suite_file(suite.name, "cost", label, unit).read_text())
                 for label in suite.systems for unit in suite.units()}
        written += write_tables([cost_report.latency_block(costs)], tables_dir(suite.name), "latency")
        written += write_tables([cost_report.carbon_block(costs, suite.cost.tdp_watts)], tables_dir(suite.name),
                                "carbon")
    publish_json({"suite": suite.name, "tables": sorted(p.name for p in written)}, tables_dir(suite.name) / "manifest.json")
    return written


def finish(suite: Suite, out: Path) -> None:
    """The completion manifest Snakemake's ``suites/<name>`` target is."""
    manifest = json.loads((tables_dir(suite.name) / "manifest.json").read_text())
    produced = [str(tables_dir(suite.name) / name) for name in manifest["tables"]]
    publish_json({"suite": suite.name, "tables": produced, "results": str(results_dir() / suite.name)}, out)
