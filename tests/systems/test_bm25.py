"""BM25 through Pyserini with each language's own Lucene analyzer."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.data.base import Dataset, Doc, Located, Query
from harness.languages import LANGUAGES, language
from harness.system import SystemConfigError, build_system
from systems.bm25.lucene import index_collection
from systems.bm25.system import analyze
from tests.helpers import TextsDataset, lucene_index_summary, synthetic_text


@dataclass
class Tiny(Dataset):
    """A hand-written collection in one language."""

    lang: str = "en"
    texts: tuple[str, ...] = ()

    def _read_docs(self):
        for i, text in enumerate(self.texts):
            yield Located(Doc(f"d{i}", text, self.lang), f"tiny #{i}")

    def _read_queries(self):
        return []

    def _read_qrels(self):
        return {}

    def _content_identity(self):
        yield "\n".join(self.texts).encode()

    @property
    def doc_languages(self):
        return (self.lang,)


CASES = {
    # language: (documents, query, the doc only the language's analyzer lets the query match)
    "de": (("Die Häuser stehen am Fluss", "Der Hund läuft im Park", "Ein Auto fährt schnell"), "Haus", "d0"),
    "ru": (("Большие собаки бегают", "Кошка спит на диване", "Машина едет быстро"), "собака", "d0"),
    "zh": (("我们喜欢北京的天气", "他在上海工作多年", "这个城市很漂亮"), "上海", "d1"),
    "th": (("ภาษาไทยเป็นภาษาที่สวยงาม", "แมวนอนบนโซฟา", "รถยนต์วิ่งเร็ว"), "สวยงาม", "d0"),
    "ar": (("الكتاب على الطاولة", "ذهب الولد إلى المدرسة", "السيارة سريعة جدا"), "كتاب", "d0"),
    "ta": (("தமிழ் மொழிகளில் ஒன்று", "பூனை தூங்குகிறது", "கார் வேகமாக செல்கிறது"), "மொழி", "d0"),
    "gu": (("બિલાડી સૂઈ રહી છે", "ગુજરાતી ભાષા સુંદર છે", "ગાડી ઝડપથી ચાલે છે"), "ભાષા", "d1"),
}


def test_analyzers_differ_by_language() -> None:
    assert analyze("Häuser", "de") == "haus"
    assert analyze("собаки", "ru") == analyze("собака", "ru")
    assert analyze("上海工作", "zh").split() == ["上海", "海工", "工作"]
    assert analyze("ภาษาไทย", "th").split() == ["ภาษา", "ไทย"]
    assert analyze("running dogs", "en") == "run dog"
    assert analyze("running dogs", "vi") == "running dogs"
    assert analyze("மொழிகளில்", "ta") == analyze("மொழி", "ta")  # Lucene's Tamil stemmer
    assert analyze("ભારતની ભાષા", "gu") == "ભારતની ભાષા"  # standard tokens keep their vowel signs


@pytest.mark.parametrize("lang", sorted(CASES))
def test_index_and_search(lang: str, tmp_path: Path) -> None:
    texts, query, expected = CASES[lang]
    bm25 = build_system("bm25", {})
    dataset = Tiny(f"tiny:{lang}", lang=lang, texts=texts)
    info = bm25.index(dataset, tmp_path)
    assert info["documents"] == 3 and info["index_bytes"] > 0
    run = bm25.retrieve([Query("q1", query, lang)], tmp_path, k=10)
    assert run["q1"][0][0] == expected
    scores = [score for _, score in run["q1"]]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) == len(scores)


def test_k1_b_change_scores_not_index(tmp_path: Path) -> None:
    texts = ("alpha beta beta beta gamma", "alpha delta", "beta " * 20 + "omega")
    dataset = Tiny("tiny:en2", lang="en", texts=texts)
    default, other = build_system("bm25", {}), build_system("bm25", {"k1": 1.5, "b": 0.9})
    assert default.index_identity(dataset) == other.index_identity(dataset)
    assert default.identity() != other.identity()
    default.index(dataset, tmp_path)
    q = [Query("q", "beta", "en")]
    a, b = default.retrieve(q, tmp_path, 10)["q"], other.retrieve(q, tmp_path, 10)["q"]
    assert dict(a) != dict(b)


def test_index_identity_names_analyzers() -> None:
    identity = build_system("bm25", {}).index_identity(Tiny("tiny:el", lang="el", texts=("κείμενο",)))
    assert identity["analyzers"] == {"el": "org.apache.lucene.analysis.el.GreekAnalyzer"}


def test_bad_params_are_clear() -> None:
    with pytest.raises(SystemConfigError, match="k1"):
        build_system("bm25", {"k1": -1})
    with pytest.raises(SystemConfigError, match="unknown system 'bm52'"):
        build_system("bm52", {})
    with pytest.raises(SystemConfigError, match="unknown param 'kl'; known: k1, b"):
        build_system("bm25", {"kl": 0.9})


def texts_in(lang: str, n: int, seed: int) -> tuple[tuple[str, str], ...]:
    """``n`` synthetic documents in ``lang``'s script, after its hand-written ones in `CASES`."""
    rng = random.Random(seed)
    cases = CASES[lang][0] if lang in CASES else ()
    return tuple((text, lang) for text in cases) + tuple(
        (synthetic_text(rng, language(lang).script, rng.randint(5, 60)), lang) for _ in range(n))


def analysed_terms_index(dataset: Dataset, out: Path) -> Path:
    """The reference: each document's terms from `analyze` (Lucene's analyzer for its own language),
    indexed pretokenized by Anserini, the way the harness indexed before it ran ``-language``."""
    (out / "in").mkdir(parents=True)
    with open(out / "in" / "docs.jsonl", "w", encoding="utf-8") as lines:
        lines.writelines(json.dumps({"id": doc.doc_id, "contents": analyze(doc.contents, doc.language)}) + "\n" for doc in dataset.docs())
    index_collection(["-collection", "JsonCollection", "-input", str(out / "in"), "-index", str(out / "index"),
                      "-threads", "1", "-pretokenized", "-storeDocvectors", "-quiet"])
    return out / "index"


@pytest.mark.parametrize("lang", ["de", "en", "sw", "th"])
def test_index_equals_analysed_terms(lang: str, tmp_path: Path) -> None:
    """Anserini's ``-language`` indexing gives each document the terms `analyze` gives it: same term
    statistics, same term vectors, same document lengths (every other analyzer: the mixed test)."""
    dataset = TextsDataset(f"synthetic:{lang}", texts=texts_in(lang, 40, seed=len(lang)))
    info = build_system("bm25", {"threads": 2}).index(dataset, tmp_path / "harness")
    assert info["documents"] == len(dataset.texts)
    built = lucene_index_summary(tmp_path / "harness" / "lucene")
    assert built["stats"]["docs"] == len(dataset.texts) and built["stats"]["sum_ttf"] > 0
    assert built == lucene_index_summary(analysed_terms_index(dataset, tmp_path / "reference"))


def test_mixed_languages_index_each_doc_with_its_analyzer(tmp_path: Path) -> None:
    """A collection in every language of the table is one index whose documents have their own
    language's terms, as if each had been analysed on its own."""
    texts = tuple(text for i, lang in enumerate(sorted(LANGUAGES)) for text in texts_in(lang, 3, seed=i))
    dataset = TextsDataset("synthetic:mixed", texts=random.Random(0).sample(texts, len(texts)))
    info = build_system("bm25", {"threads": 2}).index(dataset, tmp_path / "harness")
    assert info["documents"] == len(texts) and not (tmp_path / "harness" / "lucene-parts").exists()
    built = lucene_index_summary(tmp_path / "harness" / "lucene")
    assert built["stats"]["docs"] == len(texts)
    assert built == lucene_index_summary(analysed_terms_index(dataset, tmp_path / "reference"))
    assert analyze("Häuser", "de") in built["freqs"] and analyze("собаки", "ru") in built["freqs"]


def native_index(lines: list[str], out: Path) -> Path:
    """Anserini's own ``-language de`` index of the JSON ``lines`` (one file, one thread)."""
    (out / "in").mkdir(parents=True)
    (out / "in" / "docs.jsonl").write_text("".join(line + "\n" for line in lines), encoding="ascii")
    index_collection(["-collection", "JsonCollection", "-input", str(out / "in"), "-index", str(out / "index"),
                      "-threads", "1", "-language", "de", "-storeDocvectors", "-quiet"])
    return out / "index"


def test_texts_anserini_reads_specially_index_as_natively(tmp_path: Path) -> None:
    """Non-ASCII text (written as UTF-8), a lone surrogate (which UTF-8 cannot hold) and an empty
    document (which Anserini leaves out) give the index Anserini makes of the same documents."""
    texts = (("ein Haus am See", "de"), ("", "de"), ("kaputt \ud800 Häuser", "de"), ("Ärger über Öl", "de"))
    dataset = TextsDataset("synthetic:de", texts=texts)
    info = build_system("bm25", {"threads": 1}).index(dataset, tmp_path / "harness")
    assert info["documents"] == len(texts)
    built = lucene_index_summary(tmp_path / "harness" / "lucene")
    assert built["stats"]["docs"] == len(texts) - 1
    reference = native_index([json.dumps({"id": f"d{i}", "contents": t}) for i, (t, _) in enumerate(texts)], tmp_path / "native")
    assert built == lucene_index_summary(reference)


def test_documents_anserini_loses_are_an_error(tmp_path: Path) -> None:
    """A line Anserini cannot parse stops its file with only a log line; counting what it indexed
    against what was written turns that into an error."""
    lines = [json.dumps({"id": "d0", "contents": "ein Haus"}), '{"id": "d1", "contents": ', json.dumps({"id": "d2", "contents": "am See"})]
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "docs.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(RuntimeError, match=r"did not index all of 3 documents of .*: \d+ indexed"):
        index_collection(["-collection", "JsonCollection", "-input", str(tmp_path / "in"), "-index", str(tmp_path / "index"),
                          "-threads", "1", "-language", "de", "-quiet"], documents=3)
