"""Published dataset statistics (a paper's # queries, # documents, # judgements) compared by `harness
reproduce` with the loader's own counts, which the index step records (`Dataset.describe`)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

from harness import jobs, layout, registry
from harness.data import load_dataset
from harness.data.clef import LAYOUT
from harness.evaluate import PerQuery, write_per_query
from harness.report.published import PublishedTableError, StatisticColumn, load_table, load_tables
from harness.report.reproduce import NOT_RUN, OK, OUTSIDE, STALE, diff, problems, render
from harness.spec import load_suite
from tests.helpers import CLEF_TOPIC_IDS, REPO, build_clef_tree, write_suite

SEEDS = Path(os.environ.get("HARNESS_SHARED", REPO.parent / "shared")) / "seeds"

SUITE = """\
name: fxclef
measures: [nDCG@10]
datasets:
  - name: clef
    id: "clef:2000-2003/{lang}?root=$CLEF_ROOT"
    languages: [en, fr, de]
    overrides:
      en: "clef:2000-2003/en?root=$CLEF_ROOT&collections=latimes94"
systems:
  s1: {system: bm25}
"""

TOPICS = sum(len(ids) for ids in CLEF_TOPIC_IDS.values())
"""Every fixture year has topics in every language; each topic judges two documents per collection, one relevant."""
FRENCH = ("lemonde94", "ats94", "ats95")  # all French collections of 2000-2003, two documents each
FRENCH_RELEVANT = sum(len(CLEF_TOPIC_IDS[year]) * len(LAYOUT[year].docs["fr"]) for year in CLEF_TOPIC_IDS)
"""One relevant document per topic and collection of its year (2000: Le Monde only; 2003: three)."""


def _table(folder: Path, rows: list[dict], columns: dict | None = None) -> Path:
    data = {
        "id": "fx-stats", "paper": {"title": "A fixture", "url": "https://example.org"}, "table": "Table 2",
        "caption": "fixture statistics", "provenance": "written by the test", "reported_precision": 0, "scale": 1,
        "suite": "fxclef",
        "columns": columns or {
            "q": {"statistic": "queries", "dataset": "clef", "label": "# Q"},
            "d": {"statistic": "docs", "dataset": "clef", "label": "# D"},
            "rels": {"statistic": "relevant", "dataset": "clef", "label": "# Rels"},
            "rq": {"statistic": "relevant_per_query", "dataset": "clef", "label": "# Rel/Q", "precision": 1},
        },
        "rows": rows,
    }
    path = folder / "suites" / "published" / "fx-stats.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _row(name: str, lang: str, **values) -> dict:
    return {"system": name, "harness_system": None, "lang": lang, "values": values}


def _publish_index(lang: str, current: bool = True, read_docs: bool = True) -> None:
    """What the index and evaluate steps of s1 publish for clef/``lang``: an index record describing the
    dataset (after reading its documents, as indexing does, unless not ``read_docs``), and an eval
    pointer (current with the suite, or not)."""
    suite = load_suite("fxclef", check=False)
    unit = suite.unit("clef", lang)
    dataset = load_dataset(unit.dataset_id)
    for _ in dataset.docs() if read_docs else ():
        pass
    described = dataset.describe()
    index = registry.produce("index", {"cell": ["fxclef", lang]},
                             lambda out: {"outputs": {"index": "."}, "dataset": described})
    layout.write_pointer(layout.path("index", "fxclef", "s1", unit), index)

    def build(out: Path) -> dict:
        write_per_query([PerQuery("1", "nDCG@10", 0.5)], out / "per_query.tsv")
        return {"outputs": {"per_query": "per_query.tsv"}}

    evaluation = registry.produce("evaluate", {"cell": ["fxclef", lang, "eval"]}, build)
    settings = jobs.digest(jobs.eval_settings(suite, "s1", unit)) if current else "made-with-older-code"
    layout.write_pointer(layout.path("evaluate", "fxclef", "s1", unit), evaluation, settings=settings)


@pytest.fixture
def clef_suite(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = workdir / "clef"
    build_clef_tree(root)
    monkeypatch.setenv("CLEF_ROOT", str(root))
    write_suite(workdir, "fxclef", SUITE)
    return workdir


def test_statistics_are_compared_with_the_loaders_counts(clef_suite: Path) -> None:
    _publish_index("en")
    _publish_index("fr")
    _publish_index("de", current=False)
    path = _table(clef_suite, [
        # English on LA Times 1994 alone: two documents, every topic judges both, one relevant
        _row("English", "en", q=TOPICS, d=2, rels=TOPICS, rq=1.0),
        # French: 6 documents and FRENCH_RELEVANT relevant; the paper's 7 documents and 2.5 per query do not match
        _row("French", "fr", q=TOPICS, d=7, rels=FRENCH_RELEVANT, rq=2.5),
        _row("German", "de", q=TOPICS, d=8, rels=None, rq=None),
    ])
    table = load_table(path)
    assert problems(table) == []
    cells = {(c.row, c.column): c for c in diff(table)}
    assert {cells[("English", k)].status for k in ("q", "d", "rels", "rq")} == {OK}
    assert cells[("English", "d")].measured == 2 and cells[("English", "d")].harness_system == "clef/en"
    assert cells[("French", "q")].status == OK
    docs = cells[("French", "d")]
    assert docs.status == OUTSIDE and docs.measured == 2 * len(FRENCH) and docs.delta == -1
    assert docs.tolerance == 0.5  # a count printed without decimals must match exactly
    relevant = cells[("French", "rels")]
    assert relevant.status == OK and relevant.measured == FRENCH_RELEVANT
    assert cells[("French", "rq")].status == OUTSIDE
    assert cells[("French", "rq")].measured == pytest.approx(FRENCH_RELEVANT / TOPICS)
    assert cells[("German", "d")].status == STALE and "eval" not in cells[("German", "d")].detail
    assert "index/s1/clef/de.json" in cells[("German", "d")].detail
    text = render(table, diff(table))
    assert "| English [clef/en] | d (# D) | 2 | 2 | +0 | 0.5 | ✓ ok |" in text
    assert "| French [clef/fr] | d (# D) | 7 | 6 | -1 | 0.5 | ✗ outside |" in text


def test_statistics_not_run_until_the_suite_indexed_the_unit(clef_suite: Path) -> None:
    path = _table(clef_suite, [_row("English", "en", q=TOPICS, d=2, rels=None, rq=None),
                               _row("Russian", "ru", q=1, d=None, rels=None, rq=None)])
    table = load_table(path)
    assert problems(table) == ["row 'Russian', column 'q': suite 'fxclef' has no clef/ru"]
    cells = {(c.row, c.column): c for c in diff(table)}
    assert cells[("English", "d")].status == NOT_RUN and "no current evaluation of clef/en" in cells[("English", "d")].detail
    assert cells[("Russian", "q")].status == NOT_RUN and cells[("Russian", "q")].detail.startswith("cannot be run: ")
    _publish_index("en", read_docs=False)  # e.g. a merge of shards: that process read no documents
    cells = {(c.row, c.column): c for c in diff(table)}
    assert cells[("English", "q")].status == OK
    assert cells[("English", "d")].status == NOT_RUN
    assert cells[("English", "d")].detail == "no count of docs in results/fxclef/index/s1/clef/en.json"


@pytest.mark.parametrize("change, message", [
    ({"columns": {"q": {"statistic": "authors", "dataset": "clef"}}}, "unknown statistic 'authors'"),
    ({"rows": [{"system": "English", "harness_system": None, "values": {"q": 3}}]}, "a statistic needs a lang"),
    ({"rows": [_row("English", "en", q="three")]}, "a statistic column takes a number"),
])
def test_bad_statistics_are_errors_naming_the_file(workdir: Path, change: dict, message: str) -> None:
    columns = change.get("columns", {"q": {"statistic": "queries", "dataset": "clef"}})
    path = _table(workdir, change.get("rows", [_row("English", "en", q=3)]), columns)
    with pytest.raises(PublishedTableError, match=message) as error:
        load_table(path)
    assert str(path) in str(error.value)


def test_arctic_table2_is_transcribed_from_the_seed() -> None:
    """Seed 003's Table 2, line by line: one row per language, every statistic as printed."""
    table = load_tables([REPO / "suites" / "published"])["arctic-embed-2-table2"]
    seed = SEEDS / table.paper.seed
    assert seed.is_file(), f"{seed} is missing: the shared seeds are needed to check the transcription"
    text = seed.read_text(encoding="utf-8")
    caption = text.index("Table 2: Statistics of the CLEF evaluation datasets")
    lines = [line for line in text[:caption].splitlines() if "\t" in line][-6:]
    header, printed = lines[0].split("\t"), [line.split("\t") for line in lines[1:]]
    assert header[1:] == [column.label for column in table.columns.values()]
    assert [fields[0] for fields in printed] == [row.system for row in table.rows]
    for fields, row in zip(printed, table.rows):
        for value, key in zip(fields[1:], table.columns):
            assert row.values[key] == (float(value) if "." in value else int(value.replace(",", ""))), (row.system, key)
            assert table.precision(row, key) == (len(value.split(".")[1]) if "." in value else 0)
    assert all(isinstance(c, StatisticColumn) and c.dataset == "clef" for c in table.columns.values())
    assert [row.lang for row in table.rows] == ["en", "fr", "it", "de", "es"]
    assert re.search(r"English\t246\t113,005\t4,769\t19\.4", text)
