"""The ir_datasets loader, offline, on tiny files staged at ir_datasets' own cache paths.

Every check runs in a fresh interpreter with ``IR_DATASETS_HOME`` set and sockets disabled (the
helpers in ``tests/data/irds_fixtures.py`` say why).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.data import DataError, load_dataset
from tests.data.irds_fixtures import downloads_config, run_isolated, stage, tsv

DOCS = [("0", "Amsterdam is de hoofdstad van Nederland."), ("1", "De Rijn stroomt door Duitsland."),
        ("2", "Kaas uit Gouda is beroemd."), ("3", "Fietsen is populair in Utrecht.")]
QUERIES = [("100", "wat is de hoofdstad van nederland"), ("101", "waar stroomt de rijn"),
           ("102", "niet in de kleine dev-set"), ("103", "waar komt kaas vandaan")]
SMALL_QRELS = [("100", "0", 1), ("101", "1", 1), ("103", "2", 1), ("103", "3", 1)]


def stage_mmarco_dutch(home: Path) -> dict[str, Path]:
    return stage(home, "mmarco", {
        "v2/dt/docs": tsv(DOCS),
        "v2/dt/queries/dev": tsv(QUERIES),
        "dev/qrels-small": "".join(f"{q} 0 {d} {r}\n" for q, d, r in SMALL_QRELS),
    })


def test_staging_paths_follow_downloads_json(tmp_path):
    paths = stage_mmarco_dutch(tmp_path)
    assert paths["v2/dt/docs"] == tmp_path / "mmarco" / "v2" / "dutch_collection.tsv"
    assert paths["v2/dt/queries/dev"] == tmp_path / "mmarco" / "v2" / "dutch.queries.dev.tsv"
    assert paths["dev/qrels-small"] == tmp_path / "mmarco" / "qrels.dev.small.tsv"
    german = downloads_config()["mmarco"]["v2/de/docs"]["cache_path"]
    assert german == "v2/german_collection.tsv"


@pytest.fixture(scope="module")
def mmarco_nl(tmp_path_factory):
    home = tmp_path_factory.mktemp("irds_home")
    stage_mmarco_dutch(home)
    result = run_isolated(home, """
        import ir_datasets
        ds = load_dataset("irds:mmarco/v2/dt/dev/small")
        again = load_dataset("irds:mmarco/v2/dt/dev/small")
        nl = load_dataset("irds:mmarco/v2/dt/dev/small?lang=nl&query_lang=en")
        print(json.dumps({
            "home": str(ir_datasets.util.home_path()),
            "doc_languages": list(ds.doc_languages),
            "query_language": ds.query_language,
            "docs": [[d.doc_id, d.text, d.title, d.language] for d in ds.docs()],
            "queries": [[q.query_id, q.text, q.language] for q in ds.queries()],
            "qrels": ds.qrels(),
            "fingerprint": ds.fingerprint,
            "fingerprint_again": again.fingerprint,
            "describe": ds.describe(),
            "override": [list(nl.doc_languages), nl.query_language, [q.language for q in nl.queries()]],
        }, ensure_ascii=False))
    """)
    return home, result


def test_uses_the_staged_home(mmarco_nl):
    home, result = mmarco_nl
    assert Path(result["home"]) == home


def test_mmarco_dutch_docs(mmarco_nl):
    _, result = mmarco_nl
    assert result["docs"] == [[doc_id, text, "", "nl"] for doc_id, text in DOCS]


def test_mmarco_dutch_is_nl(mmarco_nl):
    _, result = mmarco_nl
    assert result["doc_languages"] == ["nl"]
    assert result["query_language"] == "nl"


def test_mmarco_small_queries_only(mmarco_nl):
    _, result = mmarco_nl
    # query 102 is in the dev queries file but not in the small qrels: it is filtered out
    assert result["queries"] == [[qid, text, "nl"] for qid, text in QUERIES if qid != "102"]


def test_mmarco_qrels(mmarco_nl):
    _, result = mmarco_nl
    assert result["qrels"] == {"100": {"0": 1}, "101": {"1": 1}, "103": {"2": 1, "3": 1}}


def test_mmarco_fingerprint_and_describe(mmarco_nl):
    _, result = mmarco_nl
    assert result["fingerprint"] == result["fingerprint_again"]
    assert len(result["fingerprint"]) == 16
    assert result["describe"] == {
        "id": "irds:mmarco/v2/dt/dev/small",
        "fingerprint": result["fingerprint"],
        "doc_languages": ["nl"],
        "queries": 3,
        "empty_queries": 0,
        "judgements": 4,
        "relevant": 4,
        "docs": 4,  # counted: the fixture read the documents before describe()
        "empty_docs": 0,
    }


def test_language_options_override(mmarco_nl):
    _, result = mmarco_nl
    assert result["override"] == [["nl"], "en", ["en", "en", "en"]]


def test_fingerprint_follows_staged_qrels(tmp_path):
    stage_mmarco_dutch(tmp_path / "a")
    stage_mmarco_dutch(tmp_path / "b")
    stage(tmp_path / "b", "mmarco", {"dev/qrels-small": "100 0 0 1\n101 0 1 1\n103 0 2 1\n"})
    body = """
        print(json.dumps({"fp": load_dataset("irds:mmarco/v2/dt/dev/small").fingerprint}))
    """
    assert run_isolated(tmp_path / "a", body)["fp"] != run_isolated(tmp_path / "b", body)["fp"]


def test_unknown_irds_id(tmp_path):
    result = run_isolated(tmp_path, """
        ds = load_dataset("irds:no-such-collection/v9/test")
        try:
            ds.queries()
        except DataError as e:
            print(json.dumps({"error": str(e)}))
        else:
            print(json.dumps({"error": None}))
    """)
    assert result["error"] is not None
    assert "no-such-collection/v9/test" in result["error"]
    assert "ir_datasets has no dataset" in result["error"]


def test_unstaged_file_fails_fast_without_network(tmp_path):
    """The isolation works: a file that is not staged fails at once (sockets are disabled)."""
    stage(tmp_path, "mmarco", {"v2/dt/docs": tsv(DOCS), "v2/dt/queries/dev": tsv(QUERIES)})
    result = run_isolated(tmp_path, """
        try:
            load_dataset("irds:mmarco/v2/dt/dev/small").qrels()
        except Exception as e:
            print(json.dumps({"error": f"{type(e).__name__}: {e}"}))
        else:
            print(json.dumps({"error": None}))
    """, timeout=30, expect_download_attempt=True)
    assert result["error"] is not None
    assert "qrels.dev.small.tsv" in result["error"]
    assert "network disabled in this test" in result["error"]


def test_unknown_option():
    with pytest.raises(DataError, match="unknown options"):
        load_dataset("irds:mmarco/v2/dt/dev/small?split=dev")


def test_qrels_naming_an_unknown_doc_and_conflicting_grades(tmp_path):
    stage_mmarco_dutch(tmp_path / "unknown")
    stage(tmp_path / "unknown", "mmarco", {"dev/qrels-small": "100 0 0 1\n101 0 1 1\n103 0 9 1\n"})
    stage_mmarco_dutch(tmp_path / "twice")
    stage(tmp_path / "twice", "mmarco", {"dev/qrels-small": "100 0 0 1\n101 0 1 1\n100 0 0 1\n100 0 0 2\n"})
    body = """
        ds = load_dataset("irds:mmarco/v2/dt/dev/small")
        out = {}
        for name, action in [("qrels", ds.qrels), ("docs", lambda: list(ds.docs()))]:
            try:
                action()
                out[name] = None
            except DataError as e:
                out[name] = str(e)
        print(json.dumps(out))
    """
    unknown = run_isolated(tmp_path / "unknown", body)
    assert unknown["qrels"] is None  # the documents are not read for the qrels alone
    assert unknown["docs"].startswith("mmarco/v2/dt/dev/small qrel #2: qrels judge doc '9' (query '103')")
    twice = run_isolated(tmp_path / "twice", body)
    assert twice["qrels"].startswith("mmarco/v2/dt/dev/small qrel #3: query '100' judges doc '0' 2, but an earlier")


def test_documents_not_in_utf8_name_file_and_line(tmp_path):
    path = stage_mmarco_dutch(tmp_path)["v2/dt/docs"]
    path.write_bytes(path.read_bytes().replace(b"Kaas", b"K\xffas"))
    result = run_isolated(tmp_path, """
        try:
            list(load_dataset("irds:mmarco/v2/dt/dev/small").docs())
            print(json.dumps({"error": None}))
        except DataError as e:
            print(json.dumps({"error": str(e)}))
    """)
    assert result["error"] == f"{path}:3: not valid UTF-8 (bytes {bytes([0xff])!r})"
