"""`check_dataset_id`: every scheme's id checked without reading data, one line per mistake."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.data import DataError, check_dataset_id, load_dataset

VAR = "HARNESS_TEST_DATA"


@pytest.fixture(autouse=True)
def unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(VAR, raising=False)
    monkeypatch.delenv("HARNESS_XQUAD_DIR", raising=False)


def beir_folder(folder: Path, qrels: str = "qrels/test.tsv") -> Path:
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text(json.dumps({"_id": "d1", "text": "x"}) + "\n")
    (folder / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "x"}) + "\n")
    (folder / qrels).write_text("q1\td1\t1\n")
    return folder


@pytest.mark.parametrize("dataset_id", [
    "synthetic:en?docs=300&queries=10&train=10",
    "synthetic:dt?docs=1000&queries=30&train=90&seed=0",
    "xquad:th",
    "irds:mmarco/v2/dt/dev/small?lang=nl",
    "irds:neuclir/1/multi/trec-2023",
    "irds:mr-tydi/sw/test?qrels_without_queries=drop",
    f"beir:${VAR}/arguana?lang=hi",
    f"clef:2003/multi?root=${VAR}&query_lang=en&doc_langs=de,en,es,fr",
    "union:irds:neuclir/1/fa/trec-2022+irds:neuclir/1/ru/trec-2022",
    "hf:mteb/MIRACLRetrieval?subset=en&split=dev",
    "hf:mteb/IndicQARetrieval?subset=or&split=test&revision=main",
    "hf:AIhnIndicRag/Hindi_Arguana?layout=beir&lang=hi",
    "hf:org/any?lang=fr&corpus=docs&queries=topics&qrels=judgements&corpus_split=all&queries_split=all&split=dev",
])
def test_good_ids_pass(dataset_id: str) -> None:
    check_dataset_id(dataset_id)


@pytest.mark.parametrize("dataset_id, message", [
    ("synth:en", "unknown dataset scheme 'synth'"),
    ("synthetic:en?docs", "options must look like"),
    ("synthetic:en?docs=300&trian=5", r"unknown options \['trian'\]"),
    ("synthetic:en?docs=300&train=x", "option train must be an integer, got 'x'"),
    ("synthetic:en?docs=300&train=1.5", "option train must be an integer"),
    ("synthetic:en?docs=10", "docs must be at least 20, got 10"),
    ("synthetic:en?docs=300&queries=0", "queries must be at least 1"),
    ("synthetic:en?docs=300&queries=10&train=-1", "train must be at least 0"),
    ("synthetic:en?docs=300&queries=30&train=30", r"queries\+train=60, but 300 docs give at most 37 usable topics"),
    ("synthetic:xx?docs=300&queries=10&train=10", "unsupported language 'xx'"),
    ("xquad:ja", "XQuAD has no 'ja'"),
    ("xquad:th?split=test", "xquad takes no options"),
    ("beir:/data/x?lang=hi&spilt=dev", r"unknown options \['spilt'\]"),
    ("beir:/data/x", r"add \?lang="),
    (f"beir:${VAR}/x?lang=xx", "unsupported language 'xx'"),
    (f"beir:${VAR}/x?lang=hi&split=", "split= names the qrels file"),
    ("irds:mmarco/v2/dt/dev/small?lang=qq", "unsupported language 'qq'"),
    ("irds:mmarco/v2/dt/dev/small?query_lang=qq", "unsupported language 'qq'"),
    ("irds:mmarco/v2/dt/dev/small?split=dev", r"unknown options \['split'\]"),
    ("irds:mmarco/v2/dt/dev/smal", "has no dataset 'mmarco/v2/dt/dev/smal'"),
    ("irds:mmarco/v2/dt/dev/small?qrels_without_queries=keep", "qrels_without_queries takes one value, drop"),
    (f"clef:2003/fr?root=${VAR}&feilds=title", r"unknown option\(s\) \['feilds'\]"),
    (f"clef:2003/nl?root=${VAR}", "CLEF 2003 has no Dutch documents"),
    (f"clef:2003/fr?root=${VAR}&fields=body", "fields= takes a comma-separated subset"),
    (f"clef:2003/fr?root=${VAR}&query_lang=qq", "unsupported language 'qq'"),
    (f"clef:1999/fr?root=${VAR}", "CLEF years are 2000-2003"),
    ("clef:2003/fr", r"add \?root="),
    ("union:synthetic:en?docs=300", "at least two dataset ids"),
    ("union:synthetic:en?docs=300&queries=10&train=10+xquad:ja", "XQuAD has no 'ja'"),
    ("hf:mteb/MIRACLRetrieval?subset=en&splitt=dev", r"unknown options \['splitt'\]"),
    ("hf:mteb/MIRACLRetrieval?subset=xx", r"not known from the id; add \?lang="),
    ("hf:org/repo", r"not known from the id; add \?lang="),
    ("hf:org/repo?lang=qq", "unsupported language 'qq'"),
    ("hf:org/repo?lang=en&layout=files", "layout= is one of subsets, beir; got 'files'"),
    ("hf:org/repo?lang=en&layout=beir&subset=en", "subset apply to layout=subsets"),
    ("hf:org/repo?lang=en&split=", "split= must be a non-empty name without spaces"),
    ("hf:org/repo?lang=en&revision=", "revision= must be a non-empty name"),
    ("hf:org/re po?lang=en", "'org/re po' is not a Hugging Face repository id"),
    ("hf:a/b/c?lang=en", "'a/b/c' is not a Hugging Face repository id"),
    ("hf:org/repo?lang=en&qrels_without_queries=keep", "qrels_without_queries takes one value, drop"),
])
def test_bad_ids_are_one_line_errors(dataset_id: str, message: str) -> None:
    with pytest.raises(DataError, match=message) as info:
        check_dataset_id(dataset_id)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("dataset_id", [
    "synthetic:en?docs=300&queries=30&train=30",
    "synthetic:en?docs=300&seed=x",
    "xquad:th?split=test",
    "beir:/data/x?lang=hi&spilt=dev",
    "irds:mmarco/v2/dt/dev/small?split=dev",
    "irds:mmarco/v2/dt/dev/small?qrels_without_queries=keep",
    f"clef:2003/fr?root=${VAR}&fields=body",
    "hf:org/repo?lang=en&layout=beir&corpus=docs",
    "hf:org/repo?subset=zz",
])
def test_the_loader_rejects_what_the_check_rejects(dataset_id: str) -> None:
    """Loader and check parse options with the same function: the same error, word for word."""
    with pytest.raises(DataError) as checked:
        check_dataset_id(dataset_id)
    with pytest.raises(DataError) as loaded:
        load_dataset(dataset_id)
    assert str(loaded.value) == str(checked.value)


def test_beir_folder_and_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DataError, match="is not a directory"):
        check_dataset_id(f"beir:{tmp_path / 'absent'}?lang=hi")
    folder = beir_folder(tmp_path / "f")
    check_dataset_id(f"beir:{folder}?lang=hi")
    with pytest.raises(DataError, match=r"has no qrels/dev\.tsv \(or \.jsonl\)"):
        check_dataset_id(f"beir:{folder}?lang=hi&split=dev")
    (folder / "queries.jsonl").unlink()
    with pytest.raises(DataError, match="has no queries.jsonl"):
        check_dataset_id(f"beir:{folder}?lang=hi")
    check_dataset_id(f"beir:{beir_folder(tmp_path / 'j', 'qrels/dev.jsonl')}?lang=hi&split=dev")
    # a location behind an environment variable is checked once the variable is set
    monkeypatch.setenv(VAR, str(tmp_path / "absent"))
    with pytest.raises(DataError, match="absent/f is not a directory"):
        check_dataset_id(f"beir:${VAR}/f?lang=hi")
    monkeypatch.setenv(VAR, str(tmp_path))
    check_dataset_id(f"beir:${VAR}/j?lang=hi&split=dev")


def test_clef_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DataError, match="root /nonexistent/clef is not a directory"):
        check_dataset_id("clef:2003/fr?root=/nonexistent/clef")
    monkeypatch.setenv(VAR, str(tmp_path / "absent"))
    with pytest.raises(DataError, match="absent is not a directory"):
        check_dataset_id(f"clef:2003/fr?root=${VAR}")
    monkeypatch.setenv(VAR, str(tmp_path))
    check_dataset_id(f"clef:2003/fr?root=${VAR}")  # the files are looked for when the data is loaded


def test_xquad_dir_must_be_a_folder_when_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_XQUAD_DIR", str(tmp_path / "absent"))
    for call in (check_dataset_id, load_dataset):
        with pytest.raises(DataError, match="HARNESS_XQUAD_DIR=.*absent is not a directory"):
            call("xquad:th")

