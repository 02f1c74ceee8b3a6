"""BEIR-format folders: corpus/queries JSONL, qrels as TSV or JSONL, and errors naming file:line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.data import DataError, load_dataset
from harness.languages import UnsupportedLanguage

CORPUS = [
    {"_id": "d1", "title": "दिल्ली", "text": "दिल्ली भारत की राजधानी है।"},
    {"_id": "d2", "title": "", "text": "गंगा एक नदी है।"},
    {"_id": "d3", "text": "हिमालय पर्वत ऊँचा है।"},
    {"_id": "d4", "title": "मुंबई", "text": "मुंबई एक शहर है।", "metadata": {"x": 1}},
]
QUERIES = [
    {"_id": "q1", "text": "भारत की राजधानी क्या है?"},
    {"_id": "q2", "text": "गंगा क्या है?"},
    {"_id": "q3", "text": "बिना निर्णय का प्रश्न"},  # no judgements: dropped from queries()
]
QRELS = [("q1", "d1", 1), ("q2", "d2", 2), ("q2", "d3", 0), ("q1", "d4", 1)]


def write_jsonl(path: Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def write_qrels_tsv(path: Path, rows, header: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["query-id\tcorpus-id\tscore"] if header else []
    lines += [f"{q}\t{d}\t{s}" for q, d, s in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def make_folder(root: Path, qrels_format: str = "tsv", corpus=CORPUS, queries=QUERIES, qrels=QRELS) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    write_jsonl(root / "corpus.jsonl", corpus)
    write_jsonl(root / "queries.jsonl", queries)
    if qrels_format == "tsv":
        write_qrels_tsv(root / "qrels" / "test.tsv", qrels)
    else:
        write_jsonl(root / "qrels" / "test.jsonl", [{"query-id": q, "corpus-id": d, "score": s} for q, d, s in qrels])
    return root


def snapshot(dataset):
    docs = [(d.doc_id, d.title, d.text, d.language) for d in dataset.docs()]
    queries = [(q.query_id, q.text, q.language) for q in dataset.queries()]
    return docs, queries, dataset.qrels()


@pytest.fixture
def tsv_folder(tmp_path):
    return make_folder(tmp_path / "tsv", "tsv")


@pytest.fixture
def jsonl_folder(tmp_path):
    return make_folder(tmp_path / "jsonl", "jsonl")


def test_loads_tsv_qrels(tsv_folder):
    ds = load_dataset(f"beir:{tsv_folder}?lang=hi")
    docs, queries, qrels = snapshot(ds)
    assert docs == [
        ("d1", "दिल्ली", "दिल्ली भारत की राजधानी है।", "hi"),
        ("d2", "", "गंगा एक नदी है।", "hi"),
        ("d3", "", "हिमालय पर्वत ऊँचा है।", "hi"),
        ("d4", "मुंबई", "मुंबई एक शहर है।", "hi"),
    ]
    assert queries == [("q1", "भारत की राजधानी क्या है?", "hi"), ("q2", "गंगा क्या है?", "hi")]
    assert qrels == {"q1": {"d1": 1, "d4": 1}, "q2": {"d2": 2, "d3": 0}}
    assert ds.doc_languages == ("hi",)
    first = next(ds.docs())
    assert first.contents == "दिल्ली\nदिल्ली भारत की राजधानी है।"
    assert list(ds.docs())[1].contents == "गंगा एक नदी है।"


def test_tsv_and_jsonl_qrels_load_identically(tsv_folder, jsonl_folder):
    a = load_dataset(f"beir:{tsv_folder}?lang=hi")
    b = load_dataset(f"beir:{jsonl_folder}?lang=hi")
    assert (jsonl_folder / "qrels" / "test.jsonl").is_file()
    assert not (jsonl_folder / "qrels" / "test.tsv").exists()
    assert snapshot(a) == snapshot(b)


def test_tsv_qrels_without_header(tmp_path):
    folder = make_folder(tmp_path / "f")
    write_qrels_tsv(folder / "qrels" / "test.tsv", QRELS, header=False)
    ds = load_dataset(f"beir:{folder}?lang=hi")
    assert ds.qrels() == {"q1": {"d1": 1, "d4": 1}, "q2": {"d2": 2, "d3": 0}}


def test_split_option(tmp_path):
    folder = make_folder(tmp_path / "f")
    write_qrels_tsv(folder / "qrels" / "dev.tsv", [("q3", "d3", 1)])
    ds = load_dataset(f"beir:{folder}?lang=hi&split=dev")
    assert ds.qrels() == {"q3": {"d3": 1}}
    assert [q.query_id for q in ds.queries()] == ["q3"]


def test_language_alias_and_unknown_language(tsv_folder):
    assert load_dataset(f"beir:{tsv_folder}?lang=dt").doc_languages == ("nl",)
    with pytest.raises(UnsupportedLanguage, match="'xx'"):
        load_dataset(f"beir:{tsv_folder}?lang=xx")


def test_missing_lang(tsv_folder):
    with pytest.raises(DataError, match=r"\?lang="):
        load_dataset(f"beir:{tsv_folder}")


def test_folder_not_a_directory(tmp_path):
    with pytest.raises(DataError, match="not a directory"):
        load_dataset(f"beir:{tmp_path / 'nope'}?lang=hi")


def test_missing_corpus(tsv_folder):
    (tsv_folder / "corpus.jsonl").unlink()
    ds = load_dataset(f"beir:{tsv_folder}?lang=hi")
    with pytest.raises(DataError) as info:
        list(ds.docs())
    assert str(tsv_folder / "corpus.jsonl") in str(info.value)
    with pytest.raises(DataError, match="corpus.jsonl"):
        _ = ds.fingerprint


def test_missing_queries(tsv_folder):
    (tsv_folder / "queries.jsonl").unlink()
    ds = load_dataset(f"beir:{tsv_folder}?lang=hi")
    with pytest.raises(DataError) as info:
        ds.queries()
    assert str(tsv_folder / "queries.jsonl") in str(info.value)


def test_missing_qrels(tsv_folder):
    (tsv_folder / "qrels" / "test.tsv").unlink()
    ds = load_dataset(f"beir:{tsv_folder}?lang=hi")
    with pytest.raises(DataError, match=r"qrels/test\.tsv \(or \.jsonl\)"):
        ds.qrels()


def test_malformed_qrels_line_names_file_and_line(tsv_folder):
    path = tsv_folder / "qrels" / "test.tsv"
    path.write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\n", encoding="utf-8")
    ds = load_dataset(f"beir:{tsv_folder}?lang=hi")
    with pytest.raises(DataError) as info:
        ds.qrels()
    message = str(info.value)
    assert f"{path}:3" in message
    assert "test.tsv:3" in message
    assert "got 2" in message


def test_malformed_jsonl_qrels_names_file_and_line(jsonl_folder):
    path = jsonl_folder / "qrels" / "test.jsonl"
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps({"query-id": "q1", "score": 1}) + "\n")
    ds = load_dataset(f"beir:{jsonl_folder}?lang=hi")
    with pytest.raises(DataError, match=rf"test\.jsonl:{len(QRELS) + 1}: missing field 'corpus-id'"):
        ds.qrels()


def test_invalid_json_in_corpus_names_file_and_line(tsv_folder):
    path = tsv_folder / "corpus.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines.insert(2, '{"_id": "d9", "text": ')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    ds = load_dataset(f"beir:{tsv_folder}?lang=hi")
    with pytest.raises(DataError) as info:
        list(ds.docs())
    assert f"{path}:3" in str(info.value)
    assert "invalid JSON" in str(info.value)


def test_non_object_json_line(tsv_folder):
    path = tsv_folder / "queries.jsonl"
    with open(path, "a", encoding="utf-8") as f:
        f.write("[1, 2]\n")
    ds = load_dataset(f"beir:{tsv_folder}?lang=hi")
    with pytest.raises(DataError, match=rf"queries\.jsonl:{len(QUERIES) + 1}: expected a JSON object"):
        ds.queries()


def test_corpus_line_without_id(tsv_folder):
    write_jsonl(tsv_folder / "corpus.jsonl", [CORPUS[0], {"text": "no id"}])
    ds = load_dataset(f"beir:{tsv_folder}?lang=hi")
    with pytest.raises(DataError, match=r"corpus\.jsonl:2: missing field '_id'"):
        list(ds.docs())


def test_duplicate_doc_id(tsv_folder):
    write_jsonl(tsv_folder / "corpus.jsonl", CORPUS + [{"_id": "d2", "text": "फिर से"}])
    ds = load_dataset(f"beir:{tsv_folder}?lang=hi")
    it = ds.docs()
    # every document comes out (ids are kept as hashes); the repeat is an error once the read ends
    assert [next(it).doc_id for _ in range(5)] == ["d1", "d2", "d3", "d4", "d2"]
    with pytest.raises(DataError) as info:
        next(it)
    message = str(info.value)
    assert f"{tsv_folder / 'corpus.jsonl'}:5" in message
    assert "'d2'" in message


def test_colliding_id_hashes_are_no_duplicate(tsv_folder):
    """Ids are kept as hashes while reading; a repeated hash is confirmed by the ids before it is an error."""
    ds = load_dataset(f"beir:{tsv_folder}?lang=hi")
    ids = [doc.doc_id for doc in ds.docs()]
    assert ds.describe()["docs"] == len(ids) == len(set(ids))
    ds._repeated_id({hash(ids[0]), hash(ids[1])})  # as if the two ids' hashes collided: read again, no error
    write_jsonl(tsv_folder / "corpus.jsonl", CORPUS + [{"_id": ids[0], "text": "फिर से"}])
    with pytest.raises(DataError, match=f"corpus\\.jsonl:{len(ids) + 1}: duplicate doc id '{ids[0]}'"):
        load_dataset(f"beir:{tsv_folder}?lang=hi")._repeated_id({hash(ids[0])})


def test_duplicate_query_id(tsv_folder):
    write_jsonl(tsv_folder / "queries.jsonl", QUERIES + [{"_id": "q1", "text": "फिर"}])
    ds = load_dataset(f"beir:{tsv_folder}?lang=hi")
    with pytest.raises(DataError, match="duplicate query id 'q1'"):
        ds.queries()


@pytest.mark.parametrize("bad", ["1.5", "high", ""])
def test_non_integer_relevance_tsv(tsv_folder, bad):
    write_qrels_tsv(tsv_folder / "qrels" / "test.tsv", [("q1", "d1", 1), ("q2", "d2", bad)])
    ds = load_dataset(f"beir:{tsv_folder}?lang=hi")
    with pytest.raises(DataError) as info:
        ds.qrels()
    assert "test.tsv:3" in str(info.value)
    assert "relevance must be an integer" in str(info.value)


@pytest.mark.parametrize("bad", [1.5, "high", None])
def test_non_integer_relevance_jsonl(jsonl_folder, bad):
    write_jsonl(jsonl_folder / "qrels" / "test.jsonl", [{"query-id": "q1", "corpus-id": "d1", "score": bad}])
    ds = load_dataset(f"beir:{jsonl_folder}?lang=hi")
    with pytest.raises(DataError, match=r"test\.jsonl:1: relevance must be an integer"):
        ds.qrels()


def test_integer_valued_float_relevance_accepted(tsv_folder):
    write_qrels_tsv(tsv_folder / "qrels" / "test.tsv", [("q1", "d1", "2.0")])
    assert load_dataset(f"beir:{tsv_folder}?lang=hi").qrels() == {"q1": {"d1": 2}}


def test_qrels_for_unknown_query(tsv_folder):
    write_qrels_tsv(tsv_folder / "qrels" / "test.tsv", QRELS + [("q99", "d1", 1)])
    ds = load_dataset(f"beir:{tsv_folder}?lang=hi")
    with pytest.raises(DataError, match="q99"):
        ds.qrels()
    with pytest.raises(DataError):
        ds.queries()


def test_qrels_for_unknown_query_can_be_dropped(tsv_folder):
    write_qrels_tsv(tsv_folder / "qrels" / "test.tsv", QRELS + [("q99", "d1", 1)])
    ds = load_dataset(f"beir:{tsv_folder}?lang=hi&qrels_without_queries=drop")
    assert set(ds.qrels()) == {"q1", "q2"}


def test_fingerprint_stable_and_content_sensitive(tsv_folder):
    dataset_id = f"beir:{tsv_folder}?lang=hi"
    first = load_dataset(dataset_id).fingerprint
    assert load_dataset(dataset_id).fingerprint == first

    corpus = tsv_folder / "corpus.jsonl"
    original = corpus.read_bytes()
    write_jsonl(corpus, CORPUS[:-1] + [{"_id": "d4", "title": "मुंबई", "text": "मुंबई एक बड़ा शहर है।"}])
    changed_corpus = load_dataset(dataset_id).fingerprint
    assert changed_corpus != first
    corpus.write_bytes(original)
    assert load_dataset(dataset_id).fingerprint == first

    write_qrels_tsv(tsv_folder / "qrels" / "test.tsv", QRELS[:-1] + [("q1", "d4", 2)])
    assert load_dataset(dataset_id).fingerprint not in {first, changed_corpus}


def test_fingerprint_differs_between_languages(tsv_folder):
    assert load_dataset(f"beir:{tsv_folder}?lang=hi").fingerprint != load_dataset(f"beir:{tsv_folder}?lang=en").fingerprint


# -- strict input: every rule of harness.data.base, through the BEIR reader -------------------------


def raises_at(action, where: str, *words: str) -> str:
    """Run ``action``; it must raise a `DataError` that names ``where`` and each of ``words``."""
    with pytest.raises(DataError) as info:
        action()
    message = str(info.value)
    assert where in message, message
    for word in words:
        assert word in message, message
    return message


@pytest.mark.parametrize("field", ["text", "_id"])
def test_null_doc_text_or_id_is_an_error(tsv_folder, field):
    write_jsonl(tsv_folder / "corpus.jsonl", [*CORPUS[:2], {**CORPUS[2], field: None}, CORPUS[3]])
    ds = load_dataset(f"beir:{tsv_folder}?lang=hi")
    raises_at(lambda: list(ds.docs()), f"{tsv_folder / 'corpus.jsonl'}:3", repr(field), "null")


def test_null_query_text_is_an_error_not_the_query_none(tsv_folder):
    write_jsonl(tsv_folder / "queries.jsonl", [QUERIES[0], {"_id": "q2", "text": None}, QUERIES[2]])
    ds = load_dataset(f"beir:{tsv_folder}?lang=hi")
    raises_at(ds.queries, f"{tsv_folder / 'queries.jsonl'}:2", "'text'", "null")


def test_missing_doc_text_is_an_error(tsv_folder):
    write_jsonl(tsv_folder / "corpus.jsonl", [CORPUS[0], {"_id": "d2", "title": "only a title"}])
    raises_at(lambda: list(load_dataset(f"beir:{tsv_folder}?lang=hi").docs()), "corpus.jsonl:2", "missing field 'text'")


def test_null_or_missing_title_is_no_title(tsv_folder):
    """Documented choice: ``title`` is optional, and a null title is the empty title."""
    write_jsonl(tsv_folder / "corpus.jsonl", [{"_id": "d1", "title": None, "text": "x"}, *CORPUS[1:]])
    docs = list(load_dataset(f"beir:{tsv_folder}?lang=hi").docs())
    assert (docs[0].title, docs[0].contents) == ("", "x")
    assert docs[2].title == ""  # d3 has no title field


def test_object_text_is_an_error_and_numbers_are_text(tsv_folder):
    write_jsonl(tsv_folder / "corpus.jsonl", [{"_id": 7, "text": 1.5}, {"_id": "d1", "text": ["a", "b"]}])
    ds = load_dataset(f"beir:{tsv_folder}?lang=hi")
    it = ds.docs()
    first = next(it)
    assert (first.doc_id, first.text) == ("7", "1.5")
    raises_at(lambda: next(it), "corpus.jsonl:2", "'text' must be a string, got list")


@pytest.mark.parametrize("qrels_format, line", [("tsv", len(QRELS) + 2), ("jsonl", len(QRELS) + 1)])
def test_qrels_naming_an_unknown_doc(tmp_path, qrels_format, line):
    folder = make_folder(tmp_path / "f", qrels_format, qrels=QRELS + [("q2", "d99", 1)])
    ds = load_dataset(f"beir:{folder}?lang=hi")
    assert ds.qrels()["q2"]["d99"] == 1  # the qrels alone cannot tell: the corpus is not read for them
    path = folder / "qrels" / f"test.{qrels_format}"
    message = raises_at(lambda: list(ds.docs()), f"{path}:{line}", "'d99'", "'q2'")
    assert "not among the documents" in message


def test_unknown_doc_check_reads_the_corpus_once(tsv_folder, monkeypatch):
    from harness.data.formats import beir

    reads = []
    original = beir.read_jsonl
    monkeypatch.setattr(beir, "read_jsonl", lambda path: reads.append(path.name) or original(path))
    ds = load_dataset(f"beir:{tsv_folder}?lang=hi")
    assert [d.doc_id for d in ds.docs()] == ["d1", "d2", "d3", "d4"]
    assert reads.count("corpus.jsonl") == 1


def test_qrels_of_dropped_queries_are_not_checked_against_the_corpus(tsv_folder):
    write_qrels_tsv(tsv_folder / "qrels" / "test.tsv", QRELS + [("q99", "d99", 1)])
    ds = load_dataset(f"beir:{tsv_folder}?lang=hi&qrels_without_queries=drop")
    assert len(list(ds.docs())) == len(CORPUS)


def test_qrels_for_unknown_query_names_the_line(tsv_folder):
    write_qrels_tsv(tsv_folder / "qrels" / "test.tsv", QRELS + [("q99", "d1", 1)])
    ds = load_dataset(f"beir:{tsv_folder}?lang=hi")
    raises_at(ds.qrels, f"{tsv_folder / 'qrels' / 'test.tsv'}:{len(QRELS) + 2}", "'q99'", "qrels_without_queries=drop")


@pytest.mark.parametrize("qrels_format", ["tsv", "jsonl"])
def test_pair_judged_twice_with_different_grades(tmp_path, qrels_format):
    folder = make_folder(tmp_path / "f", qrels_format, qrels=[("q1", "d1", 1), ("q2", "d2", 2), ("q1", "d1", 2)])
    line = 4 if qrels_format == "tsv" else 3
    message = raises_at(load_dataset(f"beir:{folder}?lang=hi").qrels, f"test.{qrels_format}:{line}", "'q1'", "'d1'")
    assert "judged it 1" in message


def test_pair_judged_twice_with_the_same_grade_is_accepted(tmp_path):
    folder = make_folder(tmp_path / "f", qrels=[("q1", "d1", 1), ("q2", "d2", 2), ("q1", "d1", 1)])
    assert load_dataset(f"beir:{folder}?lang=hi").qrels() == {"q1": {"d1": 1}, "q2": {"d2": 2}}


@pytest.mark.parametrize("text", ["", "  \t "])
def test_judged_empty_query_is_an_error(tsv_folder, text):
    write_jsonl(tsv_folder / "queries.jsonl", [QUERIES[0], {"_id": "q2", "text": text}, QUERIES[2]])
    ds = load_dataset(f"beir:{tsv_folder}?lang=hi")
    raises_at(ds.queries, f"{tsv_folder / 'queries.jsonl'}:2", "'q2'", "empty text")
    with pytest.raises(DataError, match="empty text"):
        ds.qrels()  # evaluation stops too


def test_empty_docs_and_unjudged_empty_queries_are_counted(tsv_folder):
    corpus = [*CORPUS, {"_id": "d5", "title": "", "text": ""}, {"_id": "d6", "title": " ", "text": "\n\t"},
              {"_id": "d7", "title": "title only", "text": ""}]
    write_jsonl(tsv_folder / "corpus.jsonl", corpus)
    write_jsonl(tsv_folder / "queries.jsonl", [*QUERIES, {"_id": "q4", "text": " "}])  # q4: not judged
    ds = load_dataset(f"beir:{tsv_folder}?lang=hi")
    before = ds.describe()
    assert (before["queries"], before["empty_queries"]) == (2, 1)
    assert before["docs"] is None and before["empty_docs"] is None  # not counted until read
    assert len(list(ds.docs())) == 7
    after = ds.describe()
    assert (after["docs"], after["empty_docs"]) == (7, 2)  # d7 has a title: not empty
    assert [q.query_id for q in ds.queries()] == ["q1", "q2"]


@pytest.mark.parametrize("name, line", [("corpus.jsonl", 3), ("queries.jsonl", 2), ("qrels/test.tsv", 3)])
def test_bytes_that_are_not_utf8_name_file_and_line(tsv_folder, name, line):
    path = tsv_folder / name
    lines = path.read_bytes().split(b"\n")
    lines[line - 1] = lines[line - 1][:3] + b"\xff" + lines[line - 1][3:]  # never the start of a UTF-8 character
    path.write_bytes(b"\n".join(lines))
    ds = load_dataset(f"beir:{tsv_folder}?lang=hi")
    message = raises_at(lambda: (list(ds.docs()), ds.queries()), f"{path}:{line}", "not valid UTF-8")
    assert "UnicodeDecodeError" not in message


def test_byte_order_mark_is_accepted(tmp_path):
    plain = make_folder(tmp_path / "plain")
    bom = make_folder(tmp_path / "bom")
    for name in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv"):
        path = bom / name
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert snapshot(load_dataset(f"beir:{bom}?lang=hi")) == snapshot(load_dataset(f"beir:{plain}?lang=hi"))
    jsonl = make_folder(tmp_path / "jsonl", "jsonl")
    (jsonl / "qrels" / "test.jsonl").write_bytes(b"\xef\xbb\xbf" + (jsonl / "qrels" / "test.jsonl").read_bytes())
    assert load_dataset(f"beir:{jsonl}?lang=hi").qrels() == load_dataset(f"beir:{plain}?lang=hi").qrels()


@pytest.mark.parametrize("bad", ["", "d 5", "d5\t", " d5", "d\u00a05"])
def test_doc_id_empty_or_with_whitespace(tsv_folder, bad):
    write_jsonl(tsv_folder / "corpus.jsonl", [*CORPUS, {"_id": bad, "text": "x"}])
    ds = load_dataset(f"beir:{tsv_folder}?lang=hi")
    raises_at(lambda: list(ds.docs()), f"{tsv_folder / 'corpus.jsonl'}:5", f"doc id {bad!r}", "whitespace")


@pytest.mark.parametrize("bad", ["", "q 1"])
def test_query_id_empty_or_with_whitespace(tsv_folder, bad):
    write_jsonl(tsv_folder / "queries.jsonl", [*QUERIES, {"_id": bad, "text": "x"}])
    raises_at(load_dataset(f"beir:{tsv_folder}?lang=hi").queries, f"{tsv_folder / 'queries.jsonl'}:4",
              f"query id {bad!r}")


def test_qrels_doc_id_with_whitespace(tsv_folder):
    write_qrels_tsv(tsv_folder / "qrels" / "test.tsv", [("q1", "d 1", 1)])
    raises_at(load_dataset(f"beir:{tsv_folder}?lang=hi").qrels, "test.tsv:2", "doc id 'd 1'")
