"""Every shipped suite validates and prints its full job graph offline, with each profile."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.spec import SuiteError, load_suite
from tests.helpers import REPO, write_suite

SUITES = sorted(p.stem for p in (REPO / "suites").glob("*.yaml"))


def test_the_real_suites_are_shipped() -> None:
    assert {"demo", "xquad", "mmarco", "mrtydi", "neuclir", "clef", "hindi-beir", "miracl", "mldr", "indicqa",
            "beir"} <= set(SUITES)


@pytest.mark.parametrize("profile", [None, "gpu-server", "slurm"])
@pytest.mark.parametrize("name", SUITES)
def test_dry_run_prints_the_job_graph(name: str, profile: str | None, tmp_path: Path) -> None:
    suite = load_suite(name)
    options = ["--profile", str(REPO / "profiles" / profile)] if profile else ["--cores", "all"]
    done = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory",
                           str(tmp_path), *options, "-n", f"suites/{name}"], capture_output=True, text=True,
                          timeout=300, check=False)
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


@pytest.mark.parametrize("name", ["neuclir", "clef"])
def test_mtd_entries_split_and_search_passages_as_plaidx(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """PLAID-X's passages (180 xlm-roberta-large tokens every 90) and search depth (2,500 passages for
    1,000 documents; `systems.colbert.system.search_settings(2500)` then takes 10,000 candidates)."""
    monkeypatch.delenv("CLEF_ROOT", raising=False)
    suite = load_suite(name)
    mtd = {label: spec for label, spec in suite.systems.items() if spec.system.startswith("mtd-colbertx")}
    assert len(mtd) == 3 and suite.depth == 1000
    for spec in mtd.values():
        p = spec.passages
        assert (p.unit, p.tokenizer, p.length, p.stride, p.aggregate) == \
            ("tokens", "FacebookAI/xlm-roberta-large", 180, 90, "maxp")
        assert p.passages_searched(suite.depth) == 2500


def test_bad_suites_are_clear_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "suites").mkdir()
    base = "name: {name}\nmeasures: [{measure}]\ndatasets:\n  - {{name: d, id: 'synthetic:{{lang}}', languages: [{lang}]}}\nsystems:\n  bm25: {{system: bm25}}\n"
    cases = {
        "badmeasure": ({"measure": "nDCG@ten", "lang": "en"}, "unknown measure"),
        "badlang": ({"measure": "AP", "lang": "xx"}, "unsupported language 'xx'"),
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


# -- every suite mistake found when the suite is loaded, before any job runs -------------------------

SUITE = """\
name: {name}
measures: [nDCG@10]
datasets:
  - name: d
    id: "{id}"
    languages: [en, ru]
systems:
  bm25:
    system: bm25
    params: {params}
{more}"""
SYN = "synthetic:{lang}?docs=300&queries=10&train=10"
DPR = "  dpr:\n    system: dpr-xm\n    train:\n      data: '{data}'\n      languages: {langs}\n      params: {params}\n"


def write(folder: Path, name: str, id: str = SYN, params: str = "{k1: 0.9}", more: str = "") -> Path:
    return write_suite(folder, name, SUITE.format(name=name, id=id, params=params, more=more))


def error(name: str) -> str:
    with pytest.raises(SuiteError) as info:
        load_suite(name)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_duplicate_keys_name_the_file_line_and_key(workdir: Path) -> None:
    """PyYAML keeps the last of two equal keys: a system listed twice under one label was silently dropped."""
    path = write(workdir, "dup", more="  bm25:\n    system: bm25\n    params: {k1: 1.2}\n")
    assert error("dup") == f"{path}:11: duplicate key 'bm25'"
    path = write(workdir, "dup", params="{k1: 0.9, b: 0.4, k1: 1.2}")
    assert error("dup") == f"{path}:10: duplicate key 'k1'"
    path.write_text(path.read_text().replace("measures: [nDCG@10]", "measures: [nDCG@10]\nmeasures: [AP]"))
    assert error("dup") == f"{path}:3: duplicate key 'measures'"


@pytest.mark.parametrize("system, params, message", [
    ("bm25", "{k_1: 1.2}", "system 'bm25': bad params for system 'bm25': unknown param 'k_1'; known: k1, b"),
    ("bm25", "{k1: fast}", "system 'bm25': bad params for system 'bm25': param 'k1': Input should be a valid number"),
    ("bm25", "{k1: -1}", "param 'k1': Input should be greater than 0"),
    ("bm52", "{}", "system 'bm25': unknown system 'bm52'"),
    ('"st:/models/encoder"', "{dmi: 256}", "bad params for system 'st:/models/encoder': unknown param 'dmi'"),
])
def test_system_params_are_checked_at_load(workdir: Path, system: str, params: str, message: str) -> None:
    path = write(workdir, "params", params=params)
    path.write_text(path.read_text().replace("system: bm25", f"system: {system}"))
    assert error("params").startswith(f"{path}: ")
    assert message in error("params")


@pytest.mark.parametrize("more, message", [
    (DPR.format(data=SYN, langs="[en]", params="{stpes: 3}"),
     "system 'dpr': bad train params for system 'dpr-xm': unknown param 'stpes'"),
    (DPR.format(data=SYN, langs="[en]", params="{steps: many}"), "param 'steps': Input should be a valid integer"),
    (DPR.format(data=SYN, langs="[en]", params="{}").replace("dpr-xm", "bm25"), "system 'bm25' has no training recipe"),
    (DPR.format(data=SYN.replace("train=10", "train=x"), langs="[en]", params="{}"),
     "system 'dpr': train data (en): synthetic:en?docs=300&queries=10&train=x: option train must be an integer"),
    (DPR.format(data="synthetic:de?docs=300", langs="[en, ru]", params="{}"), "several languages but no '{lang}'"),
    (DPR.format(data=SYN, langs="[en, xx]", params="{}"), "key 'systems.dpr.train.languages': unsupported language 'xx'"),
])
def test_train_sections_are_checked_at_load(workdir: Path, more: str, message: str) -> None:
    path = write(workdir, "trains", more=more)
    assert error("trains").startswith(f"{path}: ")
    assert message in error("trains")


@pytest.mark.parametrize("id, message", [
    ("synth:{lang}", "dataset 'd' (en): unknown dataset scheme 'synth'"),
    ("synthetic:{lang}?docs=300&trian=10", "dataset 'd' (en): synthetic:en?docs=300&trian=10: unknown options ['trian']"),
    ("irds:mmarco/v2/{lang}/dev/small?lang=qq", "unsupported language 'qq'"),
    ("beir:/nonexistent/{lang}?lang={lang}", "dataset 'd' (en): beir:/nonexistent/en?lang=en: /nonexistent/en is not a"),
    ("clef:2003/{lang}?root=/nonexistent", "dataset 'd' (en): clef:2003/en?root=/nonexistent: root /nonexistent is not"),
])
def test_dataset_ids_are_checked_at_load(workdir: Path, id: str, message: str) -> None:
    path = write(workdir, "ids", id=id)
    assert error("ids").startswith(f"{path}: ")
    assert message in error("ids")


def test_data_behind_an_unset_variable_is_left_for_the_job(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A suite may name its data as $CLEF_ROOT (the clef suite does): it loads without the data;
    once the variable is set, the folder it names is checked."""
    monkeypatch.delenv("HARNESS_TEST_DATA", raising=False)
    path = write(workdir, "local", id="beir:$HARNESS_TEST_DATA/{lang}?lang={lang}")
    load_suite("local")
    monkeypatch.setenv("HARNESS_TEST_DATA", str(workdir / "absent"))
    assert f"dataset 'd' (en): beir:$HARNESS_TEST_DATA/en?lang=en: {workdir}/absent/en is not a directory" in error("local")
    assert error("local").startswith(f"{path}: ")


@pytest.mark.parametrize("more, params, message", [
    ("  bm25:\n    system: bm25\n", "{k1: 0.9}", "{path}:11: duplicate key 'bm25'"),
    ("", "{k_1: 1.2}", "{path}: system 'bm25': bad params for system 'bm25': unknown param 'k_1'; known: k1, b"),
])
def test_dry_run_stops_at_a_suite_mistake_with_one_line(tmp_path: Path, more: str, params: str, message: str) -> None:
    path = write(tmp_path, "broken", params=params, more=more)
    done = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory",
                           str(tmp_path), "--cores", "1", "-n", "suites/broken"], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith(message.format(path=path))
    assert "Traceback" not in done.stdout + done.stderr
    assert not (tmp_path / "results").exists()
