"""Passage splitting and MaxP/FirstP aggregation, the `Passages` wrapper system, and both
through the suite steps (index, retrieve and latency)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness import layout, measure, registry, steps
from harness.data import load_dataset
from harness.data.base import Dataset, Doc, Query
from harness.runs import Run, rank, read_trec
from harness.spec import PassageSpec, load_suite
from harness.system import Params, System
from harness.system.passages import MARK, Passages, aggregate, as_passages, split
from tests.helpers import write_suite


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


class Recording(System):
    """A system that keeps the ids it indexed, ranks every document's first passage first, and records
    the depth it was asked for."""

    def index(self, dataset: Dataset, out: Path) -> dict[str, Any]:
        self.indexed = [doc.doc_id for doc in dataset.docs()]
        return {"documents": len(self.indexed)}

    def encode_queries(self, queries: list[Query]) -> list[Any]:
        return [q.text for q in queries]

    def search(self, searcher: Any, queries: list[Query], encoded: list[Any], k: int) -> Run:
        self.asked = k
        passage = {doc: int(doc.rpartition(MARK)[2]) for doc in self.indexed}
        scores = {doc: -float(passage[doc] * len(self.indexed) + i) for i, doc in enumerate(self.indexed)}
        return {q.query_id: rank(scores, k) for q in queries}


def test_the_wrapper_indexes_passages_and_ranks_documents_everywhere(tmp_path: Path) -> None:
    """Index, retrieve and the timed search of `measure.latency` all run split → inner system → MaxP."""
    dataset = load_dataset("synthetic:en?docs=40&queries=3&train=2")
    spec = PassageSpec(length=5, stride=5, search_factor=3)
    inner = Recording(Params(), "bm25")
    system = Passages(inner, spec)
    system.index(dataset, tmp_path)
    assert len(inner.indexed) > 40 and all(MARK in doc for doc in inner.indexed)
    run = system.retrieve(dataset.queries(), tmp_path, 4)
    assert inner.asked == 12 and set(run) == {q.query_id for q in dataset.queries()}
    assert all(len(ranking) == 4 and not any(MARK in doc for doc, _ in ranking) for ranking in run.values())
    assert run == aggregate(inner.retrieve(dataset.queries(), tmp_path, 12), 4)
    inner.asked = None
    timing = measure.latency(system, tmp_path, dataset.queries(), 4, warmup=1, batch_size=2)
    assert inner.asked == 12 and timing["k"] == 4
    assert system.identity()["passages"]["search_factor"] == 3
    assert {k: v for k, v in system.identity().items() if k != "passages"} == inner.identity()
    assert system.index_identity(dataset) == inner.index_identity(as_passages(dataset, spec))
    assert system.index_identity(dataset) != inner.index_identity(dataset)


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
        run = read_trec(layout.run_file("long", label, unit))
        assert all(MARK not in doc for ranking in run.values() for doc, _ in ranking)
        assert all(len(ranking) == 20 for ranking in run.values())
    assert sizes["bm25-firstp"] == 200 and sizes["bm25-maxp"] > 400


def test_latency_of_a_passage_system_times_its_maxp_pipeline(workdir: Path, monkeypatch) -> None:
    """The latency record names the wrapped system the run was made with, and times its MaxP search."""
    maxp_only = SUITE.split("  bm25-firstp:")[0]
    write_suite(workdir, "long", maxp_only + "cost: {country: FRA, latency_queries: 3, warmup: 0}\n")
    suite = load_suite("long")
    unit = suite.units()[0]
    timed = []
    real = measure.latency

    def spy(system: System, index: Path, queries: list[Query], k: int, *args: int) -> dict[str, Any]:
        searcher = system.open(index)
        timed.append(system.search(searcher, queries, system.encode_queries(queries), k))
        system.close(searcher)
        return real(system, index, queries, k, *args)

    monkeypatch.setattr(measure, "latency", spy)
    steps.index(suite, "bm25-maxp", unit)
    run = steps.retrieve(suite, "bm25-maxp", unit)
    (latency,) = [r for r in registry.records() if r.step == "latency"]
    assert latency.data["identity"]["system"] == run.data["identity"]["system"]
    assert latency.data["identity"]["system"]["passages"]["aggregate"] == "maxp"
    (ranked,) = timed
    assert all(len(r) == 20 and not any(MARK in doc for doc, _ in r) for r in ranked.values())
    assert steps.cost(suite, "bm25-maxp", unit).id == latency.id
