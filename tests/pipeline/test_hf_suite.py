"""A suite over ``hf:`` ids runs through Snakemake offline, from repositories staged in the Hugging Face cache."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from harness import layout
from harness.spec import load_suite
from tests.data.hf_fixtures import commit_of, jsonl, mteb_files, stage
from tests.helpers import snakemake, write_suite

SUITE = """\
name: hftiny
depth: 10
measures: [nDCG@10]
datasets:
  - name: indic
    id: "hf:test-org/IndicToy?subset={lang}&split=test"
    languages: [gu]
  - {name: hindi, id: "hf:test-org/Hindi_Toy?layout=beir&lang=hi", languages: [hi]}
systems:
  bm25:
    system: bm25
"""

TAMIL = {"corpus": [{"id": "t1", "title": "", "text": "தமிழ் மொழிகளில் ஒன்று"},
                    {"id": "t2", "title": "", "text": "பூனை தூங்குகிறது"}],
         "queries": [{"id": "tq", "text": "மொழி"}], "qrels": [{"query-id": "tq", "corpus-id": "t1", "score": 1}]}
GUJARATI = {"corpus": [{"id": "g1", "title": "", "text": "બિલાડી સૂઈ રહી છે"},
                       {"id": "g2", "title": "ભાષા", "text": "ગુજરાતી ભાષા સુંદર છે"}],
            "queries": [{"id": "gq", "text": "ભાષા"}], "qrels": [{"query-id": "gq", "corpus-id": "g2", "score": 1}]}


@pytest.mark.slow
def test_a_suite_of_hf_ids_runs_offline(workdir: Path) -> None:
    hub = workdir / "hf" / "hub"
    stage(hub, "test-org/IndicToy", mteb_files({"ta": TAMIL, "gu": GUJARATI}, "test"), commit_of("indic"))
    stage(hub, "test-org/Hindi_Toy", {"corpus.jsonl": jsonl([{"_id": "h1", "text": "हिंदी भाषा"},
                                                             {"_id": "h2", "text": "बिल्ली सोती है"}]),
                                      "queries.jsonl": jsonl([{"_id": "hq", "text": "भाषा"}]),
                                      "qrels/test.tsv": "query-id\tcorpus-id\tscore\nhq\th1\t1\n"}, commit_of("hindi"))
    write_suite(workdir, "hftiny", SUITE)
    snakemake(workdir, "suites/hftiny", env={"HF_HOME": str(workdir / "hf"), "HF_HUB_OFFLINE": "1",
                                             "HF_DATASETS_OFFLINE": "1"})
    table = pd.read_csv(workdir / "results/hftiny/tables/effectiveness.csv")
    row = table[table.system == "bm25"].iloc[0]
    assert (row["indic/gu"], row["hindi/hi"]) == (1.0, 1.0)  # the judged document first, in each language
    index = layout.pointed(layout.path("index", "hftiny", "bm25", load_suite("hftiny").unit("indic", "gu")))
    source = index.data["dataset"]["source"]
    assert source == {"repo": "test-org/IndicToy", "revision": "main", "commit": commit_of("indic"), "pinned": False}
    assert json.loads((workdir / "suites" / "hftiny").read_text())["suite"] == "hftiny"
