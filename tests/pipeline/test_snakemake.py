"""The Snakemake path: `snakemake --cores all suites/<name>` runs a suite; a rerun does nothing."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pandas as pd
import pytest

from harness import layout, registry
from harness.cli import main
from harness.data import load_dataset
from harness.evaluate import evaluate, means
from harness.runs import read_trec
from harness.spec import load_suite
from harness.system import system_class
from tests.data.irds_fixtures import stage, tsv
from tests.helpers import REPO, snakemake, write_suite

TINY = """\
name: tiny
depth: 50
measures: [nDCG@10, RR@10]
datasets:
  - name: syn
    id: "synthetic:{lang}?docs=300&queries=10&train=10"
    languages: [en, ru, hi]
systems:
  bm25:
    system: bm25
  bm25-k1.2:
    system: bm25
    params: {k1: 1.2, b: 0.75}
"""


@pytest.fixture
def tiny(workdir: Path) -> Path:
    write_suite(workdir, "tiny", TINY)
    return workdir


def test_tiny_suite_runs_resumes_and_reruns_nothing(tiny: Path, capsys: pytest.CaptureFixture) -> None:
    # Part of the suite first, as if an earlier invocation had been interrupted after one run.
    en = load_suite("tiny").unit("syn", "en")
    snakemake(tiny, str(layout.path("retrieve", "tiny", "bm25", en)))
    index_records = {p.name for p in (tiny / "results/registry/index").iterdir() if not p.name.startswith(".")}
    assert len(index_records) == 1

    log = snakemake(tiny, "suites/tiny")
    assert "Finished" in log
    # the resumed invocation did not redo the finished en index/run jobs
    assert "rule index:\n    output: results/tiny/index/bm25/syn/en.json" not in log
    manifest = json.loads((tiny / "suites" / "tiny").read_text())
    assert manifest["suite"] == "tiny"
    for ext in ("md", "csv", "tex"):
        assert (tiny / "results/tiny/tables" / f"effectiveness.{ext}").stat().st_size > 0
    # both BM25 configurations share one index per language (k1/b are search-time settings)
    index_dirs = [p for p in (tiny / "results/registry/index").iterdir() if not p.name.startswith(".")]
    assert len(index_dirs) == 3

    # table cells equal a direct evaluation of the published run
    table = pd.read_csv(tiny / "results/tiny/tables/effectiveness.csv")
    row = table[(table.block == "nDCG@10") & (table.system == "bm25-k1.2")].iloc[0]
    dataset = load_dataset("synthetic:ru?docs=300&queries=10&train=10")
    run = read_trec(layout.run_file("tiny", "bm25-k1.2", load_suite("tiny").unit("syn", "ru")))
    expected = means(evaluate(run, dataset.qrels(), ["nDCG@10"]))["nDCG@10"]
    assert row["ru"] == pytest.approx(expected, abs=1e-6)
    assert row["Avg"] == pytest.approx(row[["en", "ru", "hi"]].mean(), abs=1e-6)

    # every step published a pointer to the record it built
    pointers = sorted(p for p in (tiny / "results/tiny").rglob("*.json") if p.parent.name != "tables")
    assert {p.relative_to(tiny / "results/tiny").parts[0] for p in pointers} == {"data", "index", "runs", "eval"}
    assert len(pointers) == 3 + 3 * 2 * 3  # a data pointer per collection; index, run, eval per system too
    for pointer in pointers:
        fields = json.loads(pointer.read_text())
        record = layout.pointed(pointer.relative_to(tiny))
        assert (fields["record"], fields["path"]) == (record.id, str(record.path))
        assert fields["outputs"] == {name: str(record.output(name)) for name in record.data["outputs"]}
    assert main(["runs", "--suite", "tiny"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 6 and listed[0].split("\t") == ["bm25", "syn", "en", str(layout.run_file("tiny", "bm25", en))]

    before = {r.id for r in registry.records()}
    again = snakemake(tiny, "suites/tiny")
    assert "Nothing to be done" in again
    assert {r.id for r in registry.records()} == before


def test_changed_settings_rerun_without_overwriting(tiny: Path) -> None:
    snakemake(tiny, "suites/tiny")
    runs_before = {r.id for r in registry.records() if r.step == "retrieve"}
    write_suite(tiny, "tiny", TINY.replace("depth: 50", "depth: 20"))
    log = snakemake(tiny, "suites/tiny")
    assert "rule retrieve" in log and "rule index" not in log
    runs_after = {r.id for r in registry.records() if r.step == "retrieve"}
    assert runs_before < runs_after and len(runs_after) == 2 * len(runs_before)
    run = read_trec(layout.run_file("tiny", "bm25", load_suite("tiny").unit("syn", "en")))
    assert max(len(r) for r in run.values()) == 20


def test_dry_run_prints_job_graph(tiny: Path) -> None:
    log = snakemake(tiny, "-n", "suites/tiny")
    stats = log[log.index("Job stats:"):].splitlines()[3:11]
    counts = {line.split()[0]: int(line.split()[1]) for line in stats if len(line.split()) == 2}
    # one data job per collection, 2 systems x 3 languages for each per-collection step, then one table
    # and the suite target
    assert counts == {"data": 3, "index": 6, "retrieve": 6, "evaluate": 6, "tables": 1, "suite": 1, "total": 23}
    assert not (tiny / "results").exists()


def test_the_snakefile_takes_every_results_path_from_the_layout() -> None:
    snakefile = (REPO / "Snakefile").read_text()
    assert "results/" not in snakefile and "{suite}" not in snakefile
    assert all(f'layout.pattern("{step}")' in snakefile for step in layout.PATTERNS)


def test_demo_suite(demo: Path) -> None:
    """The README's demo, exactly: the repository's suites/demo.yaml, its neural systems trained inside it."""
    table = pd.read_csv(demo / "results/demo/tables/effectiveness.csv")
    langs = ["en", "ru"]
    assert set(langs) <= set(table.columns)
    ndcg = table[table.block == "nDCG@10"].set_index("system")
    assert all(0.3 < ndcg.loc["bm25", lang] <= 1.0 for lang in langs)
    suite = load_suite(str(REPO / "suites" / "demo.yaml"))
    trained = [label for label, spec in suite.systems.items() if spec.train]
    assert {"dpr-xm", "colbert-xm", "mtd-colbertx", "nllb-e5"} <= set(trained)
    for label in trained:
        pointer = json.loads((demo / f"results/demo/train/{label}.json").read_text())
        record = json.loads((demo / pointer["path"] / "record.json").read_text())  # paths are relative to the workdir
        losses = record["info"]["losses"]
        assert len(losses) == suite.systems[label].train.params["steps"]
        # every trained system's index names its training record, not a path
        index = json.loads((demo / f"results/demo/index/{label}/synthetic/en.json").read_text())
        identity = json.loads((demo / index["path"] / "record.json").read_text())["identity"]
        assert identity["params"][system_class(suite.systems[label].system).checkpoint_param] == f"train:{pointer['record']}"
        assert all(0.0 <= ndcg.loc[label, lang] <= 1.0 for lang in langs)
    carbon = pd.read_csv(demo / "results/demo/tables/carbon.csv")
    assert "train kWh" in carbon.columns
    assert "Nothing to be done" in snakemake(demo, "suites/demo")


SHARDED = """\
name: sharded
depth: 30
measures: [nDCG@10]
datasets:
  - name: whole
    id: "synthetic:de?docs=400&queries=10&train=10"
    languages: [de]
  - name: split
    id: "synthetic:de?docs=400&queries=10&train=10"
    languages: [de]
    shards: 3
systems:
  bm25:
    system: bm25
"""


def test_sharded_index_gives_the_unsharded_run(workdir: Path) -> None:
    """Three shards merge to the unsharded run; the collection is fetched by one local data job, the one
    for both suite collections that share its id, and it ends before any shard job starts (two cores:
    the shards run side by side)."""
    write_suite(workdir, "sharded", SHARDED)
    log = snakemake(workdir, "suites/sharded")
    assert log.count("rule shard:") == 3
    assert log.count("localrule data:") == 1 and "rule data:" not in log.replace("localrule data:", "")
    pointer = layout.data("sharded", "synthetic:de?docs=400&queries=10&train=10", False)
    data_job = re.search(rf"localrule data:\n    output: {re.escape(str(pointer))}\n    jobid: (\d+)", log)
    fetched = log.index(f"Finished jobid: {data_job.group(1)} (Rule: data)")
    assert all(m.start() > fetched for m in re.finditer("rule shard:", log))
    built = [r for r in registry.records() if r.step == "data"]
    assert len(built) == 1 and built[0].data["dataset"]["docs"] == 400
    assert layout.pointed(workdir / pointer).id == built[0].id
    for i in range(3):
        assert (workdir / f"results/sharded/shards/bm25/split/de/{i}.json").is_file()
    suite = load_suite("sharded")
    whole, split = (layout.run_file("sharded", "bm25", suite.unit(name, "de")).read_text()
                    for name in ("whole", "split"))
    assert whole == split and len(whole.splitlines()) == 10 * 30
    merged = [r for r in registry.records() if r.step == "index" and "shards" in r.data["identity"]]
    assert len(merged) == 1 and merged[0].data["info"]["documents"] == 400
    shards = [r for r in registry.records() if r.step == "shard"]
    assert sorted(r.data["info"]["documents"] for r in shards) == [133, 133, 134]


def test_jobs_that_need_no_model_import_no_torch(demo: Path) -> None:
    """Data, BM25, evaluate, cost, tables and finish jobs start without torch or sentence-transformers (their
    start-up is most of their time); the neural systems' jobs do load them. From the demo's import log."""
    jobs = [json.loads(line) for line in (demo / "imports.jsonl").read_text().splitlines()]
    suite = load_suite(str(REPO / "suites" / "demo.yaml"))
    units = len(suite.units())
    steps = {step: [j for j in jobs if j["argv"][0] == step] for step in ("evaluate", "cost", "tables")}
    assert len(steps["evaluate"]) == len(steps["cost"]) == len(suite.systems) * units and len(steps["tables"]) == 1
    for job in jobs:
        step, system = job["argv"][0], dict(zip(job["argv"][1::2], job["argv"][2::2])).get("--system")
        model_free = step in ("data", "evaluate", "cost", "tables", "finish") or system == "bm25"
        if model_free:
            assert not {"torch", "sentence_transformers", "transformers"} & set(job["imported"]), job
        elif step in ("train", "index", "retrieve"):
            assert "torch" in job["imported"], job  # the log sees what a model job imports


def test_index_records_name_the_device_and_faiss_build_that_ran(demo: Path) -> None:
    """A dense index names torch's device and the faiss build, PLAID's the device; BM25's, with neither
    imported, names none."""
    def runtime(label: str) -> dict:
        pointer = json.loads((demo / f"results/demo/index/{label}/synthetic/en.json").read_text())
        return json.loads((demo / pointer["path"] / "record.json").read_text())["runtime"]

    import torch

    dense, plaid = runtime("dpr-xm"), runtime("colbert-xm")
    used = "cuda" if torch.cuda.is_available() else "cpu"  # the systems' device: auto
    assert dense["device"] == plaid["device"] == used and dense["torch"] == torch.__version__
    assert dense["faiss"]["package"] in ("faiss-cpu", "faiss-gpu") and dense["faiss"]["version"].startswith("1.")
    assert "device" not in runtime("bm25") and "faiss" not in runtime("bm25")


TRAINED = SHARDED + """\
  dpr-xm:
    system: dpr-xm
    train: {data: "synthetic:de?docs=400&queries=10&train=10", languages: [de], init: tiny}
"""


def test_data_step_fetches_a_collection_or_training_data(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`harness data` reads a suite collection, or a system's training split, once into a data record
    and publishes it at the pointer keyed by what it read (`layout.data`), however it was asked; asking
    for nothing, for training data a system does not have or for a key the suite does not read is a
    one-line error."""
    write_suite(workdir, "sharded", TRAINED)
    assert main(["data", "--suite", "sharded", "--lang", "de"]) == 2
    assert "give --dataset (a suite collection), --system (its training data) or --key" in capsys.readouterr().err
    assert main(["data", "--suite", "sharded", "--system", "bm25", "--lang", "de"]) == 2
    assert "system 'bm25' trains on no data in language 'de'" in capsys.readouterr().err
    assert main(["data", "--suite", "sharded", "--key", "eval-0123"]) == 2
    assert "suite 'sharded' reads no collection with data key 'eval-0123'" in capsys.readouterr().err
    dataset_id = "synthetic:de?docs=400&queries=10&train=10"
    train_key = layout.data_key(dataset_id, True)
    for args in (["--dataset", "split", "--lang", "de"], ["--dataset", "whole", "--lang", "de"],
                 ["--system", "dpr-xm", "--lang", "de"], ["--key", train_key]):
        assert main(["data", "--suite", "sharded", *args]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert [line.split()[2] == "reused" for line in printed] == [False, True, False, True]
    test, train = (layout.pointed(workdir / layout.data("sharded", dataset_id, training))
                   for training in (False, True))
    assert test.data["dataset"]["docs"] == 400 and test.data["dataset"]["queries"] == 10
    assert train.data["identity"]["training"] and train.data["dataset"]["queries"] == 10
    assert sorted(p.stem for p in (workdir / "results/sharded/data").iterdir()) == sorted(
        [layout.data_key(dataset_id, False), train_key])


def test_one_data_job_per_collection_however_many_read_it(workdir: Path) -> None:
    """Units and trained systems that read the same collection share its data job: two units and two
    systems trained on the units' collection need one job for the collection and one for its training split."""
    twice = TRAINED + TRAINED[TRAINED.index("  dpr-xm:"):].replace("dpr-xm:", "dpr-xm-2:", 1)
    write_suite(workdir, "sharded", twice)
    log = snakemake(workdir, "-n", "suites/sharded")
    stats = log[log.index("Job stats:"):].splitlines()
    counts = {line.split()[0]: int(line.split()[1]) for line in stats[3:15] if len(line.split()) == 2}
    assert counts["data"] == 2 and counts["train"] == 2 and counts["index"] == 6, counts


FETCH_HOOK = '''\
"""Test hook, loaded by every Python process of the run: ir_datasets "downloads" a missing file by
copying it from $FETCH_MIRROR (staged at the same relative path as under $IR_DATASETS_HOME), and
each download is logged with the harness step that asked for it."""
import os
import shutil
import sys
from pathlib import Path

from ir_datasets.util import download

_path = download.Download.path


def path(self, force=True):
    target = self._cache_path
    if force and target and not os.path.exists(target):
        relative = Path(target).relative_to(os.environ["IR_DATASETS_HOME"])
        with open(Path(os.environ["FETCH_MIRROR"]) / "fetched.log", "a") as log:
            log.write(f"{relative}\\t{' '.join(sys.argv[1:3])}\\n")
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(Path(os.environ["FETCH_MIRROR"]) / relative, target)
    return _path(self, force)


download.Download.path = path
'''

IRDS_SHARDED = """\
name: fetched
depth: 10
measures: [nDCG@10]
datasets:
  - {name: mmarco, id: "irds:mmarco/v2/dt/dev/small", shards: 2}
systems:
  bm25:
    system: bm25
"""


def test_an_ir_datasets_collection_is_downloaded_once_by_its_data_job(workdir: Path) -> None:
    """Two shard jobs side by side (two cores) of an ir_datasets collection: each of its files is
    downloaded once, by the collection's data job; the shard (and later) jobs only read."""
    mirror, hook = workdir / "mirror", workdir / "hook"
    docs = [(str(i), f"document {i} over de rivier en de stad nummer {i}") for i in range(12)]
    stage(mirror, "mmarco", {"v2/dt/docs": tsv(docs), "v2/dt/queries/dev": tsv([("100", "rivier"), ("101", "stad")]),
                             "dev/qrels-small": "100 0 1 1\n101 0 2 1\n"})
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(FETCH_HOOK)
    write_suite(workdir, "fetched", IRDS_SHARDED)
    snakemake(workdir, "suites/fetched", env={"PYTHONPATH": f"{hook}{os.pathsep}{REPO}", "FETCH_MIRROR": str(mirror),
                                              "IR_DATASETS_HOME": str(workdir / "irds")})
    fetched = sorted((mirror / "fetched.log").read_text().splitlines())
    assert fetched == [f"mmarco/{path}\tdata --suite" for path in
                       ("qrels.dev.small.tsv", "v2/dutch.queries.dev.tsv", "v2/dutch_collection.tsv")]
    assert len(list((workdir / "results/registry/shard").glob("*/record.json"))) == 2

