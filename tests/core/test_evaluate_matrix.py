"""The grade-matrix measures equal ir_measures' own providers per query, on runs with every edge."""

from __future__ import annotations

import random

import ir_measures
import pytest

from harness.evaluate import FAST_PARAMS, _fast, evaluate, parse_measures
from harness.runs import make_run

MEASURES = [
    "nDCG@10", "nDCG@20", "nDCG", "RR@10", "RR@100", "RR", "RR(rel=2)@10", "R@10", "R@100", "R@1000",
    "R(rel=2)@100", "P@5", "P(rel=2)@10", "AP", "AP@100", "AP(rel=2)", "Judged@20", "Judged@10",
]


def graded_collection(seed: int, queries: int = 300, depth: int = 120) -> tuple[dict, dict]:
    """Runs and graded qrels with the edges: unjudged and missing queries, empty rankings, queries with
    no relevant document, short rankings, judged docs outside the run, many relevant ones."""
    rng = random.Random(seed)
    qrels: dict[str, dict[str, int]] = {}
    results: dict[str, dict[str, float]] = {}
    for q in range(queries):
        qid = f"q{q}"
        pool = [f"d{rng.randrange(2000)}" for _ in range(depth * 2)]
        judged = rng.sample(pool, rng.randint(1, 40))
        qrels[qid] = {d: rng.choice([0, 0, 1, 2, 3]) for d in judged}
        if q % 17 == 0:
            qrels[qid] = {d: 0 for d in judged}  # no relevant document
        if q % 23 == 0:
            continue  # judged but not in the run: scores 0
        n = 0 if q % 29 == 0 else rng.choice([3, 15, depth])
        docs = list(dict.fromkeys(rng.sample(pool, min(n, len(set(pool))))))
        results[qid] = {d: rng.random() for d in docs}
    results["unjudged"] = {"d1": 1.0}
    return make_run(results), qrels


def library(run, qrels, names: list[str]) -> dict[tuple[str, str], float]:
    """ir_measures' own values, the run handed over as a dict like any user would. Empty rankings are
    left out: ir_measures' Judged divides by zero on them (the matrix path scores them 0)."""
    as_dict = {qid: dict(ranking) for qid, ranking in run.items() if ranking}
    return {(m.query_id, str(m.measure)): m.value for m in ir_measures.iter_calc(parse_measures(names), qrels, as_dict)}


@pytest.mark.parametrize("seed", [0, 1])
def test_matrix_measures_equal_ir_measures_per_query(seed):
    run, qrels = graded_collection(seed)
    assert all(_fast(m) is not None for m in parse_measures(MEASURES))  # all go through the matrix
    expected = library(run, qrels, MEASURES)
    got = evaluate(run, qrels, MEASURES)
    assert len(got) == len(qrels) * len(MEASURES)
    assert sum(pq.value > 0 for pq in got) > len(got) // 5  # not a comparison of zeros
    for pq in got:
        assert pq.value == pytest.approx(expected.get((pq.query_id, pq.measure), 0.0), abs=1e-12), pq


def test_every_fast_measure_kind_is_compared():
    assert {m.NAME for m in parse_measures(MEASURES)} == set(FAST_PARAMS)


@pytest.mark.parametrize("name", ["nDCG(judged_only=True)@10", "AP(judged_only=True)", "Rprec", "Success@10"])
def test_other_measures_and_parameters_go_to_ir_measures(name):
    run, qrels = graded_collection(2, queries=60)
    (measure,) = parse_measures([name])
    assert _fast(measure) is None
    expected = library(run, qrels, [name])
    for pq in evaluate(run, qrels, [name, "nDCG@10"]):
        if pq.measure == name:
            assert pq.value == pytest.approx(expected.get((pq.query_id, name), 0.0), abs=1e-12)


def test_negative_grades_go_to_ir_measures():
    run, qrels = graded_collection(3, queries=60)
    first = next(iter(qrels))
    qrels[first] = {**qrels[first], **{doc: -1 for doc, _ in run.get(first, [])[:3]}}
    expected = library(run, qrels, ["nDCG@10", "R@100"])
    for pq in evaluate(run, qrels, ["nDCG@10", "R@100"]):
        assert pq.value == pytest.approx(expected.get((pq.query_id, pq.measure), 0.0), abs=1e-12)
