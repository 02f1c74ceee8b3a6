"""XQuAD as retrieval, from the real files in ../shared/data/xquad, plus lookup order and errors."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

import harness.data.xquad as xquad_mod
from harness.data import DataError, load_dataset
from harness.languages import UnsupportedLanguage
from harness.paths import repo_root

LANGS = ("ar", "de", "el", "en", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh")
SHARED = repo_root().parent / "shared" / "data" / "xquad"


@pytest.fixture(scope="module")
def shared_dir() -> Path:
    missing = [lang for lang in LANGS if not (SHARED / f"xquad.{lang}.json").is_file()]
    if missing:
        pytest.fail(
            f"../shared/data/xquad is required (looked in {SHARED}); missing files for {missing}. "
            "Stage the XQuAD files (google-deepmind/xquad, xquad.<lang>.json) there.",
            pytrace=False,
        )
    return SHARED


@pytest.fixture(scope="module")
def loaded(shared_dir):
    """Every language loaded once, read through ../shared (no override, no download)."""
    mp = pytest.MonkeyPatch()
    mp.delenv("HARNESS_XQUAD_DIR", raising=False)
    try:
        out = {}
        for lang in LANGS:
            ds = load_dataset(f"xquad:{lang}")
            assert ds.path == shared_dir / f"xquad.{lang}.json"
            docs = {d.doc_id: d for d in ds.docs()}
            out[lang] = (ds, docs, ds.queries(), ds.qrels())
        return out
    finally:
        mp.undo()


def raw_answers(path: Path) -> dict[str, list[str]]:
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    return {
        qa["id"]: [a["text"] for a in qa["answers"]]
        for article in data
        for paragraph in article["paragraphs"]
        for qa in paragraph["qas"]
    }


@pytest.mark.parametrize("lang", LANGS)
def test_counts_and_single_relevant_paragraph(loaded, lang):
    ds, docs, queries, qrels = loaded[lang]
    assert len(docs) == 240
    assert len(queries) == 1190
    assert len({q.query_id for q in queries}) == 1190
    assert set(qrels) == {q.query_id for q in queries}
    for qid, judged in qrels.items():
        assert len(judged) == 1, qid
        ((doc_id, rel),) = judged.items()
        assert rel == 1
        assert doc_id in docs
    assert ds.doc_languages == (lang,)
    assert all(d.language == lang for d in docs.values())
    assert all(q.language == lang for q in queries)
    assert all(d.text.strip() for d in docs.values())
    assert all(q.text.strip() for q in queries)


@pytest.mark.parametrize("lang", LANGS)
def test_relevant_paragraph_contains_the_answer(loaded, shared_dir, lang):
    _, docs, queries, qrels = loaded[lang]
    answers = raw_answers(shared_dir / f"xquad.{lang}.json")
    assert set(answers) == {q.query_id for q in queries}
    missing = []
    for q in queries:
        (doc_id,) = qrels[q.query_id]
        if not any(text in docs[doc_id].text for text in answers[q.query_id]):
            missing.append(q.query_id)
    assert not missing, f"{lang}: {len(missing)} questions whose paragraph lacks the answer, e.g. {missing[:3]}"


def test_ids_are_parallel_across_languages(loaded):
    _, en_docs, en_queries, en_qrels = loaded["en"]
    for lang in LANGS:
        _, docs, queries, qrels = loaded[lang]
        assert list(docs) == list(en_docs), lang
        assert [q.query_id for q in queries] == [q.query_id for q in en_queries], lang
        assert qrels == en_qrels, lang
    # the content really is translated
    assert loaded["de"][1]["p00_00"].text != loaded["en"][1]["p00_00"].text
    assert loaded["zh"][2][0].text != loaded["en"][2][0].text


def test_fingerprints_differ_between_languages_and_are_stable(loaded):
    prints = {lang: loaded[lang][0].fingerprint for lang in LANGS}
    assert len(set(prints.values())) == len(LANGS)
    assert load_dataset("xquad:de").fingerprint == prints["de"]


def tiny_squad(lang: str) -> dict:
    return {
        "version": "1.1",
        "data": [
            {
                "title": "T",
                "paragraphs": [
                    {
                        "context": "Paris is the capital of France.",
                        "qas": [
                            {"id": "a1", "question": "What is the capital of France?",
                             "answers": [{"answer_start": 0, "text": "Paris"}]},
                            {"id": "a2", "question": "Paris is the capital of which country?",
                             "answers": [{"answer_start": 24, "text": "France"}]},
                        ],
                    },
                    {
                        "context": "The Rhine flows through Germany.",
                        "qas": [{"id": "b1", "question": "Where does the Rhine flow?",
                                 "answers": [{"answer_start": 24, "text": "Germany"}]}],
                    },
                ],
            },
            {
                "title": "U",
                "paragraphs": [
                    {"context": "Mount Everest is high.",
                     "qas": [{"id": "c1", "question": "Which mountain is high?",
                              "answers": [{"answer_start": 0, "text": "Mount Everest"}]}]},
                ],
            },
        ],
    }


def test_env_dir_is_preferred_over_shared(tmp_path, monkeypatch, shared_dir):
    (tmp_path / "xquad.de.json").write_text(json.dumps(tiny_squad("de")), encoding="utf-8")
    monkeypatch.setenv("HARNESS_XQUAD_DIR", str(tmp_path))
    assert xquad_mod.candidate_dirs()[0] == tmp_path
    ds = load_dataset("xquad:de")
    assert ds.path == tmp_path / "xquad.de.json"
    docs = {d.doc_id: d.text for d in ds.docs()}
    assert docs == {
        "p00_00": "Paris is the capital of France.",
        "p00_01": "The Rhine flows through Germany.",
        "p01_00": "Mount Everest is high.",
    }
    assert [q.query_id for q in ds.queries()] == ["a1", "a2", "b1", "c1"]
    assert ds.qrels() == {"a1": {"p00_00": 1}, "a2": {"p00_00": 1}, "b1": {"p00_01": 1}, "c1": {"p01_00": 1}}
    # a language the override folder lacks still comes from ../shared
    assert load_dataset("xquad:en").path == shared_dir / "xquad.en.json"


def test_not_squad_format(tmp_path, monkeypatch):
    (tmp_path / "xquad.de.json").write_text(json.dumps({"version": "1.1"}), encoding="utf-8")
    monkeypatch.setenv("HARNESS_XQUAD_DIR", str(tmp_path))
    with pytest.raises(DataError, match="not a SQuAD-format file"):
        load_dataset("xquad:de").queries()


@pytest.mark.parametrize("lang", ["fr", "ja", "nl"])
def test_language_outside_xquad(lang):
    with pytest.raises(DataError, match="XQuAD has no"):
        load_dataset(f"xquad:{lang}")


def test_unknown_language():
    with pytest.raises(UnsupportedLanguage):
        load_dataset("xquad:xx")


def test_options_rejected():
    with pytest.raises(DataError, match="takes no options"):
        load_dataset("xquad:de?split=test")


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No staged files anywhere and no network."""
    cache, override, fake_repo = tmp_path / "cache", tmp_path / "override", tmp_path / "repo"
    for d in (cache, override, fake_repo):
        d.mkdir()
    monkeypatch.setenv("HARNESS_CACHE", str(cache))
    monkeypatch.setenv("HARNESS_XQUAD_DIR", str(override))
    monkeypatch.setattr(xquad_mod, "repo_root", lambda: fake_repo)
    calls = []

    def no_network(url, *args, **kwargs):
        calls.append(url)
        raise OSError("network is unreachable (test)")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    assert SHARED not in xquad_mod.candidate_dirs()
    return cache, calls


def test_missing_file_without_network(offline):
    cache, calls = offline
    ds = load_dataset("xquad:de")
    with pytest.raises(DataError) as info:
        ds.queries()
    url = "https://github.com/google-deepmind/xquad/raw/master/xquad.de.json"
    message = str(info.value)
    assert url in message
    assert "network is unreachable" in message
    assert "xquad.de.json" in message
    assert calls == [url]
    assert not (cache / "xquad" / "xquad.de.json").exists()


def test_download_lands_in_cache(offline, monkeypatch):
    cache, _ = offline
    payload = json.dumps(tiny_squad("de")).encode()

    class Response:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self):
            return payload

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: Response())
    ds = load_dataset("xquad:de")
    assert ds.path == cache / "xquad" / "xquad.de.json"
    assert ds.path.read_bytes() == payload
    assert len(ds.queries()) == 4
    assert sorted(p.name for p in (cache / "xquad").iterdir()) == ["xquad.de.json"]


def test_failed_download_leaves_no_partial_file(offline, monkeypatch):
    """A download that breaks mid-read raises DataError and leaves nothing behind in the cache."""
    cache, _ = offline

    class Broken:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self):
            raise OSError("connection reset (test)")

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: Broken())
    with pytest.raises(DataError, match="connection reset"):
        load_dataset("xquad:de").queries()
    assert list((cache / "xquad").iterdir()) == []


# -- strict input (the rules of harness.data.base) --------------------------------------------------


def staged(tmp_path: Path, monkeypatch, content: bytes) -> Path:
    path = tmp_path / "xquad.de.json"
    path.write_bytes(content)
    monkeypatch.setenv("HARNESS_XQUAD_DIR", str(tmp_path))
    return path


def test_byte_order_mark_is_accepted(tmp_path, monkeypatch):
    staged(tmp_path, monkeypatch, b"\xef\xbb\xbf" + json.dumps(tiny_squad("de")).encode())
    assert [q.query_id for q in load_dataset("xquad:de").queries()] == ["a1", "a2", "b1", "c1"]


def test_bytes_that_are_not_utf8_name_the_line(tmp_path, monkeypatch):
    text = json.dumps(tiny_squad("de"), indent=1).encode()
    bad = text.replace(b"Rhine flows", b"Rh\xffne flows", 1)
    path = staged(tmp_path, monkeypatch, bad)
    line = bad[: bad.index(b"\xff")].count(b"\n") + 1
    with pytest.raises(DataError, match=rf"{path}:{line}: not valid UTF-8"):
        load_dataset("xquad:de").queries()


@pytest.mark.parametrize("question, error", [(None, "'question' must be a string, got null"),
                                             ("   ", "query 'a2' has empty text but is judged")])
def test_null_or_empty_question(tmp_path, monkeypatch, question, error):
    data = tiny_squad("de")
    data["data"][0]["paragraphs"][0]["qas"][1]["question"] = question
    path = staged(tmp_path, monkeypatch, json.dumps(data).encode())
    with pytest.raises(DataError, match=rf"{path} paragraph p00_00 question 1: {error}"):
        load_dataset("xquad:de").queries()


def test_question_id_with_whitespace(tmp_path, monkeypatch):
    data = tiny_squad("de")
    data["data"][1]["paragraphs"][0]["qas"][0]["id"] = "c 1"
    path = staged(tmp_path, monkeypatch, json.dumps(data).encode())
    with pytest.raises(DataError, match=rf"{path} paragraph p01_00 question 0: query id 'c 1'"):
        load_dataset("xquad:de").queries()
