"""CLEF 2000-2003 from local ELRA-style files: SGML documents, <top> topics, TREC qrels, errors.

The fixture tree is built from `LAYOUT` itself (every collection glob, topic and qrels path gets a
small file), so the tests follow the table rather than a second copy of its file names.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from harness.data import DataError, load_dataset, schemes
from harness.data.clef import LAYOUT
from harness.data.formats import text as text_reader
from harness.data.formats.trec import normalize_topic_id
from tests.helpers import CLEF_TOPIC_IDS, build_clef_tree, clef_collection_of, clef_docno, instantiate_glob

LANGS = ("en", "fr", "de", "es", "it")

def expected_qrels(year: int, langs) -> dict[str, dict[str, int]]:
    campaign = LAYOUT[year]
    return {str(n): {clef_docno(c, i): int(i == 1) for lang in langs for c in campaign.docs[lang] for i in (1, 2)}
            for n in CLEF_TOPIC_IDS[year]}


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "clef"
    return root, build_clef_tree(root)


def docs_of(dataset):
    return {d.doc_id: (d.language, d.title, d.text) for d in dataset.docs()}


def collection_docs(expected, year: int, lang: str):
    names = {c.key for c in LAYOUT[year].docs[lang]}
    return {k: v for k, v in expected.items() if clef_collection_of(k) in names}


def test_scheme_registered():
    assert "clef" in schemes()


def test_layout_covers_2000_to_2003_in_five_languages():
    assert sorted(LAYOUT) == [2000, 2001, 2002, 2003]
    for year, campaign in LAYOUT.items():
        assert set(campaign.topics) == set(LANGS)
        doc_langs = set(LANGS) - ({"es"} if year == 2000 else set())
        assert set(campaign.docs) == set(campaign.qrels) == doc_langs
        assert set(campaign.multilingual) <= doc_langs
    assert LAYOUT[2003].multilingual == ("de", "en", "es", "fr")


def test_layout_sizes_add_up_to_published_totals():
    """The per-collection counts are from memory; their sums match totals published elsewhere."""
    def total(year, lang):
        return sum(c.reported_docs for c in LAYOUT[year].docs[lang])
    assert total(2001, "de") == 225_371  # FR 1994, Spiegel 1994/95, SDA 1994
    assert total(2003, "it") == 157_558
    assert total(2003, "es") == 454_045
    assert total(2000, "en") == 113_005


def test_monolingual_french(tree):
    root, expected = tree
    ds = load_dataset(f"clef:2003/fr?root={root}")
    docs = docs_of(ds)
    assert docs == collection_docs(expected, 2003, "fr")
    assert {c.key for c in LAYOUT[2003].docs["fr"]} == {clef_collection_of(k) for k in docs}
    assert all(lang == "fr" for lang, _, _ in docs.values())
    le_monde = docs["LEMONDE94-000001"]
    assert le_monde == ("fr", "L'été à Paris", "Les élèves ont mangé une crème brûlée à Noël & après. 1")
    assert docs["ATS.940101.0002"] == (
        "fr", "L'été à Paris", 'Lead 2 "fr"\nLes élèves ont mangé une crème brûlée à Noël & après. 2')
    assert [(q.query_id, q.text, q.language) for q in ds.queries()] == [
        ("141", "Lettre piégée 141", "fr"), ("142", "Lettre piégée 142", "fr")]
    assert ds.qrels() == expected_qrels(2003, ["fr"])
    assert ds.doc_languages == ("fr",)
    assert next(ds.docs()).contents.startswith("L'été à Paris\nLes élèves")


def test_gzipped_los_angeles_times_and_metadata_left_out(tree):
    root, expected = tree
    assert list((root / "DocumentData/DataCollections/English_data").glob("la*.gz"))
    docs = docs_of(load_dataset(f"clef:2001/en?root={root}"))
    assert docs == collection_docs(expected, 2001, "en")
    assert docs["LA010194-0001"] == ("en", "Café society", "The café served naïve tourists & locals. 1")


def test_multilingual(tree):
    root, expected = tree
    ds = load_dataset(f"clef:2003/multi?root={root}&query_lang=en&doc_langs=de,en,es,fr")
    docs = docs_of(ds)
    want = {k: v for lang in ("de", "en", "es", "fr") for k, v in collection_docs(expected, 2003, lang).items()}
    assert docs == want
    assert {lang for lang, _, _ in docs.values()} == {"de", "en", "es", "fr"}
    assert docs["EFE19950101-00001"][0] == "es" and docs["GH950102-000002"][0] == "en"
    assert not any(k.startswith(("LASTAMPA", "AGZ")) for k in docs)
    assert ds.doc_languages == ("de", "en", "es", "fr")
    assert [(q.query_id, q.text, q.language) for q in ds.queries()] == [
        ("141", "Letter bomb 141", "en"), ("142", "Letter bomb 142", "en")]
    assert ds.qrels() == expected_qrels(2003, ["de", "en", "es", "fr"])
    # The 2003 multilingual task's languages are the default.
    default = load_dataset(f"clef:2003/multi?root={root}")
    assert default.doc_languages == ("de", "en", "es", "fr")
    assert docs_of(default) == docs


def test_bilingual_query_language(tree):
    root, expected = tree
    ds = load_dataset(f"clef:2002/it?root={root}&query_lang=en")
    assert docs_of(ds) == collection_docs(expected, 2002, "it")
    assert {(q.text, q.language) for q in ds.queries()} == {("Letter bomb 91", "en"), ("Letter bomb 92", "en")}


@pytest.mark.parametrize("raw", ["C141", "141", "10.2452/141-AH", " C141 ", "Number: C141", "0141"])
def test_topic_id_normalisation(raw):
    assert normalize_topic_id(raw) == "141"


def test_topic_id_without_a_number():
    assert normalize_topic_id("CXLI") is None
    assert normalize_topic_id("C041") == normalize_topic_id("41") == "41"


def test_topic_ids_in_topics_and_qrels_meet(tree):
    root, _ = tree
    # French 2003 topic 142 is written 10.2452/142-AH, 141 as C141; the qrels say 141 and 142.
    ds = load_dataset(f"clef:2003/fr?root={root}")
    assert set(ds.qrels()) == {q.query_id for q in ds.queries()} == {"141", "142"}


def test_2000_topics_without_closing_tags(tree):
    root, _ = tree
    ds = load_dataset(f"clef:2000/de?root={root}&fields=title,desc,narr")
    assert [(q.query_id, q.text) for q in ds.queries()] == [
        ("1", "Briefbombe für Kiesbauer 1 Description 1 & plus (de) Narrative 1"),
        ("2", "Briefbombe für Kiesbauer 2 Description 2 & plus (de) Narrative 2")]


def test_fields_title_desc(tree):
    root, _ = tree
    ds = load_dataset(f"clef:2003/es?root={root}&fields=title,desc")
    assert [q.text for q in ds.queries()] == [
        "Carta bomba en España 141 Description 141 & plus (es)", "Carta bomba en España 142 Description 142 & plus (es)"]


@pytest.mark.parametrize("fields", ["", "title,summary"])
def test_bad_fields(tree, fields):
    root, _ = tree
    with pytest.raises(DataError, match="fields="):
        load_dataset(f"clef:2003/es?root={root}&fields={fields}")


def test_topic_without_requested_field(tree):
    root, _ = tree
    path = root / LAYOUT[2003].topics["it"]
    path.write_bytes(re.sub(rb"<IT-desc> Description 142 .*</IT-desc>", b"<IT-desc> </IT-desc>", path.read_bytes()))
    ds = load_dataset(f"clef:2003/it?root={root}&fields=title,desc")
    with pytest.raises(DataError, match=rf"{re.escape(str(path))}:\d+: topic 142 has no <desc> text"):
        ds.queries()


def test_year_range(tree):
    root, expected = tree
    ds = load_dataset(f"clef:2001-2003/es?root={root}")
    assert [q.query_id for q in ds.queries()] == ["41", "42", "91", "92", "141", "142"]
    assert docs_of(ds) == collection_docs(expected, 2003, "es")
    assert ds.qrels() == {**expected_qrels(2001, ["es"]), **expected_qrels(2002, ["es"]), **expected_qrels(2003, ["es"])}
    english = docs_of(load_dataset(f"clef:2000-2003/en?root={root}"))
    assert english == collection_docs(expected, 2003, "en")  # LA Times 1994 + Glasgow Herald 1995


def test_year_without_the_language(tree):
    root, _ = tree
    with pytest.raises(DataError, match="2000 has no Spanish documents"):
        load_dataset(f"clef:2000-2003/es?root={root}")
    with pytest.raises(DataError, match="doc_langs"):
        load_dataset(f"clef:2001-2003/multi?root={root}")
    with pytest.raises(DataError, match="CLEF years are 2000-2003"):
        load_dataset(f"clef:2004/fr?root={root}")


def test_docs_override(tree):
    root, _ = tree
    custom = root / "mine" / "lemonde"
    custom.mkdir(parents=True)
    (custom / "a.sgml").write_bytes("<DOC>\n<DOCNO>MINE-1</DOCNO>\n<TEXT>Ça va très bien.</TEXT>\n</DOC>\n".encode("latin-1"))
    (custom / "lemonde.dtd").write_text("<!ELEMENT DOC - - (DOCNO, TEXT)>\n")
    (root / "mine" / "qrels").write_text("141 0 MINE-1 1\n142 0 MINE-1 0\n")  # the table's qrels name other docs
    ds = load_dataset(f"clef:2003/fr?root={root}&docs=mine/**/*.sgml&qrels=mine/qrels")
    assert docs_of(ds) == {"MINE-1": ("fr", "", "Ça va très bien.")}
    absolute = load_dataset(f"clef:2003/fr?root={root}&docs={custom}/*&qrels=mine/qrels")  # the .dtd is skipped
    assert docs_of(absolute) == docs_of(ds)
    utf8 = custom / "b.sgml"
    utf8.write_bytes("<DOC><DOCNO>MINE-2</DOCNO><TEXT>Ça</TEXT></DOC>".encode())
    (root / "mine" / "qrels2").write_text("141 0 MINE-2 1\n")
    ds = load_dataset(f"clef:2003/fr?root={root}&docs={utf8}&encoding=utf-8&qrels=mine/qrels2")
    assert docs_of(ds) == {"MINE-2": ("fr", "", "Ça")}
    with pytest.raises(DataError, match=r"qrels_FR:1: qrels judge doc 'LEMONDE94-000001'"):
        docs_of(load_dataset(f"clef:2003/fr?root={root}&docs=mine/**/*.sgml"))


def test_docs_override_per_language_in_multilingual(tree):
    root, expected = tree
    qrels = root / "qrels-en-la-fr"  # the table's English qrels judge Glasgow Herald documents too
    qrels.write_text("".join(line for rel in (LAYOUT[2003].qrels["en"], LAYOUT[2003].qrels["fr"])
                             for line in (root / rel).read_text().splitlines(keepends=True) if "GH95" not in line))
    ds = load_dataset(f"clef:2003/multi?root={root}&doc_langs=en,fr"
                      f"&docs_en=DocumentData/DataCollections/English_data/la*&qrels={qrels}")
    docs = docs_of(ds)
    assert {clef_collection_of(k) for k, v in docs.items() if v[0] == "en"} == {"latimes94"}
    assert {k for k, v in docs.items() if v[0] == "fr"} == set(collection_docs(expected, 2003, "fr"))
    with pytest.raises(DataError, match="docs_<lang>"):
        load_dataset(f"clef:2003/multi?root={root}&docs=x/*")


def test_topics_and_qrels_override(tree, tmp_path):
    root, _ = tree
    topics = tmp_path / "my-topics.txt"
    topics.write_text("<top>\n<num> C007 </num>\n<EN-title> Own topic </EN-title>\n</top>\n", encoding="latin-1")
    qrels = tmp_path / "my-qrels"
    qrels.write_text("7 0 EFE19940101-00002 2\n", encoding="latin-1")
    ds = load_dataset(f"clef:2003/es?root={root}&query_lang=en&topics={topics}&qrels={qrels}")
    assert [(q.query_id, q.text, q.language) for q in ds.queries()] == [("7", "Own topic", "en")]
    assert ds.qrels() == {"7": {"EFE19940101-00002": 2}}


def test_text_fields_and_id_field(tree):
    root, _ = tree
    (root / "qrels-docid").write_text("41 0 1001 1\n42 0 1002 1\n")  # qrels that name documents by DOCID
    ds = load_dataset(f"clef:2001/en?root={root}&text_fields=TEXT&id_field=DOCID&qrels=qrels-docid")
    docs = docs_of(ds)
    assert docs["1001"] == ("en", "", "The café served naïve tourists & locals. 1")


def test_root_with_variables(tree, monkeypatch):
    root, _ = tree
    monkeypatch.setenv("CLEF_TEST_HOME", str(root.parent))
    monkeypatch.setenv("HOME", str(root.parent))
    by_var = load_dataset("clef:2003/fr?root=$CLEF_TEST_HOME/clef")
    by_home = load_dataset("clef:2003/fr?root=~/clef")
    assert by_var.root == by_home.root == root
    assert docs_of(by_var) == docs_of(load_dataset(f"clef:2003/fr?root={root}"))


def test_root_with_glob_characters(tmp_path):
    root = tmp_path / "clef[2003]"
    expected = build_clef_tree(root)
    assert docs_of(load_dataset(f"clef:2003/es?root={root}")) == collection_docs(expected, 2003, "es")


def test_missing_root(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError) as info:
        load_dataset(f"clef:2003/fr?root={missing}")
    message = str(info.value)
    assert f"root {missing} is not a directory" in message
    assert "CLEF 2003" in message and "French" in message
    assert str(missing / LAYOUT[2003].topics["fr"]) in message
    assert str(missing / LAYOUT[2003].qrels["fr"]) in message
    with pytest.raises(DataError, match=r"\?root="):
        load_dataset("clef:2003/fr")


def test_missing_files_listed_together(tree):
    root, _ = tree
    topics, qrels = root / LAYOUT[2003].topics["de"], root / LAYOUT[2003].qrels["de"]
    topics.unlink()
    qrels.unlink()
    for path in (root / "DocumentData/DataCollections/German_data/sda95").iterdir():
        path.unlink()
    with pytest.raises(DataError) as info:
        load_dataset(f"clef:2003/de?root={root}")
    message = str(info.value)
    assert "3 expected files are missing" in message
    assert "CLEF 2003" in message and "German" in message
    assert f"topics 2003 de: {topics} (no such file)" in message
    assert f"qrels 2003 de: {qrels} (no such file)" in message
    assert "SDA German 1995" in message and "sda95" in message
    assert "topics=" in message and "docs=" in message


@pytest.mark.parametrize("chunk", [1, 5, 64, 1000])
def test_reading_in_small_pieces_changes_nothing(tree, monkeypatch, chunk):
    """Files are read in pieces of whole lines; documents and line numbers must not depend on the size."""
    root, expected = tree
    dataset_id = f"clef:2003/multi?root={root}&doc_langs=en,fr,it"
    whole = [(located.item, located.where) for located in load_dataset(dataset_id)._read_docs()]
    monkeypatch.setattr(text_reader, "CHUNK_SIZE", chunk)
    assert [(located.item, located.where) for located in load_dataset(dataset_id)._read_docs()] == whole
    assert docs_of(load_dataset(dataset_id)) == {k: v for lang in ("en", "fr", "it")
                                                 for k, v in collection_docs(expected, 2003, lang).items()}


@pytest.mark.parametrize("chunk", [3, 1 << 22])
def test_declared_encoding_does_not_fit(tree, monkeypatch, chunk):
    monkeypatch.setattr(text_reader, "CHUNK_SIZE", chunk)
    root, _ = tree
    folder = root / "DocumentData/DataCollections/Spanish_data/efe"
    path = next(folder.iterdir())
    data = path.read_bytes()
    offset = next(i for i, b in enumerate(data) if b >= 0x80)  # first latin-1 byte that is not valid utf-8
    line = data[:offset].count(b"\n") + 1
    ds = load_dataset(f"clef:2003/es?root={root}&encoding=utf-8")
    with pytest.raises(DataError) as info:
        list(ds.docs())
    message = str(info.value)
    assert f"{path}:{line}:" in message
    assert f"byte offset {offset}" in message
    assert "encoding=" in message


def test_unknown_or_unusable_encoding(tree):
    root, _ = tree
    with pytest.raises(DataError, match="unknown encoding"):
        load_dataset(f"clef:2003/es?root={root}&encoding=klingon")
    with pytest.raises(DataError, match="not ASCII-compatible"):
        load_dataset(f"clef:2003/es?root={root}&encoding=utf-16")


def test_doc_without_docno(tree):
    root, _ = tree
    path = root / instantiate_glob(LAYOUT[2003].docs["it"][0].pattern, "0101")
    text = path.read_bytes().decode("latin-1")
    lines = text.splitlines(keepends=True)
    second = [i for i, l in enumerate(lines) if l.startswith("<DOC>")][1]
    lines[second + 1] = "<DOCNUMBER>oops</DOCNUMBER>\n"
    path.write_bytes("".join(lines).encode("latin-1"))
    ds = load_dataset(f"clef:2003/it?root={root}")
    with pytest.raises(DataError, match=rf"{re.escape(str(path))}:{second + 1}: <DOC> without a <DOCNO>"):
        list(ds.docs())


@pytest.mark.parametrize("chunk", [2, 1 << 22])
def test_unclosed_doc(tree, monkeypatch, chunk):
    monkeypatch.setattr(text_reader, "CHUNK_SIZE", chunk)
    root, _ = tree
    path = root / instantiate_glob(LAYOUT[2003].docs["it"][0].pattern, "0101")
    text = path.read_bytes().decode("latin-1")
    first, second = [n for n, line in enumerate(text.split("\n"), 1) if line == "<DOC>"]
    last = text.rindex("</DOC>")
    path.write_bytes((text[:last] + text[last + len("</DOC>"):]).encode("latin-1"))
    with pytest.raises(DataError, match=rf"{re.escape(str(path))}:{second}: <DOC> is never closed"):
        list(load_dataset(f"clef:2003/it?root={root}").docs())
    path.write_bytes(text.replace("</DOC>", "", 1).encode("latin-1"))
    with pytest.raises(DataError, match=rf"{re.escape(str(path))}:{second}: <DOC> inside the <DOC> opened at line {first}"):
        list(load_dataset(f"clef:2003/it?root={root}").docs())


def test_duplicate_docno_across_files(tree):
    root, _ = tree
    folder = root / "DocumentData/DataCollections/French_data/ats95"
    dup = folder / "0102"
    dup.write_bytes(b"<DOC>\n<DOCNO>LEMONDE94-000002</DOCNO>\n<TX>encore</TX>\n</DOC>\n")
    ds = load_dataset(f"clef:2003/fr?root={root}")
    with pytest.raises(DataError) as info:
        list(ds.docs())
    assert f"{dup}:1" in str(info.value)
    assert "duplicate doc id 'LEMONDE94-000002'" in str(info.value)


def test_malformed_qrels_line(tree):
    root, _ = tree
    path = root / LAYOUT[2003].qrels["fr"]
    with open(path, "a", encoding="latin-1") as f:
        f.write("141 0 LEMONDE94-000001\n")
    line = path.read_text(encoding="latin-1").count("\n")
    with pytest.raises(DataError, match=rf"{re.escape(str(path))}:{line}: expected 4 columns"):
        load_dataset(f"clef:2003/fr?root={root}").qrels()
    path.write_text("141 0 LEMONDE94-000001 yes\n", encoding="latin-1")
    with pytest.raises(DataError, match=rf"{re.escape(str(path))}:1: relevance must be an integer"):
        load_dataset(f"clef:2003/fr?root={root}").qrels()


def test_qrels_for_unknown_topic(tree):
    root, _ = tree
    with open(root / LAYOUT[2003].qrels["fr"], "a", encoding="latin-1") as f:
        f.write("199 0 LEMONDE94-000001 1\n")
    path = root / LAYOUT[2003].qrels["fr"]
    line = path.read_text(encoding="latin-1").count("\n")
    where = re.escape(f"{path}:{line}")
    with pytest.raises(DataError, match=rf"{where}: qrels mention 1 queries that are not in the queries"):
        load_dataset(f"clef:2003/fr?root={root}").qrels()
    assert set(load_dataset(f"clef:2003/fr?root={root}&qrels_without_queries=drop").qrels()) == {"141", "142"}


def test_fingerprint(tree):
    root, _ = tree
    dataset_id = f"clef:2003/fr?root={root}"
    first = load_dataset(dataset_id).fingerprint
    assert load_dataset(dataset_id).fingerprint == first
    qrels = root / LAYOUT[2003].qrels["fr"]
    original = qrels.read_bytes()
    qrels.write_bytes(original.replace(b"141 0 LEMONDE94-000002 0", b"141 0 LEMONDE94-000002 1"))
    changed = load_dataset(dataset_id).fingerprint
    assert changed != first
    qrels.write_bytes(original)
    assert load_dataset(dataset_id).fingerprint == first
    # Document files enter by name and size only (documented): a same-size edit is not seen, a new file is.
    doc = root / instantiate_glob(LAYOUT[2003].docs["fr"][0].pattern, "0101")
    doc.write_bytes(doc.read_bytes().replace(b"Paris", b"Lille"))
    assert load_dataset(dataset_id).fingerprint == first
    (doc.parent / "0102").write_bytes(b"<DOC><DOCNO>X</DOCNO></DOC>\n")
    assert load_dataset(dataset_id).fingerprint not in {first, changed}


def test_fingerprint_does_not_depend_on_where_the_tree_lies(tree, tmp_path, monkeypatch):
    root, _ = tree
    monkeypatch.setenv("CLEF_TEST_HOME", str(root))
    here = load_dataset("clef:2003/fr?root=$CLEF_TEST_HOME").fingerprint
    moved = tmp_path / "elsewhere"
    os.rename(root, moved)
    monkeypatch.setenv("CLEF_TEST_HOME", str(moved))
    assert load_dataset("clef:2003/fr?root=$CLEF_TEST_HOME").fingerprint == here


def test_readme_and_empty_folder(tree):
    root, _ = tree
    folder = root / "DocumentData/DataCollections/Spanish_data/efe95"
    (folder / "README").write_text("EFE 1995\n")
    (folder / "notes.txt").write_text("no documents here\n")
    assert len(docs_of(load_dataset(f"clef:2003/es?root={root}"))) == 4
    for path in folder.iterdir():
        if path.name not in {"README", "notes.txt"}:
            path.unlink()
    with pytest.raises(DataError, match="EFE 1995: 1 files match .* but none holds a <DOC>"):
        list(load_dataset(f"clef:2003/es?root={root}").docs())


@pytest.mark.parametrize("bad, match", [
    ("clef:2003?root=/x", "expected clef:YEAR/LANG"),
    ("clef:2003/xx?root=/x", "unsupported language 'xx'"),
    ("clef:2003/fr?root=/x&doc_langs=fr", "doc_langs is for"),
    ("clef:2003/fr?root=/x&feilds=title", r"unknown option\(s\) \['feilds'\]"),
    ("clef:2003/multi?root=/x&doc_langs=de,it,nl", "2003 has no Dutch documents"),
    ("clef:2003/multi?root=/x&doc_langs=de,fr&docs_it=a/*", "docs_it name languages that are not among"),
    ("clef:2003/fr?root=/x&encoding=klingon", "unknown encoding"),
])
def test_bad_ids(bad, match):
    with pytest.raises(DataError, match=match):
        load_dataset(bad)


def append_qrels(root: Path, lang: str, text: str) -> tuple[Path, int]:
    """Append ``text`` to the 2003 qrels of ``lang``; (path, number of the first appended line)."""
    path = root / LAYOUT[2003].qrels[lang]
    first = path.read_text(encoding="latin-1").count("\n") + 1
    with open(path, "a", encoding="latin-1") as f:
        f.write(text)
    return path, first


def test_qrels_naming_an_unknown_doc(tree):
    root, _ = tree
    path, line = append_qrels(root, "fr", "142 0 LEMONDE1994-9999 1\n")
    ds = load_dataset(f"clef:2003/fr?root={root}")
    assert ds.qrels()["142"]["LEMONDE1994-9999"] == 1  # evaluation alone does not read the documents
    where = re.escape(f"{path}:{line}")
    with pytest.raises(DataError, match=rf"{where}: qrels judge doc 'LEMONDE1994-9999' \(query '142'\)"):
        docs_of(ds)


def test_pair_judged_twice(tree):
    root, _ = tree
    path, line = append_qrels(root, "fr", "C141 0 LEMONDE94-000001 1\n")  # the same grade again: accepted
    assert load_dataset(f"clef:2003/fr?root={root}").qrels()["141"]["LEMONDE94-000001"] == 1
    path, line = append_qrels(root, "fr", "141 0 LEMONDE94-000001 0\n")
    with pytest.raises(DataError, match=rf"{re.escape(str(path))}:{line}: query '141' judges doc 'LEMONDE94-000001' 0, "
                                        "but an earlier line judged it 1"):
        load_dataset(f"clef:2003/fr?root={root}").qrels()


def test_docno_with_whitespace(tree):
    root, _ = tree
    folder = root / "DocumentData/DataCollections/French_data/ats95"
    (folder / "0102").write_bytes(b"<DOC>\n<DOCNO>ATS 1995</DOCNO>\n<TX>texte</TX>\n</DOC>\n")
    where = re.escape(f"{folder / '0102'}:1")
    with pytest.raises(DataError, match=rf"{where}: doc id 'ATS 1995' is empty or contains whitespace"):
        docs_of(load_dataset(f"clef:2003/fr?root={root}"))


def test_topics_not_in_their_declared_encoding_name_file_and_line(tree):
    root, _ = tree
    path = root / LAYOUT[2003].topics["fr"]
    line = path.read_bytes()[: path.read_bytes().index("é".encode("latin-1"))].count(b"\n") + 1
    with pytest.raises(DataError, match=rf"{re.escape(str(path))}:{line}: not valid utf-8"):
        load_dataset(f"clef:2003/fr?root={root}&topics_encoding=utf-8").queries()


def test_empty_docs_counted(tree):
    root, _ = tree
    folder = root / "DocumentData/DataCollections/French_data/ats95"
    (folder / "0102").write_bytes(b"<DOC>\n<DOCNO>ATS-EMPTY</DOCNO>\n<TX> </TX>\n</DOC>\n")
    ds = load_dataset(f"clef:2003/fr?root={root}")
    assert len(docs_of(ds)) == 7
    assert (ds.describe()["docs"], ds.describe()["empty_docs"]) == (7, 1)
