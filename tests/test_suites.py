"""Every shipped suite validates and prints its full job graph offline, with each profile."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.spec import SuiteError, load_suite

REPO = Path(__file__).resolve().parents[1]
SUITES = sorted(p.stem for p in (REPO / "suites").glob("*.yaml"))


def test_the_real_suites_are_shipped() -> None:
    assert {"demo", "xquad", "mmarco", "mrtydi", "neuclir", "clef", "hindi-beir"} <= set(SUITES)


@pytest.mark.parametrize("profile", [None, "gpu-server", "slurm"])
@pytest.mark.parametrize("name", SUITES)
def test_dry_run_prints_the_job_graph(name: str, profile: str | None, tmp_path: Path) -> None:
    suite = load_suite(name)
    options = ["--profile", str(REPO / "profiles" / profile)] if profile else ["--cores", "all"]
    done = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory",
                           str(tmp_path), *options, "-n", f"suites/{name}"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    log = done.stdout + done.stderr
    stats = log[log.index("Job stats:"):].splitlines()
    counts = {line.split()[0]: int(line.split()[1]) for line in stats[3:12] if len(line.split()) == 2}
    per_unit = len(suite.systems) * len(suite.units())
    for rule in ("index", "retrieve", "evaluate"):
        assert counts[rule] == per_unit
    sharded = sum(u.shards for u in suite.units() if u.shards > 1) * len(suite.systems)
    assert counts.get("shard", 0) == sharded
    assert counts.get("cost", 0) == (per_unit if suite.cost else 0)
    assert counts.get("train", 0) == sum(spec.train is not None for spec in suite.systems.values())


def test_mmarco_overrides_and_dutch() -> None:
    units = {u.lang: u for u in load_suite("mmarco").units()}
    assert len(units) == 14
    assert units["en"].dataset_id == "irds:msmarco-passage/dev/small"
    assert units["nl"].dataset_id == "irds:mmarco/v2/dt/dev/small"
    assert units["de"].dataset_id == "irds:mmarco/v2/de/dev/small"


def test_bad_suites_are_clear_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "suites").mkdir()
    base = "name: {name}\nmeasures: [{measure}]\ndatasets:\n  - {{name: d, id: 'synthetic:{{lang}}', languages: [{lang}]}}\nsystems:\n  bm25: {{system: bm25}}\n"
    cases = {
        "badmeasure": (dict(measure="nDCG@ten", lang="en"), "unknown measure"),
        "badlang": (dict(measure="AP", lang="xx"), "unsupported language 'xx'"),
    }
    for name, (fields, message) in cases.items():
        (tmp_path / "suites" / f"{name}.yaml").write_text(base.format(name=name, **fields))
        with pytest.raises(SuiteError, match=message):
            load_suite(name)
    (tmp_path / "suites" / "other.yaml").write_text(base.format(name="mismatch", measure="AP", lang="en"))
    with pytest.raises(SuiteError, match="must match the file name"):
        load_suite("other")
    with pytest.raises(SuiteError, match="no suite file"):
        load_suite("absent")
    (tmp_path / "suites" / "basel.yaml").write_text(base.format(name="basel", measure="AP", lang="en")
                                                    + "statistics: {baseline: bm52}\n")
    with pytest.raises(SuiteError, match="baseline 'bm52'"):
        load_suite("basel")
