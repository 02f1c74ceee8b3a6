"""``union:`` merges collections: documents keep their languages, queries and qrels merge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.data import DataError, load_dataset


def beir(folder: Path, lang: str, docs: dict[str, str], queries: dict[str, str], qrels: list[tuple[str, str]]) -> str:
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("".join(json.dumps({"_id": d, "text": t}) + "\n" for d, t in docs.items()))
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in queries.items()))
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n" for q, d in qrels))
    return f"beir:{folder}?lang={lang}"


def test_union_of_two_languages(tmp_path: Path) -> None:
    fa = beir(tmp_path / "fa", "fa", {"f1": "سلام", "f2": "کتاب"}, {"q1": "hello", "q2": "book"}, [("q1", "f1"), ("q2", "f2")])
    ru = beir(tmp_path / "ru", "ru", {"r1": "привет"}, {"q1": "hello", "q3": "cat"}, [("q1", "r1"), ("q3", "r1")])
    union = load_dataset(f"union:{fa}+{ru}")
    docs = list(union.docs())
    assert [(d.doc_id, d.language) for d in docs] == [("f1", "fa"), ("f2", "fa"), ("r1", "ru")]
    assert union.doc_languages == ("fa", "ru")
    assert union.qrels() == {"q1": {"f1": 1, "r1": 1}, "q2": {"f2": 1}, "q3": {"r1": 1}}
    assert sorted(q.query_id for q in union.queries()) == ["q1", "q2", "q3"]
    assert union.fingerprint != load_dataset(fa).fingerprint


def test_union_errors(tmp_path: Path) -> None:
    a = beir(tmp_path / "a", "en", {"d1": "x"}, {"q1": "one"}, [("q1", "d1")])
    b = beir(tmp_path / "b", "en", {"d1": "y"}, {"q1": "other"}, [("q1", "d1")])
    with pytest.raises(DataError, match="at least two"):
        load_dataset(f"union:{a}")
    with pytest.raises(DataError, match="differs between parts"):
        load_dataset(f"union:{a}+{b}").queries()
    c = beir(tmp_path / "c", "en", {"d1": "z"}, {"q1": "one"}, [("q1", "d1")])
    with pytest.raises(DataError, match="duplicate doc id 'd1'"):
        list(load_dataset(f"union:{a}+{c}").docs())


def test_union_pair_graded_differently_by_two_parts(tmp_path: Path) -> None:
    a = beir(tmp_path / "a", "en", {"d1": "x"}, {"q1": "one"}, [("q1", "d1")])
    b = beir(tmp_path / "b", "en", {"d2": "y"}, {"q1": "one"}, [("q1", "d2")])
    (tmp_path / "b" / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td2\t1\nq1\td1\t2\n")
    with pytest.raises(DataError) as info:
        load_dataset(f"union:{a}+{b}").qrels()  # no corpus needed: evaluation sees it too
    assert f"{b} qrels" in str(info.value) and "judged it 1" in str(info.value)


def test_union_part_qrels_naming_an_unknown_doc(tmp_path: Path) -> None:
    a = beir(tmp_path / "a", "en", {"d1": "x"}, {"q1": "one"}, [("q1", "d1")])
    b = beir(tmp_path / "b", "en", {"d2": "y"}, {"q2": "two"}, [("q2", "d2"), ("q2", "d9")])
    union = load_dataset(f"union:{a}+{b}")
    with pytest.raises(DataError, match=rf"{tmp_path / 'b' / 'qrels' / 'test.tsv'}:3: qrels judge doc 'd9'"):
        list(union.docs())


def test_union_counts_empty_docs(tmp_path: Path) -> None:
    a = beir(tmp_path / "a", "en", {"d1": "x", "d2": " "}, {"q1": "one"}, [("q1", "d1")])
    b = beir(tmp_path / "b", "en", {"d3": ""}, {"q2": "two"}, [("q2", "d3")])
    union = load_dataset(f"union:{a}+{b}")
    assert len(list(union.docs())) == 3
    assert (union.describe()["docs"], union.describe()["empty_docs"]) == (3, 2)
