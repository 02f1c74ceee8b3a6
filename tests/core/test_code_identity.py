"""Code identity: every file a step's code reaches is hashed, an edit reruns exactly the jobs it
affects, and reports refuse or mark results made with other settings or code."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness import code, jobs
from harness.cli import main
from harness.spec import load_suite
from harness.system import catalog, system_class
from tests.helpers import REPO, write_suite

SUITE = """\
name: edits
depth: 20
measures: [nDCG@10]
datasets:
  - name: syn
    id: "synthetic:{lang}?docs=80&queries=5&train=5"
    languages: [en, ru]
systems:
  bm25:
    system: bm25
"""


def reached(module: str) -> set[str]:
    return {str(p.relative_to(REPO)) for p in code.closure(module)}


def test_closure_follows_imports_of_the_family_and_the_harness() -> None:
    dense = reached("systems.dense.system")
    # what a hand-kept list of DPR-XM would miss: its trainer, tiny checkpoints, the training loop
    assert {"systems/dense/system.py", "systems/dense/train.py", "systems/common/tiny.py",
            "harness/training/loop.py", "harness/system/base.py", "harness/runs.py"} <= dense
    bm25 = reached("systems.bm25.system")
    assert {"systems/bm25/system.py", "systems/bm25/lucene.py", "harness/languages.py"} <= bm25
    assert not any(f.startswith("systems/") and not f.startswith("systems/bm25/") and f != "systems/__init__.py"
                   for f in bm25), bm25
    # ColBERT's PLAID index counts; a package's __init__ imported only as a parent is hashed but not
    # followed (harness.data's loaders do not shape a system's output)
    assert any(f.startswith("systems/colbert/plaid") for f in reached("systems.colbert.system"))
    assert "harness/data/__init__.py" in bm25 and "harness/data/beir.py" not in bm25


def test_code_version_changes_with_any_reached_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / "repo"
    for package in ("harness", "systems"):
        shutil.copytree(REPO / package, copy / package, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(code, "repo_root", lambda: copy)
    for fn in (code.imported, code.closure, code.code_version):
        fn.cache_clear()
    try:
        before = {m: code.code_version(m) for m in ("systems.bm25.system", "systems.dense.system", "harness.evaluate")}
        with open(copy / "systems/bm25/lucene.py", "a") as f:
            f.write("# an edit\n")
        for fn in (code.imported, code.closure, code.code_version):
            fn.cache_clear()
        after = {m: code.code_version(m) for m in before}
    finally:
        for fn in (code.imported, code.closure, code.code_version):
            fn.cache_clear()
    assert after["systems.bm25.system"] != before["systems.bm25.system"]
    assert after["systems.dense.system"] == before["systems.dense.system"] and after["harness.evaluate"] == before["harness.evaluate"]


def test_type_checking_imports_are_not_followed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "harness").mkdir()
    (tmp_path / "harness/__init__.py").write_text("")
    (tmp_path / "harness/a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                           "    from harness import b\ndef f():\n    from harness import c\n")
    for name in ("b", "c"):
        (tmp_path / f"harness/{name}.py").write_text("")
    monkeypatch.setattr(code, "repo_root", lambda: tmp_path)
    code.imported.cache_clear()
    code.closure.cache_clear()
    try:
        files = {p.name for p in code.closure("harness.a")}
    finally:
        code.imported.cache_clear()
        code.closure.cache_clear()
    assert files == {"__init__.py", "a.py", "c.py"}


def test_catalog_rows_name_the_modules_of_their_classes() -> None:
    for name, row in catalog.SYSTEMS.items():
        assert system_class(name).__module__ == row.module
    for prefix, row in catalog.PREFIXES.items():
        assert system_class(f"{prefix}:any").__module__ == row.module
    assert catalog.entry("nope") is None and catalog.entry("st:") is None


def test_job_settings_import_no_model_code() -> None:
    """The catalogue, the code identity and every job's settings come from file contents alone (checking a
    suite's params at planning still imports its system modules)."""
    script = (
        "import sys, json\n"
        "from harness import jobs\n"
        "from harness.spec import Suite\n"
        "import yaml\n"
        f"suite = Suite(**yaml.safe_load(open({str(REPO / 'suites/demo.yaml')!r})))\n"
        "for label in suite.systems:\n"
        "    jobs.train_settings(suite, label)\n"
        "    for unit in suite.units():\n"
        "        json.dumps([jobs.eval_settings(suite, label, unit), jobs.cost_settings(suite, label, unit)])\n"
        "jobs.tables_settings(suite)\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'torch', 'faiss', 'sentence_transformers',"
        " 'transformers', 'systems', 'jnius'})\n"
        "print(json.dumps(heavy))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, check=True)
    assert json.loads(done.stdout) == []


def test_listing_systems_imports_no_model_code() -> None:
    """`harness systems` prints the catalogue's rows; only naming one system imports its family."""
    script = ("import sys, json\n"
              "from harness.cli import main\n"
              "main(['systems'])\n"
              "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {'torch', 'systems'})))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, check=True)
    *rows, heavy = done.stdout.splitlines()
    assert json.loads(heavy) == []
    listed = {row.split()[0]: row for row in rows}
    assert set(listed) == set(catalog.names())
    assert catalog.SYSTEMS["dpr-xm"].description in listed["dpr-xm"] and '"pooling": "mean"' in listed["dpr-xm"]
    assert main(["systems", "bm25"]) == 0


def run_snakemake(copy: Path, workdir: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(copy / "Snakefile"), "--cores", "1",
                           "--directory", str(workdir), *args], capture_output=True, text=True, timeout=600,
                          cwd=workdir, env={**os.environ, "PYTHONPATH": str(copy), "HARNESS_CACHE": str(workdir / "cache")},
                          check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


def planned(log: str) -> dict[str, int]:
    """Job counts per rule of a dry run's job stats."""
    if "Nothing to be done" in log:
        return {}
    lines = log[log.index("Job stats:"):].splitlines()[3:]
    table = lines[:next(i for i, line in enumerate(lines) if not line.strip())]
    return {p[0]: int(p[1]) for line in table if len(p := line.split()) == 2 and p[0] != "total"}


@pytest.mark.slow
def test_an_edit_reruns_exactly_the_jobs_it_affects(tmp_path: Path) -> None:
    """A copy of the repository runs a BM25 suite; edits to its files rerun what they reach, no more."""
    copy = tmp_path / "repo"
    for item in ("harness", "systems", "suites", "Snakefile", "profiles"):
        source = REPO / item
        if source.is_dir():
            shutil.copytree(source, copy / item, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, copy / item)
    work = tmp_path / "work"
    work.mkdir()
    write_suite(work, "edits", SUITE)
    run_snakemake(copy, work, "suites/edits")
    assert "Nothing to be done" in run_snakemake(copy, work, "-n", "suites/edits")

    def after_edit(path: str, keep: bool = False) -> dict[str, int]:
        """The jobs a dry run plans once ``path`` has a comment appended (the edit is undone unless ``keep``)."""
        original = (copy / path).read_text()
        (copy / path).write_text(original + "# an edit\n")
        jobs = planned(run_snakemake(copy, work, "-n", "suites/edits"))
        if not keep:
            (copy / path).write_text(original)
        return jobs

    assert after_edit("systems/dense/system.py") == {}  # another family: nothing
    assert after_edit("harness/evaluate.py") == {"evaluate": 2, "tables": 1, "suite": 1}
    assert after_edit("harness/report/tables.py") == {"tables": 1, "suite": 1}
    assert after_edit("harness/data/synthetic.py") == {"data": 2, "index": 2, "retrieve": 2, "evaluate": 2, "tables": 1,
                                                       "suite": 1}
    assert "Nothing to be done" in run_snakemake(copy, work, "-n", "suites/edits")  # undone: current again
    assert after_edit("systems/bm25/system.py", keep=True) == {"index": 2, "retrieve": 2, "evaluate": 2, "tables": 1,
                                                        "suite": 1}
    # the rerun builds new records (the registry identity covers the same code), then all is done
    index_before = {p.name for p in (work / "results/registry/index").iterdir() if not p.name.startswith(".")}
    run_snakemake(copy, work, "suites/edits")
    index_after = {p.name for p in (work / "results/registry/index").iterdir() if not p.name.startswith(".")}
    assert len(index_after) == 2 * len(index_before)
    assert "Nothing to be done" in run_snakemake(copy, work, "-n", "suites/edits")


@pytest.mark.slow
def test_reports_refuse_or_mark_results_of_other_settings(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    """Editing k1/b without rerunning: check and tables refuse, reproduce and the leaderboard mark."""
    from tests.helpers import snakemake

    write_suite(workdir, "edits", SUITE)
    snakemake(workdir, "suites/edits")
    suite = load_suite("edits")
    assert jobs.stale_cells(suite) == []
    assert main(["baseline", "--suite", "edits", "--out", str(workdir / "b.json")]) == 0
    assert main(["check", "--baseline", str(workdir / "b.json")]) == 0
    capsys.readouterr()

    write_suite(workdir, "edits", SUITE.replace("system: bm25\n", "system: bm25\n    params: {k1: 1.5, b: 0.3}\n"))
    stale = jobs.stale_cells(load_suite("edits"))
    assert sorted(u.lang for _, u in stale) == ["en", "ru"]
    assert main(["check", "--baseline", str(workdir / "b.json")]) == 2
    err = capsys.readouterr().err
    assert "other settings or code" in err and "bm25 syn/en" in err and len(err.strip().splitlines()) == 1
    assert main(["tables", "--suite", "edits"]) == 2
    assert "other settings or code" in capsys.readouterr().err
    assert main(["leaderboard"]) == 0
    capsys.readouterr()
    assert "STALE" in (workdir / "results/leaderboard.md").read_text()
    assert "class='stale'" in (workdir / "results/leaderboard.html").read_text()

    published = workdir / "suites/published"
    published.mkdir()
    (published / "edits-table.yaml").write_text("""\
id: edits-table
paper: {title: A paper, seed: none}
table: Table 1
caption: BM25 on the synthetic collections
provenance: invented for this test
reported_precision: 3
scale: 1
suite: edits
columns:
  en: {dataset: syn, lang: en, measure: nDCG@10}
rows:
  - {system: BM25, harness_system: bm25, values: {en: 0.5}}
""")
    assert main(["reproduce", "edits-table"]) == 1
    out = capsys.readouterr().out
    assert "! stale" in out and "other settings or code" in out

    snakemake(workdir, "suites/edits")  # the rerun makes them current again
    assert jobs.stale_cells(load_suite("edits")) == []
