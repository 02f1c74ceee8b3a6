"""Passage splitting and MaxP/FirstP aggregation, the `Passages` wrapper system, and both
through the suite steps (index, retrieve and latency)."""

from __future__ import annotations

import itertools
import random
from pathlib import Path
from typing import Any

import pytest
from transformers import AutoTokenizer

from harness import layout, measure, registry, steps
from harness.data import load_dataset
from harness.data.base import Dataset, Doc, Query
from harness.runs import Run, rank, read_trec
from harness.spec import PASSAGE_SEARCH_DEPTH, PASSAGE_TOKENIZER, PassageSpec, Suite, load_suite
from harness.system import Params, System
from harness.system.passages import MARK, Passages, aggregate, as_passages, plaidx_text, split
from systems.common.tiny import xlmr_tokenizer
from tests.helpers import write_suite


def test_split_covers_the_document_with_overlap() -> None:
    words = [f"w{i}" for i in range(25)]
    passages = list(split(Doc("d1", " ".join(words), "en"), PassageSpec(unit="words", length=10, stride=5)))
    assert [p.doc_id for p in passages] == [f"d1{MARK}{k}" for k in range(4)]
    assert passages[0].text.split() == words[0:10] and passages[1].text.split() == words[5:15]
    assert passages[-1].text.split() == words[15:25]
    covered = {w for p in passages for w in p.text.split()}
    assert covered == set(words)


def test_token_passages_are_plaidx_slices_of_its_tokens(tmp_path: Path) -> None:
    """unit tokens (the default): ``title + " " + text`` cut into spans of 180 tokens every 90, as PLAID-X's
    ``create_passage_collection`` (written out below with the tokenizer's decode); a tokenizer trained on
    the fly, with a vocabulary so small that words are several tokens."""
    rng = random.Random(0)
    vocab = ["".join(rng.choice("abcdefghij") for _ in range(rng.randint(2, 9))) for _ in range(300)]
    words = [rng.choice(vocab) for _ in range(600)]
    folder = tmp_path / "tok"
    xlmr_tokenizer([" ".join(vocab)], vocab_size=40).save_pretrained(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    spec = PassageSpec(tokenizer=str(folder))
    assert (spec.unit, spec.length, spec.stride, PassageSpec().tokenizer) == ("tokens", 180, 90, PASSAGE_TOKENIZER)
    doc = Doc("d", " ".join(words[:300]) + "\n\n  " + " ".join(words[300:]), "en", title="ab\ncd  ef")
    text = plaidx_text(doc)
    assert text == "ab cd ef " + " ".join(words)
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert len(ids) > 3 * len(words)  # tokens, not words
    reference = [tok.decode(ids[s : s + 180]) for s in range(0, len(ids), 90)]  # PLAID-X's loop
    passages = list(split(doc, spec))
    assert [p.doc_id for p in passages] == [f"d{MARK}{k}" for k in range(len(reference))]
    assert [" ".join(p.text.split()) for p in passages] == [" ".join(r.split()) for r in reference]
    for p in passages:  # at most 180 tokens, as the model will read them
        assert len(tok(p.text, add_special_tokens=False)["input_ids"]) <= 181
    spans, at = [], 0
    for p in passages:  # each passage is a span of the text, starting after the last one started
        at = text.index(p.text, at)
        spans.append((at, at + len(p.text)))
        at += 1
    assert spans[0][0] == 0 and max(end for _, end in spans) == len(text)
    assert all(b_start < a_end for (_, a_end), (b_start, _) in itertools.pairwise(spans))  # overlapping: no gap
    token_starts = [start for start, _ in tok(text, add_special_tokens=False, return_offsets_mapping=True)
                    ["offset_mapping"]]
    assert [a for a, _ in spans] == token_starts[::90]  # a passage starts at every 90th token
    assert [p.text for p in split(doc, spec.model_copy(update={"aggregate": "firstp"}))] == [passages[0].text]
    assert [p.text for p in split(Doc("e", "", "en"), spec)] == [""]


def test_passage_settings_default_to_plaidx_and_check_their_combinations() -> None:
    spec = PassageSpec()
    assert spec.search_depth == PASSAGE_SEARCH_DEPTH == 2500 and spec.passages_searched(1000) == 2500
    assert PassageSpec(search_factor=3).search_depth is None and PassageSpec(search_factor=3).passages_searched(10) == 30
    assert PassageSpec(unit="words").tokenizer is None
    with pytest.raises(ValueError, match="not both"):
        PassageSpec(search_factor=3, search_depth=100)
    with pytest.raises(ValueError, match="needs unit: tokens"):
        PassageSpec(unit="words", tokenizer="x")
    with pytest.raises(ValueError, match="below the run depth 3000"):
        spec.passages_searched(3000)
    suite = {"name": "s", "depth": 3000, "measures": ["nDCG@10"], "datasets": [{"name": "d", "id": "synthetic:en"}],
             "systems": {"b": {"system": "bm25", "passages": {}}}}
    with pytest.raises(ValueError, match="'b': passages search_depth 2500 is below the suite depth 3000"):
        Suite.model_validate(suite)
    suite["depth"] = 1000
    assert Suite.model_validate(suite).systems["b"].passages.passages_searched(1000) == 2500


def test_short_and_empty_documents_give_one_passage() -> None:
    assert [p.text for p in split(Doc("d", "a b c", "en"), PassageSpec(unit="words", length=10, stride=5))] == ["a b c"]
    assert len(list(split(Doc("e", "", "en"), PassageSpec(unit="words")))) == 1


def test_firstp_keeps_the_first_passage_and_cjk_counts_characters() -> None:
    doc = Doc("z", "我们喜欢北京的天气他在上海工作", "zh")
    first = list(split(doc, PassageSpec(unit="words", length=4, stride=2, aggregate="firstp")))
    assert [p.text for p in first] == ["我们喜欢"]
    passages = list(split(doc, PassageSpec(unit="words", length=4, stride=2)))
    assert len(passages) == 7 and passages[-1].text == "海工作"  # starts 0, 2, ..., 12 cover all 15 characters


def test_passage_marker_in_doc_id_is_an_error() -> None:
    with pytest.raises(ValueError, match="marks passage ids"):
        list(split(Doc(f"a{MARK}1", "x", "en"), PassageSpec(unit="words")))


def test_maxp_scores_documents_by_their_best_passage() -> None:
    run = {"q": [(f"a{MARK}0", 1.0), (f"b{MARK}2", 3.0), (f"a{MARK}1", 5.0), (f"b{MARK}0", 4.0)]}
    assert aggregate(run, depth=10) == {"q": [("a", 5.0), ("b", 4.0)]}
    assert aggregate(run, depth=1) == {"q": [("a", 5.0)]}


def test_passages_change_the_fingerprint() -> None:
    dataset = load_dataset("synthetic:en?docs=100&queries=5&train=5")
    a, b = as_passages(dataset, PassageSpec(unit="words", length=20, stride=10)), \
        as_passages(dataset, PassageSpec(unit="words", length=30, stride=10))
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
    spec = PassageSpec(unit="words", length=5, stride=5, search_factor=3)
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
    plaidx = Passages(inner, PassageSpec(unit="words", length=5, stride=5))
    plaidx.retrieve(dataset.queries(), tmp_path, 4)
    assert inner.asked == PASSAGE_SEARCH_DEPTH  # PLAID-X's 2,500 passages, whatever the run depth
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
    passages: {unit: words, length: 20, stride: 10, aggregate: maxp}
  bm25-firstp:
    system: bm25
    passages: {unit: words, length: 20, stride: 10, aggregate: firstp}
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
