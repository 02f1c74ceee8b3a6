"""Runs: ranked results per query, TREC run files, and deterministic tie-breaking.

Tie-breaking rule (documented and enforced everywhere a run is made or read): results are ordered
by score descending, then by doc id ascending (string order); then each score that is not strictly
below its predecessor is lowered to the next 32-bit float below it. The comparison and the step are
made in 32 bits because trec_eval (pytrec_eval) compares scores as 32-bit floats: a step that
exists only in 64 bits would vanish there and the tie would come back. Other scores keep full
precision. Scores are written with
full precision (``repr``), so every evaluation provider — pytrec_eval, which breaks ties by doc id
descending, and ir_measures' msmarco provider, which breaks them ascending — sees one order.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from harness.data.base import DataError, valid_id
from harness.files import atomic_write

Ranking = list[tuple[str, float]]
Run = dict[str, Ranking]
"""query id → [(doc id, score)] in rank order, scores strictly decreasing."""


def rank(scores: Mapping[str, float] | Iterable[tuple[str, float]], depth: int | None = None) -> Ranking:
    """Order scored docs by the tie-breaking rule, keep ``depth``, make scores strictly decreasing."""
    items = list(scores.items() if isinstance(scores, Mapping) else scores)
    values = np.fromiter((score for _, score in items), dtype=np.float64, count=len(items))
    finite = np.isfinite(values)
    if not finite.all():
        doc_id, score = items[int(np.argmin(finite))]
        raise ValueError(f"score of {doc_id!r} is not finite: {score}")
    items.sort(key=lambda item: (-item[1], item[0]))
    items = items[:depth]
    single = np.fromiter((score for _, score in items), dtype=np.float32, count=len(items))
    if (single[1:] < single[:-1]).all():  # no ties in 32 bits: nothing to lower
        return [(doc_id, float(score)) for doc_id, score in items]
    ranking: Ranking = []
    previous = None
    for doc_id, score in items:
        score, single = float(score), np.float32(score)
        if previous is not None and single >= previous:
            single = np.nextafter(previous, np.float32(-np.inf))
            score = float(single)
        previous = single
        ranking.append((doc_id, score))
    return ranking


def make_run(results: Mapping[str, Mapping[str, float] | Iterable[tuple[str, float]]], depth: int | None = None) -> Run:
    """Apply `rank` to every query's results."""
    return {qid: rank(scored, depth) for qid, scored in results.items()}


def write_trec(run: Run, path: Path, tag: str) -> None:
    """Write ``qid Q0 docid rank score tag`` lines atomically (queries in id order).

    An empty id, or one with whitespace, would shift the columns: it is a `ValueError` and no file
    is written (the loaders refuse such ids already; this is the last line of defence).
    """
    if not tag or any(c.isspace() for c in tag):
        raise ValueError(f"run tag must be one non-empty word, got {tag!r}")
    with atomic_write(path, encoding="utf-8") as f:
        for qid in sorted(run):
            if not valid_id(qid):
                raise ValueError(f"{path}: query id {qid!r} is empty or contains whitespace")
            for position, (doc_id, score) in enumerate(run[qid], 1):
                if not valid_id(doc_id):
                    raise ValueError(f"{path}: doc id {doc_id!r} (query {qid!r}) is empty or contains whitespace")
                f.write(f"{qid} Q0 {doc_id} {position} {score!r} {tag}\n")


def read_trec(path: Path) -> Run:
    """Read a TREC run file; malformed lines, duplicates and broken rank order name the line.

    Files as `write_trec` writes them (each query's lines together, scores strictly decreasing) are
    parsed in one pass by Arrow's CSV reader; any other file, and any file with a problem, goes
    through the line-by-line reader, which ranks it and names the line at fault.
    """
    if not Path(path).is_file():
        raise DataError(f"{path}: run file not found")
    run = _read_ranked_trec(Path(path))
    return run if run is not None else _read_trec_lines(Path(path))


def _read_ranked_trec(path: Path) -> Run | None:
    """The run of a file with single-space-separated columns whose queries' lines are contiguous,
    with no doc twice, and whose scores strictly decrease (in 32 bits) within each query; None for
    any other file. Arrow's CSV reader parses the columns (scores as correctly rounded doubles)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from pyarrow import csv as arrow_csv

    names = ["qid", "q0", "doc", "rank", "score", "tag"]
    try:
        table = arrow_csv.read_csv(
            path,
            read_options=arrow_csv.ReadOptions(column_names=names),
            parse_options=arrow_csv.ParseOptions(delimiter=" ", quote_char=False, escape_char=False),
            convert_options=arrow_csv.ConvertOptions(
                column_types={**dict.fromkeys(names, pa.string()), "score": pa.float64()},
                include_columns=["qid", "doc", "score", "tag"], strings_can_be_null=False),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    if table.num_rows == 0 or any(pc.any(pc.equal(table[c], "")).as_py() for c in ("qid", "doc", "tag")):
        return None
    scores = table["score"].to_numpy()
    if not np.isfinite(scores).all():
        return None
    codes = pc.dictionary_encode(table["qid"]).combine_chunks()
    indices = codes.indices.to_numpy()
    starts = np.flatnonzero(np.r_[True, indices[1:] != indices[:-1]])
    single = scores.astype(np.float32)
    within = np.ones(len(scores), dtype=bool)
    within[starts] = False  # the first line of each query has no predecessor to compare with
    if len(starts) != len(codes.dictionary) or not (single[1:] < single[:-1])[within[1:]].all():
        return None
    qids, docs, values = codes.dictionary.to_pylist(), table["doc"].to_pylist(), scores.tolist()
    run: Run = {}
    for a, b in zip(starts.tolist(), [*starts[1:].tolist(), len(scores)]):
        if len(set(docs[a:b])) != b - a:
            return None  # a doc twice: the line reader names it
        run[qids[indices[a]]] = list(zip(docs[a:b], values[a:b]))
    return run


def _read_trec_lines(path: Path) -> Run:
    """`read_trec` line by line: any order of lines, and an error naming the line at fault."""
    run: Run = {}
    seen: set[tuple[str, str]] = set()
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 6:
                raise DataError(f"{path}:{lineno}: expected 'qid Q0 docid rank score tag', got {line.strip()!r}")
            qid, _, doc_id, _, raw_score, _ = parts
            try:
                score = float(raw_score)
            except ValueError:
                raise DataError(f"{path}:{lineno}: score {raw_score!r} is not a number") from None
            if not math.isfinite(score):
                raise DataError(f"{path}:{lineno}: score {raw_score!r} is not finite")
            if (qid, doc_id) in seen:
                raise DataError(f"{path}:{lineno}: doc {doc_id!r} appears twice for query {qid!r}")
            seen.add((qid, doc_id))
            run.setdefault(qid, []).append((doc_id, score))
    return {qid: rank(ranking) for qid, ranking in run.items()}
