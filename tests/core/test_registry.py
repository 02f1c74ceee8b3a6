"""Registry identity, idempotence, failure cleanup and concurrency."""

from __future__ import annotations

import json
import multiprocessing
import re
from pathlib import Path

import pytest

from harness import registry
from harness.cli import main
from tests.helpers import write_suite


def _writer(out: Path, text: str = "hello") -> dict:
    (out / "a.txt").write_text(text)
    return {"outputs": {"a": "a.txt"}}


def test_identical_inputs_never_recompute(workdir: Path) -> None:
    calls = []

    def build(out: Path) -> dict:
        calls.append(out)
        return _writer(out)

    first = registry.produce("index", {"x": 1, "nested": {"b": 2, "a": 1}}, build)
    second = registry.produce("index", {"nested": {"a": 1, "b": 2}, "x": 1}, build)
    assert len(calls) == 1
    assert first.id == second.id
    assert second.output("a").read_text() == "hello"
    for key in ("git_commit", "packages", "hardware", "duration_s", "identity", "created"):
        assert key in second.data
    assert second.data["packages"]["harness"]


def test_different_inputs_never_overwrite(workdir: Path) -> None:
    a = registry.produce("index", {"x": 1}, lambda out: _writer(out, "one"))
    b = registry.produce("index", {"x": 2}, lambda out: _writer(out, "two"))
    assert a.id != b.id
    assert a.output("a").read_text() == "one"
    assert b.output("a").read_text() == "two"


def test_failed_build_leaves_nothing(workdir: Path) -> None:
    def broken(out: Path) -> dict:
        (out / "partial.txt").write_text("half")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        registry.produce("index", {"x": 3}, broken)
    step_dir = registry.registry_root() / "index"
    assert [p.name for p in step_dir.iterdir() if not p.name.endswith(".lock")] == []
    assert registry.lookup("index", {"x": 3}) is None
    record = registry.produce("index", {"x": 3}, _writer)
    assert record.output("a").read_text() == "hello"


def _concurrent_produce(args: tuple[str, int]) -> str:
    root, worker = args
    import os
    import time

    os.chdir(root)

    def build(out: Path) -> dict:
        with open(Path(root) / "builds.log", "a") as log:
            log.write(f"{worker}\n")
        time.sleep(0.3)
        (out / "a.txt").write_text("same")
        return {"outputs": {"a": "a.txt"}}

    return registry.produce("retrieve", {"shared": True}, build).id


def test_concurrent_jobs_build_once(workdir: Path) -> None:
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        ids = pool.map(_concurrent_produce, [(str(workdir), i) for i in range(8)])
    assert len(set(ids)) == 1
    assert len((workdir / "builds.log").read_text().split()) == 1
    records = list(registry.records())
    assert len(records) == 1 and records[0].output("a").read_text() == "same"


def test_cli_lists_and_shows(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    record = registry.produce("evaluate", {"m": "nDCG@10"}, lambda out: {**_writer(out), "means": {"nDCG@10": 0.5}})
    assert main(["registry", "list"]) == 0
    listed = capsys.readouterr().out
    assert record.id in listed and "nDCG@10" in listed
    assert main(["registry", "show", record.id[:8]]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["id"] == record.id and shown["identity"] == {"m": "nDCG@10"}
    assert main(["registry", "show", "zzzz"]) == 2
    assert "no record id starts with 'zzzz'" in capsys.readouterr().err


def test_show_names_the_ids_an_ambiguous_prefix_matches(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    made = [registry.produce("index" if i % 2 else "retrieve", {"x": i}, _writer) for i in range(17)]
    prefix = next(a.id[0] for a in made for b in made if a is not b and a.id[0] == b.id[0])  # 17 ids, 16 digits
    assert main(["registry", "show", prefix]) == 2
    err = capsys.readouterr().err.strip()
    matching = [r for r in made if r.id.startswith(prefix)]
    assert len(err.splitlines()) == 1 and f"{len(matching)} records start with {prefix!r}" in err
    for r in matching:
        assert f"{r.id} ({r.step}, {r.data['created']})" in err
    unused = next(f"{i:02x}" for i in range(256) if not any(r.id.startswith(f"{i:02x}") for r in made))
    assert main(["registry", "show", unused]) == 2
    assert f"no record id starts with {unused!r}" in capsys.readouterr().err


def test_find_reads_only_the_records_its_prefix_names(workdir: Path) -> None:
    wanted, other = (registry.produce("index", {"x": i}, _writer) for i in (1, 2))
    (other.path / registry.RECORD).write_text("{not json")  # reading it would fail
    assert registry.find(wanted.id[:6]).id == wanted.id


def test_a_whole_id_is_looked_up_in_each_step_folder_directly(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wanted = registry.produce("retrieve", {"x": 0}, _writer)
    for i in range(1, 6):
        other = registry.produce("index", {"x": i}, _writer)
        (other.path / registry.RECORD).write_text("{not json")  # reading it would fail
    listed = []
    glob = Path.glob
    monkeypatch.setattr(Path, "glob", lambda self, pattern: listed.append((self, pattern)) or glob(self, pattern))
    assert registry.find(wanted.id).path == wanted.path
    assert listed == [(registry.registry_root(), "*")]  # the steps, never the records under them
    assert registry.get("retrieve", wanted.id).data == wanted.data
    with pytest.raises(registry.RegistryError, match=f"no index record '{wanted.id}'"):
        registry.get("index", wanted.id)


SUITE = """\
name: {name}
depth: 10
measures: [nDCG@10]
datasets:
  - {{name: {dataset}, id: "synthetic:en?docs=100&queries=5&train=5", languages: [en]}}
systems:
  {system}:
    system: bm25
"""


def test_reused_record_says_so_and_the_list_shows_who_built_it(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    """Two suites with different labels share one index; the second is told it reused the first's."""
    write_suite(workdir, "first", SUITE.format(name="first", dataset="syn", system="bm25"))
    write_suite(workdir, "second", SUITE.format(name="second", dataset="col", system="lexical"))
    assert main(["index", "--suite", "first", "--system", "bm25", "--dataset", "syn", "--lang", "en"]) == 0
    built = capsys.readouterr().out.strip()
    (record,) = registry.records()
    assert built == f"index {record.id} ({record.data['duration_s']} s) → {record.path}"
    assert not record.reused and registry.produce("index", record.data["identity"], _writer).reused
    assert main(["index", "--suite", "second", "--system", "lexical", "--dataset", "col", "--lang", "en"]) == 0
    assert capsys.readouterr().out.strip() == (f"index {record.id} reused (built {record.data['created']} in "
                                               f"{record.data['duration_s']} s) → {record.path}")
    assert record.data["labels"] == {"suite": "first", "system": "bm25", "dataset": "syn", "lang": "en"}
    assert "first" not in registry.canonical(record.data["identity"])  # labels stay out of the identity

    unlabelled = registry.produce("evaluate", {"m": 1}, lambda out: {**_writer(out), "means": {"nDCG@10": 0.5}})
    assert main(["registry", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["id", "step", "created", "suite", "system", "dataset", "lang", "summary"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}  # records created in one second sort by id
    assert rows[record.id][:7] == [record.id, "index", record.data["created"], "first", "bm25", "syn", "en"]
    assert rows[unlabelled.id][3:7] == ["-"] * 4
    starts = [[m.start() for m in re.finditer(r"\S+", line)][:8] for line in lines]
    assert starts[0] == starts[1] == starts[2]  # aligned columns
    assert main(["registry", "list", "--step", "evaluate"]) == 0
    assert [line.split()[1] for line in capsys.readouterr().out.splitlines()] == ["step", "evaluate"]
