"""The ``hf:`` loader on repositories staged in the real Hugging Face cache layout (`tests.data.hf_fixtures`):
huggingface_hub resolves the snapshot and ``datasets.load_dataset`` reads the rows, offline."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.data import DataError, check_dataset_id, load_dataset
from harness.data import hf as hf_module
from tests.data.hf_fixtures import CORPUS, TOY, commit_of, jsonl, mteb_files, parquet, readme, stage
from tests.helpers import REPO

REPO_ID = "test-org/Toy"


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty hub cache under ``$HF_HOME``; datasets' own cache beside it."""
    import datasets

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf" / "datasets"))
    return tmp_path / "hf" / "hub"


def summary(dataset) -> dict:
    docs = list(dataset.docs())
    return {"docs": [(d.doc_id, d.title, d.text, d.language) for d in docs],
            "queries": [(q.query_id, q.text, q.language) for q in dataset.queries()],
            "qrels": dataset.qrels()}


def test_mteb_subsets_are_read_through_datasets(hub: Path) -> None:
    fr = {"corpus": [{"id": "f1", "title": "", "text": "un document"}], "queries": [{"id": "fq", "text": "un?"}],
          "qrels": [{"query-id": "fq", "corpus-id": "f1", "score": 1}]}
    commit = commit_of("toy")
    stage(hub, REPO_ID, mteb_files({"en": TOY, "fr": fr}, "dev"), commit)
    dataset = load_dataset(f"hf:{REPO_ID}?subset=en&split=dev")
    got = summary(dataset)
    assert got["docs"] == [("d1", "Alpha", "the first document", "en"), ("d2", "", "the second document", "en"),
                           ("d3", "", "the third document", "en")]
    assert got["queries"] == [("q1", "first?", "en"), ("q2", "second?", "en")]  # judged queries only
    assert got["qrels"] == {"q1": {"d1": 1}, "q2": {"d2": 2, "d3": 0}}
    described = dataset.describe()
    assert described["source"] == {"repo": REPO_ID, "revision": "main", "commit": commit, "pinned": False}
    assert described["docs"] == 3 and described["doc_languages"] == ["en"]
    french = load_dataset(f"hf:{REPO_ID}?subset=fr&split=dev")
    assert summary(french)["docs"] == [("f1", "", "un document", "fr")]
    assert french.fingerprint != dataset.fingerprint


def test_beir_on_the_hub_subsets_and_their_own_splits(hub: Path) -> None:
    """corpus / queries / default subsets with splits corpus / queries / test, ``_id`` columns, numeric ids."""
    files = {
        "corpus/corpus.parquet": parquet([{"_id": 7, "title": "T", "text": "seven"}, {"_id": 8, "title": "", "text": "eight"}]),
        "queries/queries.parquet": parquet([{"_id": 1, "text": "which?"}]),
        "qrels/test.parquet": parquet([{"query-id": 1, "corpus-id": 8, "score": 1.0}]),
        "README.md": readme({"default": {"test": "qrels/test.parquet"}, "corpus": {"corpus": "corpus/*.parquet"},
                             "queries": {"queries": "queries/*.parquet"}}),
    }
    stage(hub, REPO_ID, files, commit_of("beir-subsets"))
    got = summary(load_dataset(f"hf:{REPO_ID}?lang=hi"))
    assert got["docs"] == [("7", "T", "seven", "hi"), ("8", "", "eight", "hi")]
    assert got["qrels"] == {"1": {"8": 1}}


def test_a_pinned_commit_is_read_whatever_main_says(hub: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pinned, later = commit_of("pinned"), commit_of("later")
    stage(hub, REPO_ID, mteb_files({"en": TOY}, "dev"), pinned, ref=None)
    changed = {**TOY, "corpus": [*CORPUS, {"id": "d4", "title": "", "text": "added later"}]}
    stage(hub, REPO_ID, mteb_files({"en": changed}, "dev"), later)
    dataset_id = f"hf:{REPO_ID}?subset=en&split=dev"
    assert len(list(load_dataset(dataset_id).docs())) == 4  # main
    monkeypatch.setitem(hf_module.PINS, REPO_ID, hf_module.Pin(pinned, "a test"))
    dataset = load_dataset(dataset_id)
    assert len(list(dataset.docs())) == 3
    assert dataset.describe()["source"] == {"repo": REPO_ID, "revision": pinned, "commit": pinned, "pinned": True}
    override = load_dataset(f"{dataset_id}&revision={later}")
    assert override.describe()["source"]["pinned"] is False and len(list(override.docs())) == 4
    assert override.fingerprint != dataset.fingerprint


def test_the_fingerprint_covers_commit_and_file_contents(hub: Path) -> None:
    dataset_id = f"hf:{REPO_ID}?subset=en&split=dev"
    stage(hub, REPO_ID, mteb_files({"en": TOY}, "dev"), commit_of("one"))
    first = load_dataset(dataset_id).fingerprint
    assert load_dataset(dataset_id).fingerprint == first  # stable
    stage(hub, REPO_ID, mteb_files({"en": TOY}, "dev"), commit_of("two"))  # same files, another commit
    assert load_dataset(dataset_id).fingerprint != first
    # a cache holding copies, not links to blobs: the files' own hashes
    copies = mteb_files({"en": TOY}, "dev")
    stage(hub, REPO_ID, copies, commit_of("copies"), link=False)
    copied = load_dataset(dataset_id).fingerprint
    other = {**TOY, "qrels": [{"query-id": "q1", "corpus-id": "d1", "score": 2}]}
    stage(hub, REPO_ID, mteb_files({"en": other}, "dev"), commit_of("copies"), link=False)
    assert load_dataset(dataset_id).fingerprint != copied


def test_beir_files_in_a_repository(hub: Path) -> None:
    """Hindi-BEIR's layout: corpus.jsonl, queries.jsonl, qrels/test.jsonl (or .tsv), read as a BEIR folder."""
    corpus = jsonl([{"_id": "d1", "title": "शीर्षक", "text": "पहला"}, {"_id": "d2", "title": None, "text": "दूसरा"}])
    queries = jsonl([{"_id": "q1", "text": "कौन?"}])
    stage(hub, "AIhnIndicRag/Hindi_Toy", {"corpus.jsonl": corpus, "queries.jsonl": queries, "README.md": "# card\n",
                                          "qrels/test.jsonl": jsonl([{"query-id": "q1", "corpus-id": "d2", "score": 1}])},
          commit_of("jsonl"))
    dataset = load_dataset("hf:AIhnIndicRag/Hindi_Toy?layout=beir&lang=hi")
    assert summary(dataset) == {"docs": [("d1", "शीर्षक", "पहला", "hi"), ("d2", "", "दूसरा", "hi")],
                                "queries": [("q1", "कौन?", "hi")], "qrels": {"q1": {"d2": 1}}}
    assert dataset.describe()["source"]["commit"] == commit_of("jsonl")
    stage(hub, "AIhnIndicRag/Hindi_Tsv", {"corpus.jsonl": corpus, "queries.jsonl": queries,
                                          "qrels/test.tsv": "query-id\tcorpus-id\tscore\nq1\td1\t1\n"}, commit_of("tsv"))
    assert load_dataset("hf:AIhnIndicRag/Hindi_Tsv?layout=beir&lang=hi").qrels() == {"q1": {"d1": 1}}


def test_bad_files_name_their_line_or_row(hub: Path) -> None:
    stage(hub, "org/Broken", {"corpus.jsonl": '{"_id": "d1", "text": "x"}\n{"_id": "d2", "text": nope}\n',
                              "queries.jsonl": jsonl([{"_id": "q1", "text": "x"}]), "qrels/test.tsv": "q1\td1\t1\n"},
          commit_of("broken"))
    with pytest.raises(DataError, match=r"snapshots/[0-9a-f]{40}/corpus\.jsonl:2: invalid JSON"):
        list(load_dataset("hf:org/Broken?layout=beir&lang=en").docs())
    bad = {**TOY, "corpus": [{"id": "d1", "title": "", "text": None}]}
    stage(hub, REPO_ID, mteb_files({"en": bad}, "dev"), commit_of("null"))
    with pytest.raises(DataError, match=r"test-org/Toy@[0-9a-f]{12} en-corpus/dev row 0: 'text' must be a string, got null"):
        list(load_dataset(f"hf:{REPO_ID}?subset=en&split=dev").docs())
    nocol = {**TOY, "queries": [{"qid": "q1", "text": "x"}]}
    stage(hub, REPO_ID, mteb_files({"en": nocol}, "dev"), commit_of("nocol"))
    with pytest.raises(DataError, match=r"en-queries/dev row 0: no column '_id' or 'id' \(have \['qid', 'text'\]\)"):
        load_dataset(f"hf:{REPO_ID}?subset=en&split=dev").queries()


@pytest.mark.parametrize("dataset_id, message", [
    (f"hf:{REPO_ID}?subset=de&split=dev",
     r"has no subset 'de-corpus' for the corpus \(\?corpus= names it\); its subsets: en-corpus, en-qrels, en-queries"),
    (f"hf:{REPO_ID}?subset=en&split=test",
     r"subset 'en-qrels' of test-org/Toy has no split 'test' \(\?split=\); its splits: dev"),
    (f"hf:{REPO_ID}?subset=en&split=dev&corpus_split=train", r"has no split 'train' \(\?corpus_split=\)"),
    (f"hf:{REPO_ID}?lang=en&split=dev", r"has no subset 'corpus'"),
    (f"hf:{REPO_ID}?subset=en&split=dev&revision={commit_of('absent')}",
     r"cannot get test-org/Toy@[0-9a-f]{40} from the Hub or its cache .*HF_HUB_OFFLINE"),
    ("hf:org/Absent?lang=en", r"cannot get org/Absent@main from the Hub"),
    (f"hf:{REPO_ID}?layout=beir&lang=en", r"has no corpus.jsonl"),
])
def test_mistakes_found_when_reading_are_one_line(hub: Path, dataset_id: str, message: str) -> None:
    stage(hub, REPO_ID, mteb_files({"en": TOY}, "dev"), commit_of("toy"))
    with pytest.raises(DataError, match=message) as info:
        list(load_dataset(dataset_id).docs())
    assert "\n" not in str(info.value)


def test_files_not_fetched_are_a_clear_error_offline(hub: Path) -> None:
    """A snapshot holding one subset only (what an earlier run fetched): the other subset's files are missing."""
    files = mteb_files({"en": TOY, "fr": TOY}, "dev")
    stage(hub, REPO_ID, {k: v for k, v in files.items() if not k.startswith("fr-")}, commit_of("partial"))
    with pytest.raises(DataError, match=r"no file of subset 'fr-corpus' split 'dev' \(fr-corpus/dev-\*\) in .*; "
                                        r"offline, only what was fetched"):
        load_dataset(f"hf:{REPO_ID}?subset=fr&split=dev").fingerprint  # noqa: B018


def test_no_readme_or_no_configs(hub: Path) -> None:
    stage(hub, "org/NoCard", {"corpus.jsonl": jsonl([{"_id": "d", "text": "x"}])}, commit_of("nocard"))
    with pytest.raises(DataError, match="has no README.md, whose configs: declare the subsets; .* takes \\?layout=beir"):
        load_dataset("hf:org/NoCard?lang=en").queries()
    stage(hub, "org/PlainCard", {"README.md": "# no configs\n"}, commit_of("plain"))
    with pytest.raises(DataError, match=r"declares no subsets \(configs:\)"):
        load_dataset("hf:org/PlainCard?lang=en").queries()


# --- the shipped suites' ids, on fixtures at the repositories' real paths and pinned commits ---------------


def suite_ids(name: str) -> dict[str, str]:
    """Dataset name → id of a shipped suite (its first language filled in where templated)."""
    suite = yaml.safe_load((REPO / "suites" / f"{name}.yaml").read_text(encoding="utf-8"))
    return {d["name"]: d["id"] for d in suite["datasets"]}


def test_the_indicqa_suite_reads_mteb_indicqa_at_its_pin(hub: Path) -> None:
    pin = hf_module.PINS["mteb/IndicQARetrieval"].commit
    assamese = {"corpus": [{"id": "c1", "title": "", "text": "অসমীয়া ভাষা"}], "queries": [{"id": "a1", "text": "কি?"}],
                "qrels": [{"query-id": "a1", "corpus-id": "c1", "score": 1}]}
    stage(hub, "mteb/IndicQARetrieval", mteb_files({"as": assamese, "hi": TOY}, "test"), pin, ref=None)
    dataset = load_dataset(suite_ids("indicqa")["indicqa"].format(lang="as"))
    assert summary(dataset)["docs"] == [("c1", "", "অসমীয়া ভাষা", "as")]
    assert dataset.describe()["source"] == {"repo": "mteb/IndicQARetrieval", "revision": pin, "commit": pin,
                                            "pinned": True}


def test_the_hindi_beir_suite_reads_its_repositories(hub: Path) -> None:
    pin = hf_module.PINS["AIhnIndicRag/Hindi_Arguana"].commit
    stage(hub, "AIhnIndicRag/Hindi_Arguana", {
        "corpus.jsonl": jsonl([{"_id": "a", "title": "", "text": "तर्क"}]), "queries.jsonl": jsonl([{"_id": "a", "text": "तर्क"}]),
        "qrels/test.jsonl": jsonl([{"query-id": "a", "corpus-id": "a", "score": 1}])}, pin, ref=None)
    ids = suite_ids("hindi-beir")
    assert summary(load_dataset(ids["arguana"]))["qrels"] == {"a": {"a": 1}}
    assert all(i.startswith("hf:") for i in ids.values())
    for dataset_id in ids.values():
        check_dataset_id(dataset_id)


def test_a_json_qrels_score_column_may_be_text(hub: Path) -> None:
    """Qrels grades given as strings ("1") or floats (1.0) are integers; 1.5 is not."""
    rows = [{"query-id": "q1", "corpus-id": "d1", "score": "1"}]
    stage(hub, REPO_ID, mteb_files({"en": {**TOY, "qrels": rows}}, "dev"), commit_of("textscore"))
    assert load_dataset(f"hf:{REPO_ID}?subset=en&split=dev").qrels() == {"q1": {"d1": 1}}
    rows = [{"query-id": "q1", "corpus-id": "d1", "score": 1.5}]
    stage(hub, REPO_ID, mteb_files({"en": {**TOY, "qrels": rows}}, "dev"), commit_of("halfscore"))
    with pytest.raises(DataError, match=r"en-qrels/dev row 0: relevance must be an integer, got 1.5"):
        load_dataset(f"hf:{REPO_ID}?subset=en&split=dev").qrels()



def test_hf_hub_cache_takes_precedence_over_hf_home(hub: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """huggingface_hub's own rule: ``$HF_HUB_CACHE``, else ``$HF_HOME/hub``."""
    stage(hub, REPO_ID, mteb_files({"en": TOY}, "dev"), commit_of("home"))
    other = tmp_path / "elsewhere"
    bigger = {**TOY, "corpus": [*CORPUS, {"id": "d4", "title": "", "text": "only here"}]}
    stage(other, REPO_ID, mteb_files({"en": bigger}, "dev"), commit_of("elsewhere"))
    dataset_id = f"hf:{REPO_ID}?subset=en&split=dev"
    assert len(list(load_dataset(dataset_id).docs())) == 3
    monkeypatch.setenv("HF_HUB_CACHE", str(other))
    dataset = load_dataset(dataset_id)
    assert len(list(dataset.docs())) == 4 and dataset.describe()["source"]["commit"] == commit_of("elsewhere")
