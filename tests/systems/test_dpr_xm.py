"""DPR-XM (the catalogue row ``dpr-xm`` over `systems.dense.system.DenseSystem`) over a tiny random XMOD checkpoint: every document
and query is encoded through the adapter of its own language, never the silent English default."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from harness.data.base import Dataset, Doc, Located, Query
from harness.languages import UnsupportedLanguage
from harness.system import build_system, system_class
from systems.common.tiny import sentence_transformer
from systems.dense.system import DenseSystem

DOCS = (
    ("d0", "en", "The Eiffel Tower is a wrought-iron lattice tower in Paris."),
    ("d1", "de", "Der Eiffelturm ist ein Gitterturm aus Schmiedeeisen in Paris."),
    ("d2", "ru", "Эйфелева башня — металлическая башня в Париже."),
    ("d3", "de", "Mozart komponierte Sinfonien und Opern."),
    ("d4", "en", "Mozart composed symphonies and operas."),
    ("d5", "ru", "Моцарт сочинял симфонии и оперы."),
)
QUESTIONS = (
    ("q0", "en", "Which tower stands in Paris?"),
    ("q1", "de", "Wer komponierte Opern?"),
    ("q2", "ru", "Какая башня стоит в Париже?"),
)
ADAPTERS = {"en": "en_XX", "de": "de_DE", "ru": "ru_RU"}


@dataclass
class Mixed(Dataset):
    """English, German and Russian documents in one collection, queries in each language."""

    docs_: tuple[tuple[str, str, str], ...] = DOCS

    def _read_docs(self):
        for i, (doc_id, lang, text) in enumerate(self.docs_):
            yield Located(Doc(doc_id, text, lang), f"mixed #{i}")

    def _read_queries(self):
        return [Query(query_id, text, lang) for query_id, lang, text in QUESTIONS]

    def _read_qrels(self):
        return {"q0": {"d0": 1, "d1": 1, "d2": 1}, "q1": {"d3": 1, "d4": 1}, "q2": {"d0": 1, "d2": 1}}

    def _content_identity(self):
        yield repr(self.docs_).encode()

    @property
    def doc_languages(self):
        return tuple(sorted({lang for _, lang, _ in self.docs_}))


MIXED = Mixed("tiny:mixed")


@pytest.fixture(scope="module")
def tiny_xmod(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer XMOD with en_XX, de_DE and ru_RU adapters in sentence-transformers layout
    (Transformer → mean Pooling → Normalize, no prompts) with a Unigram tokenizer trained on the fly."""
    from transformers import XmodConfig, XmodModel

    root = tmp_path_factory.mktemp("tiny-xmod")
    corpus = [text for _, _, text in DOCS + QUESTIONS]
    return sentence_transformer(root, corpus, XmodModel, XmodConfig, "mean", adapter_reduction_factor=2,
                                languages=["en_XX", "de_DE", "ru_RU"], default_language="en_XX")


@pytest.fixture(scope="module")
def reference(tiny_xmod: Path):
    """sentence-transformers' own model from the checkpoint, and a function encoding texts with one adapter."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(tiny_xmod), device="cpu").eval()

    def encode(texts: list[str], code: str) -> np.ndarray:
        model[0].auto_model.set_default_language(code)
        return model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)

    return encode


@pytest.fixture
def system(tiny_xmod: Path) -> DenseSystem:
    return build_system("dpr-xm", {"model": str(tiny_xmod), "device": "cpu"})


def test_preset_defaults() -> None:
    assert system_class("dpr-xm") is DenseSystem and build_system("dpr-xm").name == "dpr-xm"
    p = build_system("dpr-xm").params
    assert (p.model, p.pooling, p.max_length) == ("antoinelouis/dpr-xm", "mean", 128)
    assert (p.query_prompt, p.doc_prompt) == ("", "")
    assert p.normalize and p.route_languages and p.dim is None and p.index == "flat"
    identity = build_system("dpr-xm").index_identity(MIXED)
    assert identity["params"]["route_languages"] is True and identity["checkpoint"] == "antoinelouis/dpr-xm@unpinned"
    assert p.revision is None  # the catalogue pins no DPR-XM commit


def test_german_doc_uses_the_german_adapter(system: DenseSystem, reference) -> None:
    text = DOCS[1][2]
    ours = system.encode([text], "document", languages=["de"])
    np.testing.assert_allclose(ours, reference([text], "de_DE"), atol=1e-5)
    assert np.abs(ours - reference([text], "en_XX")).max() > 1e-3
    # the shared model is left with its own default adapter
    assert system.encoder[0].auto_model.config.default_language == "en_XX"


def test_mixed_collection_routes_each_doc_in_order(system: DenseSystem, reference, tmp_path: Path) -> None:
    expected = np.stack([reference([text], ADAPTERS[lang])[0] for _, lang, text in DOCS])
    ours = system.encode([text for _, _, text in DOCS], "document", languages=[lang for _, lang, _ in DOCS])
    np.testing.assert_allclose(ours, expected, atol=1e-5)
    # through the index path: vectors stored in collection order with their ids
    info = system.index_shard(MIXED, 0, 1, tmp_path / "idx")
    assert info["documents"] == len(DOCS)
    stored = np.load(tmp_path / "idx" / "vectors" / "vectors.npy")
    np.testing.assert_allclose(stored, expected, atol=1e-5)
    # English adapter for every doc would give other vectors for the de and ru ones
    english = reference([text for _, _, text in DOCS], "en_XX")
    differs = np.abs(stored - english).max(axis=1) > 1e-3
    assert differs.tolist() == [lang != "en" for _, lang, _ in DOCS]


def test_queries_route_by_their_language(system: DenseSystem, reference) -> None:
    queries = MIXED.queries()
    ours = np.stack(system.encode_queries(queries))
    expected = np.stack([reference([q.text], ADAPTERS[q.language])[0] for q in queries])
    np.testing.assert_allclose(ours, expected, atol=1e-5)
    # the same text asked as German is another vector
    as_german = system.encode_queries([Query("q0", queries[0].text, "de")])[0]
    assert np.abs(as_german - ours[0]).max() > 1e-3


def test_languages_without_an_adapter_are_errors(system: DenseSystem, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"'fr'.*'fr_XX'.*en_XX, de_DE, ru_RU"):
        system.encode_queries([Query("q", "Quelle tour est à Paris ?", "fr")])
    with pytest.raises(UnsupportedLanguage, match="unsupported language 'xx'"):
        system.encode(["text"], "document", languages=["xx"])
    with pytest.raises(ValueError, match="needs each text's language"):
        system.encode(["text"], "document")
    with pytest.raises(ValueError, match="language 'fr' .*has no adapter"):
        system.index(Mixed("tiny:mixed-fr", docs_=DOCS + (("d6", "fr", "La tour Eiffel."),)), tmp_path / "index")


def test_routing_switches(tiny_xmod: Path) -> None:
    # st:<xmod folder> routes by itself; routing off on XMOD would be the silent default adapter
    auto = build_system(f"st:{tiny_xmod}", {"device": "cpu", "pooling": "mean"})
    np.testing.assert_allclose(auto.encode(["Hallo Welt"], "document", languages=["de"]),
                               build_system("dpr-xm", {"model": str(tiny_xmod), "device": "cpu"}).encode(
                                   ["Hallo Welt"], "document", languages=["de"]), atol=1e-6)
    off = build_system("dpr-xm", {"model": str(tiny_xmod), "device": "cpu", "route_languages": False})
    with pytest.raises(ValueError, match="default adapter 'en_XX'"):
        off.encode(["Hallo Welt"], "document", languages=["de"])


def test_index_and_retrieve_end_to_end(system: DenseSystem, reference, tmp_path: Path) -> None:
    info = system.index(MIXED, tmp_path / "index")
    assert info["documents"] == len(DOCS) and info["dim"] == 32
    queries = MIXED.queries()
    run = system.retrieve(queries, tmp_path / "index", 4)
    assert set(run) == {"q0", "q1", "q2"} and all(len(ranking) == 4 for ranking in run.values())
    # the scores are the inner products of the routed vectors
    docs = np.stack([reference([text], ADAPTERS[lang])[0] for _, lang, text in DOCS])
    for q in queries:
        vector = reference([q.text], ADAPTERS[q.language])[0]
        scores = docs @ vector
        top = [DOCS[i][0] for i in np.argsort(-scores, kind="stable")[:4]]
        assert [doc_id for doc_id, _ in run[q.query_id]] == top
        np.testing.assert_allclose([s for _, s in run[q.query_id]], np.sort(scores)[::-1][:4], atol=1e-4)
