"""The ir_datasets loader on the suites' collections (Mr. TyDi, NeuCLIR), offline.

Tiny files are staged where ir_datasets looks for them, in the formats its code reads, and every
check runs in a fresh interpreter with ``IR_DATASETS_HOME`` set and sockets disabled (the helpers
in ``tests/data/irds_fixtures.py``).

- NeuCLIR: every file has a ``cache_path`` in ``etc/downloads.json``; a file there is used as is.
  Docs are ``docs.jsonl.gz`` per language, topics are JSON lines per year, the 2022 qrels are one
  TREC file (the language in the iteration column), the 2023 qrels one ``.tar.gz`` with a member per
  language (``qrels.final.gains.rus``) and one for the multilingual task (``qrels.final.gains``).
- Mr. TyDi: its archives have no ``cache_path``. ir_datasets downloads ``mrtydi-v1.0-<name>.tar.gz``
  (or takes a copy at ``$IR_DATASETS_HOME/downloads/<md5>``, which it md5-verifies, so a staged
  fake is refused: `test_mrtydi_archive_copy_is_md5_verified`) and extracts all of it to
  ``mr-tydi/<lang>.data/``; when that folder exists it is used without looking at the archive. So
  the test builds the ``.tar.gz`` with the inner paths ir_datasets reads and extracts it there.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import tarfile
import uuid
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

import pytest

from harness.data import DataError, check_dataset_id
from harness.data.irds import DOC_PARTS, QUERY_LANGUAGES, QUERY_SOURCES, IrDataset, _lookup, _title_and_text
from harness.languages import language
from tests.data.irds_fixtures import downloads_config, run_isolated, stage, tsv


def jsonl_gz(rows: list[dict]) -> bytes:
    return gzip.compress("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8"))


def tar_gz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


# --- Mr. TyDi -------------------------------------------------------------------------------------

MRTYDI = {
    "sw": {
        "docs": [("12#0", "Nairobi", "Nairobi ni mji mkuu wa Kenya."),
                 ("12#1", "Nairobi", "Mto Nairobi unapita katikati ya mji."),
                 ("40#0", "Kilimanjaro", "Kilimanjaro ni mlima mrefu zaidi barani Afrika.")],
        "queries": [("7", "Mji mkuu wa Kenya ni upi?"), ("8", "Mlima mrefu zaidi Afrika ni upi?"),
                    ("9", "Swali lisilo na hukumu")],
        "qrels": [("7", "12#0"), ("8", "40#0")],
    },
    "th": {
        "docs": [("3#0", "กรุงเทพมหานคร", "กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทย"),
                 ("5#0", "แม่น้ำเจ้าพระยา", "แม่น้ำเจ้าพระยาไหลผ่านกรุงเทพมหานคร")],
        "queries": [("30", "เมืองหลวงของประเทศไทยคืออะไร"), ("31", "แม่น้ำสายใดไหลผ่านกรุงเทพ")],
        "qrels": [("30", "3#0"), ("31", "5#0"), ("31", "3#0")],
    },
}


def mrtydi_archive(lang: str) -> tuple[str, bytes]:
    """(archive folder name, the ``.tar.gz``) with the members ir_datasets reads for the test split."""
    url = downloads_config()["mr-tydi"][lang]["url"]
    folder = PurePosixPath(urlparse(url).path).name.removesuffix(".tar.gz")  # mrtydi-v1.0-swahili
    data = MRTYDI[lang]
    return folder, tar_gz({
        # Mr. TyDi's collection lines have id, title and contents; ir_datasets reads id and contents
        f"{folder}/collection/docs.jsonl.gz": jsonl_gz(
            [{"id": d, "title": t, "contents": f"{t}\n{body}"} for d, t, body in data["docs"]]),
        f"{folder}/topic.test.tsv": tsv(data["queries"]).encode("utf-8"),
        f"{folder}/qrels.test.txt": "".join(f"{q} Q0 {d} 1\n" for q, d in data["qrels"]).encode("utf-8"),
    })


def stage_mrtydi(home: Path, lang: str) -> Path:
    """Extract the archive where ir_datasets' ``TarExtractAll`` does: ``mr-tydi/<lang>.data``."""
    folder, archive = mrtydi_archive(lang)
    target = home / "mr-tydi" / f"{lang}.data"
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r|gz") as tar:
        tar.extractall(target, filter="data")
    return target / folder


MRTYDI_LANGS = ["ar", "bn", "en", "fi", "id", "ja", "ko", "ru", "sw", "te", "th"]


@pytest.fixture(scope="module")
def mrtydi(tmp_path_factory):
    home = tmp_path_factory.mktemp("irds_mrtydi")
    for lang in MRTYDI:
        stage_mrtydi(home, lang)
    return run_isolated(home, f"""
        out = {{"staged": {{}}, "declared": {{}}}}
        for lang in {sorted(MRTYDI)!r}:
            ds = load_dataset(f"irds:mr-tydi/{{lang}}/test")
            out["staged"][lang] = {{
                "doc_languages": list(ds.doc_languages),
                "query_language": ds.query_language,
                "docs": [[d.doc_id, d.text, d.title, d.language] for d in ds.docs()],
                "queries": [[q.query_id, q.text, q.language] for q in ds.queries()],
                "qrels": ds.qrels(),
                "describe": ds.describe(),
            }}
        for lang in {MRTYDI_LANGS!r}:  # languages only: nothing is read but ir_datasets' declarations
            ds = load_dataset(f"irds:mr-tydi/{{lang}}/test")
            out["declared"][lang] = [list(ds.doc_languages), ds.query_language,
                                     ds.handle.docs_lang(), ds.handle.queries_lang()]
        print(json.dumps(out, ensure_ascii=False))
    """)


@pytest.mark.parametrize("lang", sorted(MRTYDI))
def test_mrtydi_staged_docs_queries_qrels(mrtydi, lang):
    got = mrtydi["staged"][lang]
    data = MRTYDI[lang]
    # GenericDoc has no title: the whole "contents" field is the text
    assert got["docs"] == [[d, f"{t}\n{body}", "", lang] for d, t, body in data["docs"]]
    judged = {q for q, _ in data["qrels"]}
    assert got["queries"] == [[q, text, lang] for q, text in data["queries"] if q in judged]
    expected: dict = {}
    for q, d in data["qrels"]:
        expected.setdefault(q, {})[d] = 1
    assert got["qrels"] == expected
    assert got["doc_languages"] == [lang] and got["query_language"] == lang
    assert got["describe"]["queries"] == len(judged)
    assert "query_source" not in got["describe"] and "doc_sources" not in got["describe"]


def test_mrtydi_all_eleven_languages_are_known(mrtydi):
    for lang in MRTYDI_LANGS:
        docs, query, declared_docs, declared_queries = mrtydi["declared"][lang]
        assert declared_docs == declared_queries == lang  # ir_datasets declares the ISO code itself
        assert docs == [lang] and query == lang
        _ = language(lang).lucene_analyzer  # the table has a row (and an analyzer) for it


def test_mrtydi_archive_copy_is_md5_verified(tmp_path):
    """Why the extracted folder is staged, not the archive: ir_datasets checks the archive's md5."""
    _, archive = mrtydi_archive("sw")
    md5 = downloads_config()["mr-tydi"]["sw"]["expected_md5"]
    (tmp_path / "downloads").mkdir()
    (tmp_path / "downloads" / md5).write_bytes(archive)
    result = run_isolated(tmp_path, """
        import ir_datasets
        from ir_datasets.util.download import LocalDownload
        from ir_datasets.util.hash import HashStream, HashVerificationError
        dl = ir_datasets.util.DownloadConfig.context("mr-tydi", ir_datasets.util.home_path() / "mr-tydi")["sw"]
        local = [str(m.path()) for m in dl.mirrors if isinstance(m, LocalDownload)]
        try:
            with open(local[0], "rb") as f:
                HashStream(f, dl.expected_md5).read()
            verified = None
        except HashVerificationError as e:
            verified = str(e)
        try:
            load_dataset("irds:mr-tydi/sw/test").qrels()
            error = None
        except DataError as e:
            error = str(e)
        print(json.dumps({"local": local, "verified": verified, "error": error}))
    """, timeout=30, expect_download_attempt=True)
    assert result["local"] == [str(tmp_path / "downloads" / md5)]
    assert result["verified"] and md5 in result["verified"]
    assert result["error"] and "network disabled in this test" in result["error"]
    assert not (tmp_path / "mr-tydi" / "sw.data").exists()


# --- NeuCLIR --------------------------------------------------------------------------------------

LANG3 = {"fa": "fas", "ru": "rus", "zh": "zho"}


def doc_id(lang: str, n: int) -> str:
    """NeuCLIR doc ids are UUIDs: nothing in them says the language."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"neuclir-{lang}-{n}"))


NEUCLIR_DOCS = {
    "fa": [("تهران", "تهران پایتخت ایران است."), ("", "سندی بدون عنوان درباره اقتصاد."),
           ("زعفران", "زعفران در خراسان کشت می‌شود.")],
    "ru": [("Москва", "Москва — столица России."), ("Волга", "Волга впадает в Каспийское море.")],
    "zh": [("北京", "北京是中国的首都。"), ("长江", "长江是中国最长的河流。")],
}


def neuclir_doc_rows(lang: str) -> list[dict]:
    return [{"id": doc_id(lang, n), "title": title, "text": text, "url": f"https://example.org/{lang}/{n}",
             "time": "2021-05-01", "cc_file": "crawl-data/CC-NEWS/2021/05/x.warc.gz"}
            for n, (title, text) in enumerate(NEUCLIR_DOCS[lang])]


def topic_line(topic_id: str, title: str, year: int) -> dict:
    """A topics.jsonl line with the fields ir_datasets' ExctractedCCQueries reads.

    Human translations are there in both years: the per-language query classes read them (2023: title
    and description only), so without them ir_datasets would fail rather than yield no queries.
    """
    topics = [{"lang": "eng", "source": "original", "topic_title": title,
               "topic_description": f"Documents about {title.lower()}.", "topic_narrative": "Any detail is relevant."}]
    for lang3 in LANG3.values():
        mt = {"lang": lang3, "source": "machine translation", "topic_title": f"[{lang3}] {title}",
              "topic_description": f"[{lang3}] description", "topic_narrative": f"[{lang3}] narrative"}
        topics.append(mt)
        ht = {"lang": lang3, "source": "human translation", "topic_title": f"<{lang3}> {title}",
              "topic_description": f"<{lang3}> description"}
        if year == 2022:
            ht["topic_narrative"] = f"<{lang3}> narrative"
        topics.append(ht)
    return {"topic_id": topic_id, "topics": topics, "languages_with_qrels": list(LANG3.values())}


TOPICS_2022 = {"1": "Tehran air pollution", "2": "Saffron harvest", "3": "Volga shipping", "4": "Yangtze floods"}
QRELS_2022 = [("1", "fa", 0, 3), ("1", "fa", 1, 0), ("2", "fa", 2, 1), ("3", "ru", 1, 3), ("4", "zh", 1, 1)]
TOPICS_2023 = {"200": "Capital cities", "201": "River ecology", "202": "Moscow metro",
               "203": "Beijing opera", "204": "A topic nobody judged"}
QRELS_2023 = [("200", "fa", 0, 3), ("200", "ru", 0, 1), ("200", "zh", 0, 3), ("201", "ru", 1, 1),
              ("201", "zh", 1, 3), ("202", "ru", 0, 3), ("203", "zh", 0, 1)]


def qrels_text(rows, iteration) -> bytes:
    return "".join(f"{q} {iteration(lang)} {doc_id(lang, n)} {rel}\n" for q, lang, n, rel in rows).encode()


def stage_neuclir(home: Path) -> None:
    files = {f"1/{lang}/docs": jsonl_gz(neuclir_doc_rows(lang)) for lang in NEUCLIR_DOCS}
    files["trec-2022/queries"] = "".join(
        json.dumps(topic_line(t, title, 2022)) + "\n" for t, title in TOPICS_2022.items()).encode()
    files["trec-2022/qrels"] = qrels_text(QRELS_2022, lambda lang: LANG3[lang])  # language in the iteration column
    files["trec-2023/queries"] = "".join(
        json.dumps(topic_line(t, title, 2023)) + "\n" for t, title in TOPICS_2023.items()).encode()
    members = {"qrels.final.gains": qrels_text(QRELS_2023, lambda lang: "0")}
    for lang, lang3 in LANG3.items():
        members[f"qrels.final.gains.{lang3}"] = qrels_text([r for r in QRELS_2023 if r[1] == lang], lambda _: "0")
    files["trec-2023/qrels"] = tar_gz(members)
    stage(home, "neuclir", files)


@pytest.fixture(scope="module")
def neuclir(tmp_path_factory):
    home = tmp_path_factory.mktemp("irds_neuclir")
    stage_neuclir(home)
    return run_isolated(home, """
        import ir_datasets

        def dump(dataset_id):
            ds = load_dataset(dataset_id)
            return {
                "doc_languages": list(ds.doc_languages),
                "query_language": ds.query_language,
                "docs": [[d.doc_id, d.title, d.text, d.language, d.contents] for d in ds.docs()],
                "queries": [[q.query_id, q.text, q.language] for q in ds.queries()],
                "qrels": ds.qrels(),
                "fingerprint": ds.fingerprint,
                "describe": ds.describe(),
            }

        out = {name: dump(f"irds:neuclir/1/{name}") for name in ["fa/trec-2022", "ru/trec-2023", "multi/trec-2023",
                                                                 "fa/trec-2022?fields=title",
                                                                 "fa/trec-2022?fields=narrative,title",
                                                                 "ru/trec-2023?fields=default"]}
        try:
            load_dataset("irds:neuclir/1/fa/trec-2022?fields=title,bogus").queries()
            out["bad_field"] = None
        except DataError as e:
            out["bad_field"] = str(e)
        own = ir_datasets.load("neuclir/1/ru/trec-2023")
        out["irds_ru_2023"] = {
            "queries": [q.query_id for q in own.queries_iter()],
            "qrels": sorted({q.query_id for q in own.qrels_iter()}),
            "qids_2022_ru": sorted({q.query_id for q in ir_datasets.load("neuclir/1/ru/trec-2022").qrels_iter()}),
        }
        multi = ir_datasets.load("neuclir/1/multi/trec-2023")
        out["irds_multi"] = {
            "docs_lang": multi.docs_lang(), "queries_lang": multi.queries_lang(),
            "doc_ids": [d.doc_id for d in multi.docs_iter()],
            "queries": [q.query_id for q in multi.queries_iter()],
        }
        import harness.data.irds as irds_loader
        table, irds_loader.QUERY_SOURCES = irds_loader.QUERY_SOURCES, ()
        try:
            load_dataset("irds:neuclir/1/ru/trec-2023").queries()
            out["without_workaround"] = None
        except DataError as e:
            out["without_workaround"] = str(e)
        irds_loader.QUERY_SOURCES = table
        try:
            load_dataset("irds:neuclir/1/multi/trec-2023?lang=fa").doc_languages
            out["multi_lang_option"] = None
        except DataError as e:
            out["multi_lang_option"] = str(e)
        print(json.dumps(out, ensure_ascii=False))
    """)


def title_description(title: str) -> str:
    """The fixture topic's title and description, as MTD's NeuCLIR queries."""
    return f"{title} Documents about {title.lower()}."


def test_neuclir_fa_2022_english_queries_over_persian_docs(neuclir):
    got = neuclir["fa/trec-2022"]
    assert got["doc_languages"] == ["fa"] and got["query_language"] == "en"
    assert got["queries"] == [["1", title_description("Tehran air pollution"), "en"],
                              ["2", title_description("Saffron harvest"), "en"]]
    assert got["describe"]["query_fields"] == ["title", "description"]
    assert got["qrels"] == {"1": {doc_id("fa", 0): 3, doc_id("fa", 1): 0}, "2": {doc_id("fa", 2): 1}}
    assert "query_source" not in got["describe"] and "doc_sources" not in got["describe"]


def test_neuclir_query_fields_are_a_dataset_option(neuclir):
    """Default: title + description (MTD's queries; `QUERY_FIELDS`); ``?fields=`` picks others, in its
    order; ``?fields=default`` is ir_datasets' default_text() (the title); each is its own fingerprint."""
    titles = neuclir["fa/trec-2022?fields=title"]
    assert titles["queries"] == [["1", "Tehran air pollution", "en"], ["2", "Saffron harvest", "en"]]
    assert neuclir["fa/trec-2022?fields=narrative,title"]["queries"][0] == \
        ["1", "Any detail is relevant. Tehran air pollution", "en"]
    assert [q[1] for q in neuclir["ru/trec-2023?fields=default"]["queries"]] == \
        ["Capital cities", "River ecology", "Moscow metro"]
    assert "query_fields" not in neuclir["ru/trec-2023?fields=default"]["describe"]
    prints = {neuclir[k]["fingerprint"] for k in ("fa/trec-2022", "fa/trec-2022?fields=title",
                                                  "fa/trec-2022?fields=narrative,title")}
    assert len(prints) == 3
    assert "no text field bogus" in neuclir["bad_field"] and "description" in neuclir["bad_field"]


@pytest.mark.parametrize(("dataset_id", "message"), [
    ("irds:neuclir/1/fa/trec-2022?fields=title,bogus", "queries have no text field bogus; they have title, description"),
    ("irds:neuclir/1/zh/trec-2023?fields=ht_narrative", "'neuclir/1/multi/trec-2023' queries have no text field ht"),
    ("irds:mmarco/v2/dt/dev/small?fields=title", "queries have no text field title; they have text"),
    ("irds:neuclir/1/fa/trec-2022?fields=title,,x", "expected distinct query field names"),
    ("irds:neuclir/1/fa/trec-2022?fields=title,title", "expected distinct query field names"),
    ("irds:neuclir/1/fa/trec-2022?fields=query_id", "no text field query_id"),
])
def test_query_fields_are_checked_before_any_download(dataset_id: str, message: str) -> None:
    with pytest.raises(DataError, match=re.escape(message)):
        check_dataset_id(dataset_id)
    check_dataset_id(dataset_id.split("?")[0] + "?fields=title" if "mmarco" not in dataset_id else
                     dataset_id.split("?")[0] + "?fields=text")


def test_neuclir_docs_keep_title_and_text(neuclir):
    docs = neuclir["fa/trec-2022"]["docs"]
    expected = [[doc_id("fa", n), title, text, "fa", f"{title}\n{text}" if title else text]
                for n, (title, text) in enumerate(NEUCLIR_DOCS["fa"])]
    assert docs == expected  # the untitled doc's text has no leading space from default_text()


def test_ir_datasets_itself_yields_no_ru_2023_queries(neuclir):
    own = neuclir["irds_ru_2023"]
    assert own["queries"] == []  # ir_datasets issue #292 ...
    assert own["qrels"] == ["200", "201", "202"]
    # ... because it keeps the 2023 topics whose ids are in the 2022 qrels, and the years share none
    assert own["qids_2022_ru"] == ["3"]


def test_without_the_query_source_row_ru_2023_fails(neuclir):
    assert "qrels mention 3 queries that are not in the queries" in neuclir["without_workaround"]


def test_neuclir_ru_2023_queries_come_from_multi_topics(neuclir):
    got = neuclir["ru/trec-2023"]
    assert got["queries"] == [["200", title_description("Capital cities"), "en"],
                              ["201", title_description("River ecology"), "en"],
                              ["202", title_description("Moscow metro"), "en"]]
    assert got["qrels"] == {"200": {doc_id("ru", 0): 1}, "201": {doc_id("ru", 1): 1}, "202": {doc_id("ru", 0): 3}}
    assert got["doc_languages"] == ["ru"]
    assert got["describe"]["query_source"] == "neuclir/1/multi/trec-2023"
    assert got["describe"]["queries"] == 3
    # the multi topics hold 203 and 204 too; they are not this dataset's (no Russian judgements)
    assert neuclir["irds_multi"]["queries"] == list(TOPICS_2023)


def test_neuclir_multi_2023_docs_in_three_languages(neuclir):
    got = neuclir["multi/trec-2023"]
    own = neuclir["irds_multi"]
    assert own["docs_lang"] is None and own["queries_lang"] is None  # what ir_datasets declares
    assert got["doc_languages"] == ["zh", "fa", "ru"] and got["query_language"] == "en"
    expected = [[doc_id(lang, n), lang] for lang in ["zh", "fa", "ru"] for n in range(len(NEUCLIR_DOCS[lang]))]
    assert [[d[0], d[3]] for d in got["docs"]] == expected
    assert [d[0] for d in got["docs"]] == own["doc_ids"]  # the same documents, in ir_datasets' order
    assert got["describe"]["doc_sources"] == {"neuclir/1/zh": "zh", "neuclir/1/fa": "fa", "neuclir/1/ru": "ru"}
    assert "query_source" not in got["describe"]
    assert [q[0] for q in got["queries"]] == ["200", "201", "202", "203"]  # 204 has no judgements
    assert got["qrels"]["200"] == {doc_id("fa", 0): 3, doc_id("ru", 0): 1, doc_id("zh", 0): 3}


def test_neuclir_multi_refuses_one_language(neuclir):
    assert "carry their own languages" in neuclir["multi_lang_option"]


def test_neuclir_fingerprints_differ(neuclir):
    prints = {neuclir[name]["fingerprint"] for name in ["fa/trec-2022", "ru/trec-2023", "multi/trec-2023"]}
    assert len(prints) == 3


# --- the tables themselves (no ir_datasets needed) ------------------------------------------------


@pytest.mark.parametrize("lang", ["fa", "ru", "zh"])
def test_query_source_table(lang):
    assert IrDataset("x", irds_id=f"neuclir/1/{lang}/trec-2023").query_source == "neuclir/1/multi/trec-2023"
    assert IrDataset("x", irds_id=f"neuclir/1/{lang}/trec-2022").query_source == f"neuclir/1/{lang}/trec-2022"
    assert IrDataset("x", irds_id="neuclir/1/multi/trec-2023").query_source == "neuclir/1/multi/trec-2023"


def test_tables_match_whole_ids_only():
    assert _lookup(QUERY_SOURCES, "neuclir/1/ru/trec-2023/extra") == (None, None)
    assert _lookup(DOC_PARTS, "neuclir/1/multi")[0].parts == ("neuclir/1/zh", "neuclir/1/fa", "neuclir/1/ru")
    assert _lookup(DOC_PARTS, "neuclir/1/fa/trec-2022") == (None, None)
    assert _lookup(QUERY_LANGUAGES, "neuclir/1/fa/trec-2022")[0].language == "en"
    assert _lookup(QUERY_LANGUAGES, "mr-tydi/sw/test") == (None, None)
    for table in (QUERY_SOURCES, QUERY_LANGUAGES, DOC_PARTS):
        assert all(row.reason for row in table)


def test_title_is_split_from_default_text():
    class TitledBody:  # a record whose default_text() is title + body, with no text field
        title = "Title"
        def default_text(self):
            return "Title  the body"

    class Plain:  # GenericDoc-like
        text = "just text"
        def default_text(self):
            return self.text

    assert _title_and_text(TitledBody()) == ("Title", "the body")
    assert _title_and_text(Plain()) == ("", "just text")
