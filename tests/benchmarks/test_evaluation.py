"""Evaluation against pytrec_eval alone and ir_measures, side by side on one run (issue 13).

`BENCH_QUERIES` scales it (6980 × 1,000 hits is mMARCO dev); by default it is small enough for every
test run. Run with ``--benchmark-enable -s`` to see the timings and ratios.
"""

from __future__ import annotations

import os
import random
import statistics
import time

import ir_measures
import pytest
import pytrec_eval

from harness.evaluate import evaluate
from harness.runs import make_run, read_trec, write_trec

QUERIES = int(os.environ.get("BENCH_QUERIES", "400"))
DEPTH = 1000
MEASURES = ["RR@10", "R@100", "R@1000"]
TREC_EVAL = {"R@100": "recall_100", "R@1000": "recall_1000"}


@pytest.fixture(scope="module")
def collection():
    rng = random.Random(0)
    qrels = {f"q{q}": {f"d{rng.randrange(10**6)}": 1 for _ in range(rng.randint(1, 3))} for q in range(QUERIES)}
    results = {}
    for qid, judged in qrels.items():
        scores = {f"d{rng.randrange(10**6)}": rng.random() for _ in range(DEPTH)}
        scores.update({doc: rng.random() for doc in judged if rng.random() < 0.6})
        results[qid] = scores
    return make_run(results, DEPTH), qrels


def pytrec_eval_alone(run, qrels):
    """What a user of pytrec_eval does: the run as a dict of dicts, then one evaluator call."""
    as_dict = {qid: dict(ranking) for qid, ranking in run.items()}
    return pytrec_eval.RelevanceEvaluator(qrels, {"recall.100,1000", "recip_rank"}).evaluate(as_dict)


def ir_measures_calc(run, qrels):
    as_dict = {qid: dict(ranking) for qid, ranking in run.items()}
    return list(ir_measures.iter_calc([ir_measures.parse_measure(m) for m in MEASURES], qrels, as_dict))


def test_evaluation_against_pytrec_eval_and_ir_measures(benchmark, collection):
    run, qrels = collection
    per_query = benchmark(evaluate, run, qrels, MEASURES)
    reference = pytrec_eval_alone(run, qrels)
    got = {(pq.query_id, pq.measure): pq.value for pq in per_query}
    for qid, values in reference.items():
        for measure, name in TREC_EVAL.items():
            assert got[(qid, measure)] == pytest.approx(values[name], abs=1e-12)
    for m in ir_measures_calc(run, qrels):
        assert got[(m.query_id, str(m.measure))] == pytest.approx(m.value, abs=1e-12)
    ratios = {"pytrec_eval": [], "ir_measures": []}
    for _ in range(3):  # interleaved: harness, pytrec_eval, harness, ir_measures
        for name, reference_fn in (("pytrec_eval", pytrec_eval_alone), ("ir_measures", ir_measures_calc)):
            start = time.perf_counter()
            evaluate(run, qrels, MEASURES)
            ours = time.perf_counter() - start
            start = time.perf_counter()
            reference_fn(run, qrels)
            ratios[name].append(ours / (time.perf_counter() - start))
    print(f"\nevaluation of {QUERIES} queries × {DEPTH} hits, {', '.join(MEASURES)}: harness / reference, "
          + ", ".join(f"{name} {statistics.median(r):.2f}" for name, r in ratios.items()))


def test_run_file_evaluation_against_pytrec_eval(benchmark, collection, tmp_path):
    """The evaluate job's work — read the TREC run file, evaluate — against pytrec_eval's own reader."""
    run, qrels = collection
    path = tmp_path / "run.trec"
    write_trec(run, path, "bench")

    def ours():
        return evaluate(read_trec(path), qrels, MEASURES)

    def reference():
        with open(path, encoding="utf-8") as f:
            as_dict = pytrec_eval.parse_run(f)
        return pytrec_eval.RelevanceEvaluator(qrels, {"recall.100,1000", "recip_rank"}).evaluate(as_dict)

    per_query = benchmark(ours)
    expected = reference()
    got = {(pq.query_id, pq.measure): pq.value for pq in per_query}
    for qid, values in expected.items():
        for measure, name in TREC_EVAL.items():
            assert got[(qid, measure)] == pytest.approx(values[name], abs=1e-12)
    ratios = []
    for _ in range(3):
        start = time.perf_counter()
        ours()
        mine = time.perf_counter() - start
        start = time.perf_counter()
        reference()
        ratios.append(mine / (time.perf_counter() - start))
    print(f"\nrun file → measures, {QUERIES} queries × {DEPTH} hits: harness / pytrec_eval {statistics.median(ratios):.2f}")
