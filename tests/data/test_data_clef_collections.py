"""CLEF ``collections=``: part of a language's collections, as papers used them (Arctic-Embed 2.0's
Table 2), on the fake E0008 tree of `tests.helpers.build_clef_tree`."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from harness.data import DataError, check_dataset_id, load_dataset
from harness.data.clef import COLLECTIONS, LAYOUT
from harness.report.published import load_table
from harness.spec import load_suite
from tests.helpers import CLEF_DOCNO_STEMS, CLEF_TOPIC_IDS, REPO, build_clef_tree, clef_collection_of, clef_docno

ARCTIC_TABLE2 = REPO / "suites" / "published" / "arctic-embed-2-table2.yaml"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    built = tmp_path / "clef"
    build_clef_tree(built)
    return built


def keys(dataset) -> list[str]:
    return [part.collection.key for part in dataset.parts]


def test_every_collection_has_a_key_and_doc_ids_that_tell_it_apart() -> None:
    assert set(COLLECTIONS) == set(CLEF_DOCNO_STEMS)
    for key, (lang, collection) in COLLECTIONS.items():
        assert collection.key == key and any(collection in c.docs.get(lang, ()) for c in LAYOUT.values())
        owners = [k for k, (_, c) in COLLECTIONS.items() if re.match(c.docnos, clef_docno(collection, 1))]
        assert owners == [key], (key, owners)


def test_english_on_la_times_1994_alone_drops_glasgow_herald_judgements(root: Path) -> None:
    english_2003 = root / LAYOUT[2003].qrels["en"]
    # topic 142 of 2003 judges Glasgow Herald documents only: it leaves with them
    english_2003.write_text("".join(line for line in english_2003.read_text().splitlines(keepends=True)
                                    if not line.startswith("142 0 LA")))
    full = load_dataset(f"clef:2000-2003/en?root={root}")
    ds = load_dataset(f"clef:2000-2003/en?root={root}&collections=latimes94")
    assert keys(full) == ["latimes94", "glasgow95"] and keys(ds) == ["latimes94"]
    assert {clef_collection_of(d.doc_id) for d in ds.docs()} == {"latimes94"}
    topics = [str(n) for year in sorted(CLEF_TOPIC_IDS) for n in CLEF_TOPIC_IDS[year]]
    assert [q.query_id for q in full.queries()] == topics
    assert [q.query_id for q in ds.queries()] == [t for t in topics if t != "142"]
    judged = {clef_collection_of(doc) for judged in ds.qrels().values() for doc in judged}
    assert judged == {"latimes94"}
    assert ds.qrels() == {q: {d: g for d, g in j.items() if d.startswith("LA")} for q, j in full.qrels().items()
                          if q != "142"}
    described = ds.describe()
    assert (described["docs"], described["queries"]) == (2, 7)
    assert (described["judgements"], described["relevant"]) == (14, 7)  # two LA documents per topic, one relevant
    assert ds.fingerprint != full.fingerprint


def test_multilingual_keeps_the_languages_not_named(root: Path) -> None:
    ds = load_dataset(f"clef:2003/multi?root={root}&doc_langs=en,fr&collections=latimes94")
    assert keys(ds) == ["latimes94", "lemonde94", "ats94", "ats95"]
    assert {clef_collection_of(doc) for judged in ds.qrels().values() for doc in judged} == set(keys(ds))
    assert len(list(ds.docs())) == 8


@pytest.mark.parametrize("option, message", [
    ("collections=nyt94", r"unknown collection 'nyt94' in collections=; known: latimes94,"),
    ("collections=lemonde94", r"collections=lemonde94 holds French documents, which are not among the id's \(en\)"),
    ("collections=", r"collections= is empty"),
    ("collections=latimes94&docs=x/*", r"collections=latimes94 and docs= both choose the English documents"),
])
def test_bad_collections_are_one_line_errors(root: Path, option: str, message: str) -> None:
    with pytest.raises(DataError, match=message) as error:
        check_dataset_id(f"clef:2003/en?root={root}&{option}")
    assert "\n" not in str(error.value)


def test_a_collection_outside_the_years_is_an_error(root: Path) -> None:
    with pytest.raises(DataError, match=r"collections=glasgow95: the CLEF 2000-2002 English collections are latimes94"):
        check_dataset_id(f"clef:2000-2002/en?root={root}&collections=glasgow95")


def _nearest(lang: str, years: list[int], docs: int) -> list[str]:
    """The collections of the years whose reported sizes add up nearest to ``docs``."""
    offered = list(dict.fromkeys(c for year in years for c in LAYOUT[year].docs[lang]))
    subsets = [s for n in range(1, len(offered) + 1) for s in itertools.combinations(offered, n)]
    best = min(subsets, key=lambda s: abs(sum(c.reported_docs for c in s) - docs))
    return [c.key for c in best]


def test_the_clef_suite_is_arctic_table2_collection_by_collection(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Per language, the suite's `clef` dataset holds the collections whose sizes come nearest to
    Arctic's # D (seed 003 Table 2), over all the years that have the language; the English one is
    LA Times 1994 to the document."""
    monkeypatch.setenv("CLEF_ROOT", str(root))
    table = load_table(ARCTIC_TABLE2)
    units = {u.lang: u for u in load_suite("clef", check=False).units() if u.dataset == "clef"}
    assert sorted(units) == sorted(row.lang for row in table.rows)
    for row in table.rows:
        ds = load_dataset(units[row.lang].dataset_id)
        years = sorted(year for year in LAYOUT if row.lang in LAYOUT[year].docs)
        assert [int(q.query_id) for q in ds.queries()] == [n for year in years for n in CLEF_TOPIC_IDS[year]]
        assert keys(ds) == _nearest(row.lang, years, row.values["docs"]), row.system
        assert ds.doc_languages == (row.lang,)
        assert {clef_collection_of(doc) for judged in ds.qrels().values() for doc in judged} == set(keys(ds))
    english = load_dataset(units["en"].dataset_id)
    assert sum(p.collection.reported_docs for p in english.parts) == 113_005


def test_the_mtd_subset_is_french_german_italian_with_english_queries(root: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLEF_ROOT", str(root))
    units = {u.dataset: u for u in load_suite("clef", check=False).units()}
    subset = load_dataset(units["clef00-03"].dataset_id)
    assert subset.doc_languages == ("de", "fr", "it")
    assert {q.language for q in subset.queries()} == {"en"}
    assert load_dataset(units["clef03"].dataset_id).doc_languages == ("de", "en", "es", "fr")
