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
        ds.fingerprint


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
    # the first four documents come out before the duplicate is found
    assert [next(it).doc_id for _ in range(4)] == ["d1", "d2", "d3", "d4"]
    with pytest.raises(DataError) as info:
        next(it)
    message = str(info.value)
    assert f"{tsv_folder / 'corpus.jsonl'}:5" in message
    assert "'d2'" in message


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


def test_null_text_is_not_the_string_none(tsv_folder):
    """A null ``title`` becomes ""; a null ``text`` must not become the four letters "None"."""
    write_jsonl(tsv_folder / "corpus.jsonl", [{"_id": "d1", "title": None, "text": None}, *CORPUS[1:]])
    doc = next(load_dataset(f"beir:{tsv_folder}?lang=hi").docs())
    assert doc.title == ""
    assert doc.text != "None"
