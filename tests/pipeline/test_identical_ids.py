"""`ignore_identical_ids`: evaluation without a retrieved doc whose id is the query's (BEIR, MTEB)."""

from __future__ import annotations

import json
from pathlib import Path

from harness import jobs, layout, steps
from harness.evaluate import read_per_query
from harness.runs import read_trec
from harness.spec import load_suite
from tests.helpers import write_suite

SUITE = """\
name: self
depth: 10
measures: [RR@10, nDCG@10]
datasets:
  - {{name: args, id: "beir:{folder}?lang=en", {flag}}}
systems:
  bm25:
    system: bm25
"""


def arguana_like(folder: Path) -> None:
    """Queries that are documents of the corpus too (as in ArguAna): each query's own text ranks first,
    and its relevant counter-argument second."""
    (folder / "qrels").mkdir(parents=True)
    topics = ["solar panels roofs energy", "school uniforms pupils", "nuclear power plants safety"]
    docs, queries, qrels = [], [], ["query-id\tcorpus-id\tscore"]
    for n, topic in enumerate(topics):
        docs.append({"_id": f"a{n}", "title": "", "text": topic})
        docs.append({"_id": f"c{n}", "title": "", "text": f"{topic.split()[0]} {topic.split()[1]} counter"})
        queries.append({"_id": f"a{n}", "text": topic})
        qrels.append(f"a{n}\tc{n}\t1")
    docs += [{"_id": f"x{n}", "title": "", "text": f"unrelated filler text {n}"} for n in range(20)]
    (folder / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (folder / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (folder / "qrels" / "test.tsv").write_text("\n".join(qrels) + "\n")


def evaluated(workdir: Path, flag: str) -> tuple[dict[str, float], dict]:
    write_suite(workdir, "self", SUITE.format(folder=workdir / "args", flag=flag))
    suite = load_suite("self")
    unit = suite.unit("args", "all")
    steps.index(suite, "bm25", unit)
    steps.retrieve(suite, "bm25", unit)
    record = steps.evaluate_run(suite, "bm25", unit)
    per_query = read_per_query(record.path / record.data["outputs"]["per_query"])
    run = read_trec(layout.run_file("self", "bm25", unit))
    assert all(ranking[0][0] == qid for qid, ranking in run.items())  # the run keeps the query's own doc
    return {pq.query_id: pq.value for pq in per_query if pq.measure == "RR@10"}, jobs.eval_settings(suite, "bm25", unit)


def test_identical_ids_are_dropped_only_where_the_dataset_says(workdir):
    arguana_like(workdir / "args")
    kept, settings_kept = evaluated(workdir, "")
    dropped, settings_dropped = evaluated(workdir, "ignore_identical_ids: true")
    assert kept == {"a0": 0.5, "a1": 0.5, "a2": 0.5}  # the counter-argument second, behind the query itself
    assert dropped == {"a0": 1.0, "a1": 1.0, "a2": 1.0}
    assert settings_dropped == {**settings_kept, "ignore_identical_ids": True}  # results made without it go stale
