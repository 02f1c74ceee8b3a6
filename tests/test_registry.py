"""Registry identity, idempotence, failure cleanup and concurrency."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from harness import registry
from harness.cli import main


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
    assert "0 records match" in capsys.readouterr().err
