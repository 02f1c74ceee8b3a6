"""Synthetic collections: determinism, parallelism across languages, splits, scripts, options."""

from __future__ import annotations

import re

import pytest

from harness.data import DataError, load_dataset
from harness.data.synthetic import SyntheticCollection
from harness.languages import UnsupportedLanguage

PARAMS = "docs=300&queries=10&train=20"


def sid(lang: str, extra: str = "") -> str:
    return f"synthetic:{lang}?{PARAMS}{extra}"


def snapshot(dataset):
    docs = [(d.doc_id, d.text, d.language, d.title) for d in dataset.docs()]
    queries = [(q.query_id, q.text, q.language) for q in dataset.queries()]
    return docs, queries, dataset.qrels()


@pytest.fixture(scope="module")
def de():
    return load_dataset(sid("de"))


def test_shape(de):
    docs, queries, qrels = snapshot(de)
    assert len(docs) == 300
    assert len({d[0] for d in docs}) == 300
    assert len(queries) == 10
    assert set(qrels) == {q[0] for q in queries}
    assert all(d[2] == "de" for d in docs)
    assert all(q[2] == "de" for q in queries)
    assert de.doc_languages == ("de",)
    doc_ids = {d[0] for d in docs}
    for qid, judged in qrels.items():
        assert judged, f"{qid} has no relevant documents"
        assert set(judged) <= doc_ids


def test_deterministic():
    a, b = load_dataset(sid("de")), load_dataset(sid("de"))
    assert snapshot(a) == snapshot(b)
    assert a.fingerprint == b.fingerprint
    assert re.fullmatch(r"[0-9a-f]{16}", a.fingerprint)


def test_different_seed_changes_content_and_fingerprint():
    a = load_dataset(sid("de"))
    b = load_dataset(sid("de", "&seed=7"))
    assert a.fingerprint != b.fingerprint
    assert [d.text for d in a.docs()] != [d.text for d in b.docs()]
    # the content identity itself (not only the id) depends on the seed
    same_id_a = SyntheticCollection("synthetic:x", lang="de", n_docs=300, n_queries=10, n_train=20, seed=0)
    same_id_b = SyntheticCollection("synthetic:x", lang="de", n_docs=300, n_queries=10, n_train=20, seed=7)
    assert same_id_a.fingerprint != same_id_b.fingerprint


def test_explicit_default_seed_gives_same_content():
    a = load_dataset(sid("de"))
    b = load_dataset(sid("de", "&seed=0"))
    assert snapshot(a) == snapshot(b)


def test_parallel_across_languages():
    de, ru = load_dataset(sid("de")), load_dataset(sid("ru"))
    assert de.qrels() == ru.qrels()
    assert [q.query_id for q in de.queries()] == [q.query_id for q in ru.queries()]
    de_docs, ru_docs = list(de.docs()), list(ru.docs())
    assert [d.doc_id for d in de_docs] == [d.doc_id for d in ru_docs]
    assert all(a.text != b.text for a, b in zip(de_docs, ru_docs))
    assert all(a.text != b.text for a, b in zip(de.queries(), ru.queries()))
    # same structure: same number of words per document
    assert [len(a.text.split()) for a in de_docs] == [len(b.text.split()) for b in ru_docs]
    assert de.fingerprint != ru.fingerprint
    assert de.training().qrels() == ru.training().qrels()


def test_graded_relevance(de):
    grades = {rel for judged in de.qrels().values() for rel in judged.values()}
    assert grades == {1, 2}
    # every query has at least one grade-2 (primary topic) document
    assert all(2 in judged.values() for judged in de.qrels().values())


def test_training_split(de):
    train = de.training()
    assert train is not None
    test_ids = {q.query_id for q in de.queries()}
    train_queries = train.queries()
    train_ids = {q.query_id for q in train_queries}
    assert len(train_queries) == 20
    assert test_ids.isdisjoint(train_ids)
    assert set(train.qrels()) == train_ids
    assert set(train.qrels()).isdisjoint(de.qrels())
    # same documents
    assert [d.doc_id for d in train.docs()] == [d.doc_id for d in de.docs()]
    assert [d.text for d in train.docs()] == [d.text for d in de.docs()]
    # judged docs of the training split exist
    doc_ids = {d.doc_id for d in de.docs()}
    for judged in train.qrels().values():
        assert judged and set(judged) <= doc_ids
    assert {r for j in train.qrels().values() for r in j.values()} <= {1, 2}
    # training and test use disjoint topics, so their query texts differ
    assert {q.text for q in train_queries}.isdisjoint({q.text for q in de.queries()})
    assert train.fingerprint != de.fingerprint


def test_relevant_documents_share_words_with_the_query(de):
    """Grade-2 documents are written around the query's topic, so they mostly share its words."""
    docs = {d.doc_id: set(d.text.replace(".", " ").split()) for d in de.docs()}
    hits = total = random_hits = random_total = 0
    for q in de.queries():
        words = set(q.text.split())
        judged = de.qrels()[q.query_id]
        for doc_id, rel in judged.items():
            if rel == 2:
                total += 1
                hits += bool(words & docs[doc_id])
        for doc_id in list(docs)[:100]:
            if doc_id not in judged:
                random_total += 1
                random_hits += bool(words & docs[doc_id])
    assert total and random_total
    assert hits / total > 0.8
    assert hits / total > 2 * random_hits / random_total


CYRILLIC = re.compile(r"[\u0400-\u04FF]")
DEVANAGARI = re.compile(r"[\u0900-\u097F]")
CJK = re.compile(r"[\u4E00-\u9FFF]")
LATIN = re.compile(r"[A-Za-z]")


def test_cyrillic_for_russian():
    ds = load_dataset(sid("ru"))
    for d in ds.docs():
        assert CYRILLIC.search(d.text)
        assert not LATIN.search(d.text), d.text
    for q in ds.queries():
        assert CYRILLIC.search(q.text)


def test_devanagari_for_hindi():
    ds = load_dataset(sid("hi"))
    for d in ds.docs():
        assert DEVANAGARI.search(d.text)
        assert not LATIN.search(d.text), d.text
        assert "।" in d.text  # Devanagari danda ends sentences
    for q in ds.queries():
        assert DEVANAGARI.search(q.text)


def test_german_diacritics_appear():
    text = "".join(d.text for d in load_dataset(sid("de")).docs())
    assert set("äöü") & set(text)


def test_chinese_words_are_not_space_separated():
    ds = load_dataset(sid("zh"))
    for d in ds.docs():
        assert CJK.search(d.text)
        for sentence in d.text.split("。"):
            assert " " not in sentence.strip(), repr(sentence)
    for q in ds.queries():
        assert CJK.search(q.text)
        assert not re.search(r"\s", q.text), repr(q.text)


def test_chinese_text_has_no_spaces():
    """The module documents CJK text 'without spaces'; Chinese does not put a space after 。."""
    ds = load_dataset(sid("zh"))
    with_spaces = [d.doc_id for d in ds.docs() if " " in d.text]
    assert not with_spaces, f"{len(with_spaces)} zh docs contain spaces, e.g. {next(ds.docs()).text[:60]!r}"


@pytest.mark.parametrize(
    "dataset_id",
    [
        "synthetic:de?docs=300&bogus=1",
        "synthetic:de?lang=de",
    ],
)
def test_unknown_option(dataset_id):
    with pytest.raises(DataError, match="unknown options"):
        load_dataset(dataset_id)


@pytest.mark.parametrize(
    ("dataset_id", "key"),
    [
        ("synthetic:de?docs=many", "docs"),
        ("synthetic:de?docs=300&queries=1.5", "queries"),
        ("synthetic:de?docs=300&train=", "train"),
        ("synthetic:de?docs=300&seed=x", "seed"),
    ],
)
def test_bad_integer_option(dataset_id, key):
    with pytest.raises(DataError, match=f"option {key} must be an integer"):
        load_dataset(dataset_id)


def test_too_few_docs():
    with pytest.raises(DataError, match="at least 20"):
        load_dataset("synthetic:de?docs=10")


def test_too_many_queries_for_the_topics():
    """Found from the id alone (docs/8 topics at most), before anything is generated."""
    with pytest.raises(DataError, match="queries\\+train=20, but 40 docs give at most 5 usable topics"):
        load_dataset("synthetic:de?docs=40&queries=10&train=10")


@pytest.mark.parametrize("lang", ["xx", "klingon"])
def test_unknown_language(lang):
    with pytest.raises(UnsupportedLanguage, match=repr(lang)):
        load_dataset(f"synthetic:{lang}?{PARAMS}")


def test_alias_language_is_normalised():
    ds = load_dataset(f"synthetic:dt?{PARAMS}")
    assert ds.doc_languages == ("nl",)
    assert next(ds.docs()).language == "nl"


def test_docs_stream_lazily():
    ds = load_dataset("synthetic:en?docs=1000000&queries=5&train=5")
    it = ds.docs()
    first = [next(it) for _ in range(5)]
    assert [d.doc_id for d in first] == ["d0", "d1", "d2", "d3", "d4"]


def test_benchmark_generate_20k_docs(benchmark):
    def generate():
        return sum(1 for _ in load_dataset("synthetic:en?docs=20000&queries=10&train=20").docs())

    count = benchmark.pedantic(generate, rounds=1, iterations=1)
    assert count == 20000


def test_describe_counts_documents_once_read():
    fresh = load_dataset(sid("de"))
    before = fresh.describe()
    assert (before["docs"], before["empty_docs"], before["empty_queries"]) == (None, None, 0)
    assert len(list(fresh.docs())) == 300
    assert (fresh.describe()["docs"], fresh.describe()["empty_docs"]) == (300, 0)
