"""Passage splitting and MaxP/FirstP aggregation, unit-level and through the suite steps."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import steps
from harness.data import load_dataset
from harness.data.base import Doc
from harness.passages import MARK, aggregate, as_passages, split
from harness.runs import read_trec
from harness.spec import PassageSpec, load_suite
from tests.conftest import write_suite


def test_split_covers_the_document_with_overlap() -> None:
    words = [f"w{i}" for i in range(25)]
    passages = list(split(Doc("d1", " ".join(words), "en"), PassageSpec(length=10, stride=5)))
    assert [p.doc_id for p in passages] == [f"d1{MARK}{k}" for k in range(4)]
    assert passages[0].text.split() == words[0:10] and passages[1].text.split() == words[5:15]
    assert passages[-1].text.split() == words[15:25]
    covered = {w for p in passages for w in p.text.split()}
    assert covered == set(words)


def test_short_and_empty_documents_give_one_passage() -> None:
    assert [p.text for p in split(Doc("d", "a b c", "en"), PassageSpec(length=10, stride=5))] == ["a b c"]
    assert len(list(split(Doc("e", "", "en"), PassageSpec()))) == 1


def test_firstp_keeps_the_first_passage_and_cjk_counts_characters() -> None:
    doc = Doc("z", "我们喜欢北京的天气他在上海工作", "zh")
    first = list(split(doc, PassageSpec(length=4, stride=2, aggregate="firstp")))
    assert [p.text for p in first] == ["我们喜欢"]
    passages = list(split(doc, PassageSpec(length=4, stride=2)))
    assert len(passages) == 7 and passages[-1].text == "海工作"  # starts 0, 2, ..., 12 cover all 15 characters


def test_passage_marker_in_doc_id_is_an_error() -> None:
    with pytest.raises(ValueError, match="marks passage ids"):
        list(split(Doc(f"a{MARK}1", "x", "en"), PassageSpec()))


def test_maxp_scores_documents_by_their_best_passage() -> None:
    run = {"q": [(f"a{MARK}0", 1.0), (f"b{MARK}2", 3.0), (f"a{MARK}1", 5.0), (f"b{MARK}0", 4.0)]}
    assert aggregate(run, depth=10) == {"q": [("a", 5.0), ("b", 4.0)]}
    assert aggregate(run, depth=1) == {"q": [("a", 5.0)]}


def test_passages_change_the_fingerprint() -> None:
    dataset = load_dataset("synthetic:en?docs=100&queries=5&train=5")
    a, b = as_passages(dataset, PassageSpec(length=20, stride=10)), as_passages(dataset, PassageSpec(length=30, stride=10))
    assert len({dataset.fingerprint, a.fingerprint, b.fingerprint}) == 3
    assert a.qrels() == dataset.qrels()


SUITE = """\
name: long
depth: 20
measures: [nDCG@10]
datasets:
  - {name: syn, id: "synthetic:en?docs=200&queries=10&train=10", languages: [en]}
systems:
  bm25-maxp:
    system: bm25
    passages: {length: 20, stride: 10, aggregate: maxp}
  bm25-firstp:
    system: bm25
    passages: {length: 20, stride: 10, aggregate: firstp}
"""


def test_maxp_and_firstp_through_the_steps(workdir: Path) -> None:
    write_suite(workdir, "long", SUITE)
    suite = load_suite("long")
    unit = suite.units()[0]
    sizes = {}
    for label in suite.systems:
        record = steps.index(suite, label, unit)
        sizes[label] = record.data["info"]["documents"]
        steps.retrieve(suite, label, unit)
        run = read_trec(steps.suite_file("long", "runs", label, unit))
        assert all(MARK not in doc for ranking in run.values() for doc, _ in ranking)
        assert all(len(ranking) == 20 for ranking in run.values())
    assert sizes["bm25-firstp"] == 200 and sizes["bm25-maxp"] > 400
