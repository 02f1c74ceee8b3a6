"""Evaluation: ir_measures measure strings in, per-query values out.

Per-query values are the only evaluation output; means are computed from them. Every judged query
gets a value for every measure — a query the run has no results for scores 0, as ``trec_eval -c``.

The measures suites use (nDCG, RR, R, P, AP, each with or without a cutoff and ``rel``, and
Judged@k) are computed here at once over a query × rank matrix of relevance grades, which is what
makes evaluation of 1,000-deep runs faster than converting them for pytrec_eval. Their values
equal the providers ir_measures uses for them (pytrec_eval's trec_eval, the msmarco RR and the
judged rate; `tests/core/test_evaluate.py` compares every measure per query). Runs are ranked
with strictly decreasing scores (`harness.runs`), so every provider's tie-breaking sees the
run's own order. Any other measure or parameter, and qrels with negative grades, go through
`ir_measures.iter_calc` unchanged.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import ir_measures
import numpy as np

from harness.data.base import DataError, Qrels
from harness.files import atomic_write
from harness.runs import Run


@dataclass(frozen=True)
class PerQuery:
    query_id: str
    measure: str
    value: float


FAST_PARAMS = {
    "nDCG": {"cutoff": None, "dcg": "log2", "gains": None, "judged_only": False},
    "RR": {"cutoff": None, "rel": 1, "judged_only": False},
    "R": {"cutoff": None, "rel": 1},
    "P": {"cutoff": None, "rel": 1, "judged_only": False},
    "AP": {"cutoff": None, "rel": 1, "judged_only": False},
    "Judged": {"cutoff": None},
}
"""Measures computed by `grade_matrix` arithmetic, with the parameters (and their defaults) that
path supports; any other value of a parameter goes to ir_measures."""


def parse_measures(names: list[str]) -> list:
    """ir_measures measure objects for strings like ``nDCG@10``; a bad string is a clear error."""
    measures = []
    for name in names:
        try:
            measures.append(ir_measures.parse_measure(name))
        except (ValueError, NameError, SyntaxError, TypeError, AttributeError) as e:
            raise ValueError(f"unknown measure {name!r} ({e}); examples: RR@10, nDCG@20, R@1000, AP, Judged@20") from None
    return measures


def _fast(measure) -> dict | None:
    """The measure's parameters with defaults filled in, where the matrix path computes it."""
    supported = FAST_PARAMS.get(measure.NAME)
    if supported is None or set(measure.params) - set(supported):
        return None
    params = {**supported, **measure.params}
    if any(params[k] != v for k, v in supported.items() if k not in ("cutoff", "rel")):
        return None
    cutoff = params["cutoff"]
    if cutoff is not None and (not isinstance(cutoff, int) or cutoff < 1):
        return None
    return params


def grade_matrix(run: Run, qrels: Qrels, qids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(grades, lengths): row i holds the qrels grade of each ranked doc of ``qids[i]`` (NaN for an
    unjudged doc and past the end of the ranking), and the ranking's length."""
    width = max((len(run.get(qid, ())) for qid in qids), default=0)
    grades = np.full((len(qids), max(width, 1)), np.nan)
    lengths = np.zeros(len(qids), dtype=np.int64)
    nan = math.nan
    for i, qid in enumerate(qids):
        ranking = run.get(qid)
        if ranking:
            judged = qrels[qid]
            grades[i, : len(ranking)] = [judged.get(doc_id, nan) for doc_id, _ in ranking]
            lengths[i] = len(ranking)
    return grades, lengths


def _ideal_gains(qrels: Qrels, qids: list[str]) -> np.ndarray:
    """Each query's positive grades in descending order, zero-padded (the ideal ranking's gains)."""
    positive = [sorted((g for g in qrels[qid].values() if g > 0), reverse=True) for qid in qids]
    ideal = np.zeros((len(qids), max((len(p) for p in positive), default=0) + 1))
    for i, gains in enumerate(positive):
        ideal[i, : len(gains)] = gains
    return ideal


def _divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0 (trec_eval's convention)."""
    out = np.zeros_like(numerator, dtype=float)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _matrix_values(name: str, params: dict, grades: np.ndarray, lengths: np.ndarray, qrels: Qrels,
                   qids: list[str]) -> np.ndarray:
    """One measure's value for every query, from the grade matrix."""
    cutoff = params["cutoff"]
    top = grades[:, :cutoff] if cutoff is not None else grades
    ranks = np.arange(1, top.shape[1] + 1)
    if name == "Judged":
        shown = np.minimum(lengths, cutoff) if cutoff is not None else lengths
        return _divide((~np.isnan(top)).sum(axis=1).astype(float), shown)
    if name == "nDCG":
        discount = 1.0 / np.log2(ranks + 1)
        dcg = (np.nan_to_num(top, nan=0.0) * discount).sum(axis=1)
        ideal = _ideal_gains(qrels, qids)
        ideal = ideal[:, :cutoff] if cutoff is not None else ideal
        idcg = (ideal * (1.0 / np.log2(np.arange(2, ideal.shape[1] + 2)))).sum(axis=1)
        return _divide(dcg, idcg)
    relevant = top >= params["rel"]
    if name == "RR":
        first = relevant.argmax(axis=1)
        return np.where(relevant.any(axis=1), 1.0 / (first + 1), 0.0)
    if name == "P":
        return relevant.sum(axis=1) / (cutoff if cutoff is not None else np.maximum(lengths, 1))
    total = np.array([sum(g >= params["rel"] for g in qrels[qid].values()) for qid in qids], dtype=float)
    if name == "R":
        return _divide(relevant.sum(axis=1).astype(float), total)
    precision_at_hits = np.where(relevant, np.cumsum(relevant, axis=1) / ranks, 0.0)
    return _divide(precision_at_hits.sum(axis=1), total)  # AP


def _library_values(measures: list, run: Run, qrels: Qrels) -> dict[tuple[str, str], float]:
    as_dict = {qid: {doc_id: score for doc_id, score in ranking} for qid, ranking in run.items()}
    return {(m.query_id, str(m.measure)): float(m.value) for m in ir_measures.iter_calc(measures, qrels, as_dict)}


def without_identical_ids(run: Run) -> Run:
    """The run without any doc whose id is its query's id (BEIR's ``ignore_identical_ids``: in ArguAna
    a query is itself a document of the corpus)."""
    return {qid: [(doc_id, score) for doc_id, score in ranking if doc_id != qid] for qid, ranking in run.items()}


def evaluate(run: Run, qrels: Qrels, measure_names: list[str]) -> list[PerQuery]:
    """Per-query values of each measure over all judged queries."""
    measures = parse_measures(measure_names)
    qids = sorted(qrels)
    negative = any(g < 0 for judged in qrels.values() for g in judged.values())
    fast = {str(m): _fast(m) for m in measures} if not negative else {}
    values: dict[str, Iterable[float]] = {}
    if any(p is not None for p in fast.values()):
        grades, lengths = grade_matrix(run, qrels, qids)
        for m in measures:
            if fast.get(str(m)) is not None:
                values[str(m)] = _matrix_values(m.NAME, fast[str(m)], grades, lengths, qrels, qids).tolist()
    rest = [m for m in measures if str(m) not in values]
    if rest:
        computed = _library_values(rest, run, qrels)
        for m in rest:
            values[str(m)] = [computed.get((qid, str(m)), 0.0) for qid in qids]
    columns = [values[str(m)] for m in measures]
    return [PerQuery(qid, str(m), float(column[i])) for i, qid in enumerate(qids) for m, column in zip(measures, columns)]
def means(per_query: list[PerQuery]) -> dict[str, float]:
    """Mean of each measure over its per-query values."""
    groups: dict[str, list[float]] = defaultdict(list)
    for pq in per_query:
        groups[pq.measure].append(pq.value)
    return {measure: sum(v) / len(v) for measure, v in groups.items()}


def write_per_query(per_query: list[PerQuery], path: Path) -> None:
    with atomic_write(path, newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(["query_id", "measure", "value"])
        writer.writerows((pq.query_id, pq.measure, repr(pq.value)) for pq in per_query)


def read_per_query(path: Path) -> list[PerQuery]:
    with open(path, encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    if not rows or rows[0] != ["query_id", "measure", "value"]:
        raise DataError(f"{path}:1: expected header query_id<TAB>measure<TAB>value")
    try:
        return [PerQuery(q, m, float(v)) for q, m, v in rows[1:]]
    except ValueError as e:
        raise DataError(f"{path}: malformed per-query row ({e})") from None
