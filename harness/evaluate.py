"""Evaluation with ir_measures: measure strings in, per-query values out.

Per-query values are the only evaluation output; means are computed from them. Every judged query
gets a value for every measure — a query the run has no results for scores 0, as ``trec_eval -c``.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import ir_measures

from harness.data.base import DataError, Qrels
from harness.files import atomic_write
from harness.runs import Run


@dataclass(frozen=True)
class PerQuery:
    query_id: str
    measure: str
    value: float


def parse_measures(names: list[str]) -> list:
    """ir_measures measure objects for strings like ``nDCG@10``; a bad string is a clear error."""
    measures = []
    for name in names:
        try:
            measures.append(ir_measures.parse_measure(name))
        except (ValueError, NameError, SyntaxError, TypeError, AttributeError) as e:
            raise ValueError(f"unknown measure {name!r} ({e}); examples: RR@10, nDCG@20, R@1000, AP, Judged@20") from None
    return measures


def evaluate(run: Run, qrels: Qrels, measure_names: list[str]) -> list[PerQuery]:
    """Per-query values of each measure over all judged queries."""
    measures = parse_measures(measure_names)
    as_dict = {qid: {doc_id: score for doc_id, score in ranking} for qid, ranking in run.items()}
    values: dict[tuple[str, str], float] = {}
    for m in ir_measures.iter_calc(measures, qrels, as_dict):
        values[(m.query_id, str(m.measure))] = float(m.value)
    return [
        PerQuery(qid, str(measure), values.get((qid, str(measure)), 0.0))
        for qid in sorted(qrels)
        for measure in measures
    ]


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
