"""The steps every suite runs — data, train, shard, index, retrieve, evaluate, cost, tables — one mechanism for all.

Each step computes its identity, asks the registry for the record (building it only when absent)
and publishes a pointer to it where Snakemake expects one (`harness.layout`). Pointers are written
atomically, so a failed step leaves nothing behind that looks complete. The system a step runs is
built in one place (`suite_system`): the catalogue's system, with its trained checkpoint, wrapped in
`Passages` when the suite splits documents.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness import jobs, layout, measure, registry
from harness.code import code_version
from harness.data import DataError, Dataset, load_dataset
from harness.data.base import sha256_file
from harness.evaluate import evaluate, means, without_identical_ids, write_per_query
from harness.paths import results_dir
from harness.runs import read_trec, write_trec
from harness.spec import Suite, SuiteError, TrainSpec, Unit
from harness.system import System, build_system, train_params
from harness.system.passages import Passages
from harness.training import TrainingData


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


def _with_energy(suite: Suite, identity: dict[str, Any]) -> dict[str, Any]:
    """A record that carries an energy reading is a different record from one without."""
    where = jobs.energy(suite)
    return identity if where is None else {**identity, "energy": where}


def suite_system(suite: Suite, label: str) -> System:
    """The suite's system ``label`` as its index, retrieve and cost steps run it: loading its trained
    checkpoint when the suite trains it, over passages when the suite splits documents."""
    spec = suite.system(label)
    system = build_system(spec.system, spec.params)
    if spec.train is not None:
        record = layout.pointed(layout.path("train", suite.name, label))
        system = system.with_checkpoint(record.output("checkpoint"), f"train:{record.id}")
    return Passages(system, spec.passages) if spec.passages else system


def training_data(spec: TrainSpec) -> TrainingData:
    """The training splits (and teacher run) a suite's train section names."""
    splits = {lang: _split(dataset_id, spec.split == "training") for lang, dataset_id in spec.dataset_ids().items()}
    return TrainingData(splits, Path(spec.teacher) if spec.teacher else None)


def _split(dataset_id: str, training: bool) -> Dataset:
    """The collection ``dataset_id``, or its training split when ``training``."""
    dataset = load_dataset(dataset_id)
    split = dataset.training() if training else dataset
    if split is None:
        raise DataError(f"{dataset_id} has no training split; if the id names training data itself "
                        f"(e.g. an ir_datasets train split), set 'split: dataset'")
    return split


def data(suite: Suite, dataset_id: str, training: bool, pointer: Path) -> registry.Record:
    """Fetch one collection (its training split when ``training``) and read it through, once, before
    any job reads it: its loader downloads or builds whatever it caches (ir_datasets' files, ...). The
    Snakefile runs this as a local rule on the submitting machine (compute nodes may have no network),
    so concurrent shard jobs of the collection only read. Keyed by id and loader code, not content,
    so no download happens before the registry's lock is held."""
    identity = {"dataset": dataset_id, "training": training, "code": jobs.dataset_code(dataset_id)}

    def build(out: Path) -> dict[str, Any]:
        split = _split(dataset_id, training)
        for _ in split.docs():
            pass
        return {"outputs": {}, "dataset": split.describe()}

    labels = {"suite": suite.name, "system": None, "dataset": dataset_id, "lang": None}
    record = registry.produce("data", identity, build, labels)
    layout.write_pointer(pointer, record)
    return record


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
    layout.write_pointer(layout.path("train", suite.name, label), record)
    return record


def shard(suite: Suite, label: str, unit: Unit, number: int) -> registry.Record:
    """The per-document part of indexing for one shard of a sharded collection."""
    system = suite_system(suite, label)
    dataset = load_dataset(unit.dataset_id)
    identity = _with_energy(suite, {**system.index_identity(dataset), "shard": number, "of": unit.shards})

    def build(out: Path) -> dict[str, Any]:
        with metered(suite, "index") as cost:
            info = system.index_shard(dataset, number, unit.shards, out)
        return {"outputs": {"shard": "."}, "dataset": dataset.describe(), "info": info, **cost}

    record = registry.produce("shard", identity, build, _labels(suite, label, unit))
    layout.write_pointer(layout.path("shard", suite.name, label, unit, number), record)
    return record


def index(suite: Suite, label: str, unit: Unit) -> registry.Record:
    """Build (or find) the index of ``unit`` for system ``label``; a sharded unit merges its shards."""
    system = suite_system(suite, label)
    dataset = load_dataset(unit.dataset_id)
    identity = _with_energy(suite, system.index_identity(dataset))
    shards = [layout.pointed(layout.path("shard", suite.name, label, unit, i))
              for i in range(unit.shards)] if unit.shards > 1 else []
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
    layout.write_pointer(layout.path("index", suite.name, label, unit), record)
    return record


def retrieve(suite: Suite, label: str, unit: Unit) -> registry.Record:
    """Search the unit's queries against its index; publish a pointer to the TREC run. When the
    suite measures cost, time the queries while the model is loaded (the cost step then only reads)."""
    index_rec = layout.pointed(layout.path("index", suite.name, label, unit))
    system = suite_system(suite, label)
    dataset = load_dataset(unit.dataset_id)
    identity = _with_energy(suite, {"index": index_rec.id, "system": system.identity(),
                                    "queries": dataset.fingerprint, "depth": suite.depth})

    def build(out: Path) -> dict[str, Any]:
        queries = dataset.queries()
        with metered(suite, "retrieve") as cost:
            run = system.retrieve(queries, index_rec.output("index"), suite.depth)
        write_trec(run, out / "run.trec", tag=label)
        return {"outputs": {"run": "run.trec"}, "queries": len(queries), "dataset": dataset.describe(), **cost}

    record = registry.produce("retrieve", identity, build, _labels(suite, label, unit))
    layout.write_pointer(layout.path("retrieve", suite.name, label, unit), record)
    if suite.cost is not None:
        latency(suite, label, unit, record, system)
    return record


def latency(suite: Suite, label: str, unit: Unit, retrieve_rec: registry.Record,
            system: System | None = None) -> registry.Record:
    """The latency record of the pipeline that made ``retrieve_rec`` (same index, system, queries and
    depth) on the first ``latency_queries`` queries, measured once; ``system`` is that pipeline when
    the caller has it loaded, else it is built only if the record is absent."""
    settings = suite.cost
    if settings is None:
        raise ValueError(f"suite {suite.name!r} declares no cost settings")
    made = retrieve_rec.data["identity"]
    identity = {"index": made["index"], "system": made["system"], "queries": made["queries"], "depth": made["depth"],
                "settings": settings.model_dump(), "hardware": registry.hardware(),
                "code": code_version("harness.measure")}

    def build(out: Path) -> dict[str, Any]:
        timed = system if system is not None else suite_system(suite, label)
        dataset = load_dataset(unit.dataset_id)
        queries = dataset.queries()[: settings.latency_queries]
        index_dir = registry.get("index", made["index"]).output("index")
        timing = measure.latency(timed, index_dir, queries, suite.depth, settings.warmup, settings.batch_size)
        (out / "latency.json").write_text(json.dumps(timing, indent=2))
        return {"outputs": {"latency": "latency.json"}, "latency": timing, "dataset": dataset.describe()}

    return registry.produce("latency", identity, build, _labels(suite, label, unit))


def cost(suite: Suite, label: str, unit: Unit) -> registry.Record:
    """Latency and throughput of one system on one collection, next to its index and energy figures,
    published as a pointer to the latency record with that summary (the latency is usually measured
    already, by the retrieve step while the model was loaded)."""
    if suite.cost is None:
        raise ValueError(f"suite {suite.name!r} declares no cost settings")
    retrieve_rec = layout.pointed(layout.path("retrieve", suite.name, label, unit))
    index_rec = registry.get("index", retrieve_rec.data["identity"]["index"])
    record = latency(suite, label, unit, retrieve_rec)
    train_rec = layout.pointed(layout.path("train", suite.name, label)) if suite.system(label).train else None
    layout.write_pointer(
        layout.path("cost", suite.name, label, unit), record,
        system=label, dataset=unit.dataset, lang=unit.lang, hardware=record.data["hardware"],
        latency=record.data["latency"], index={"seconds": index_rec.data["duration_s"], **index_rec.data["info"]},
        energy={"train": train_rec.data.get("energy") if train_rec else None,
                "index": index_rec.data.get("energy"), "retrieve": retrieve_rec.data.get("energy")},
        queries=retrieve_rec.data["queries"],
        records={"index": index_rec.id, "retrieve": retrieve_rec.id, "latency": record.id})
    return record


def evaluate_run(suite: Suite, label: str, unit: Unit) -> registry.Record:
    """Per-query values of the suite's measures for the published run; the pointer carries the
    digest of the settings it was made with (`harness.jobs.current`)."""
    run_path = layout.run_file(suite.name, label, unit)
    run = read_trec(run_path)
    dataset = load_dataset(unit.dataset_id)
    identity = {"run": sha256_file(run_path).hex(), "qrels": dataset.fingerprint,
                "measures": suite.measures, "code": code_version("harness.evaluate")}
    if unit.ignore_identical_ids:
        identity["ignore_identical_ids"] = True
        run = without_identical_ids(run)

    def build(out: Path) -> dict[str, Any]:
        per_query = evaluate(run, dataset.qrels(), suite.measures)
        write_per_query(per_query, out / "per_query.tsv")
        return {"outputs": {"per_query": "per_query.tsv"}, "means": means(per_query), "system": label,
                "dataset": dataset.describe()}

    record = registry.produce("evaluate", identity, build, _labels(suite, label, unit))
    layout.write_pointer(layout.path("evaluate", suite.name, label, unit), record,
                         settings=jobs.digest(jobs.eval_settings(suite, label, unit)))
    return record


def tables(suite: Suite) -> list[Path]:
    """The suite's tables (`harness.report.suite`) and the manifest listing them."""
    from harness.report.suite import write_suite_tables

    written = write_suite_tables(suite)
    layout.publish_json({"suite": suite.name, "tables": sorted(p.name for p in written)}, layout.path("tables", suite.name))
    return written


def finish(suite: Suite, out: Path) -> None:
    """The completion manifest Snakemake's ``suites/<name>`` target is."""
    tables_dir = layout.tables_dir(suite.name)
    manifest = json.loads(layout.path("tables", suite.name).read_text())
    produced = [str(tables_dir / name) for name in manifest["tables"]]
    layout.publish_json({"suite": suite.name, "tables": produced, "results": str(results_dir() / suite.name)}, out)
