"""Runs (tie-breaking, TREC files) and evaluation (ir_measures providers, per-query values)."""

from __future__ import annotations

import itertools
import math
import random
import re
import struct

import ir_measures
import numpy as np
import pytest
from ir_measures import AP, RR, R, nDCG

from harness.data import DataError
from harness.evaluate import PerQuery, evaluate, means, parse_measures, read_per_query, write_per_query
from harness.runs import _read_ranked_trec, _read_trec_lines, make_run, rank, read_trec, write_trec


def bits(x: float) -> bytes:
    return struct.pack("<d", x)


# -- rank ------------------------------------------------------------------------------------


def test_rank_orders_by_score_then_doc_id():
    ranking = rank({"b": 1.0, "c": 3.0, "a": 1.0, "d": 2.0, "aa": 1.0})
    assert [d for d, _ in ranking] == ["c", "d", "a", "aa", "b"]


def test_rank_makes_scores_strictly_decreasing():
    ranking = rank({"b": 1.0, "a": 1.0, "c": 1.0, "z": 5.0, "y": 0.5})
    assert [d for d, _ in ranking] == ["z", "a", "b", "c", "y"]
    scores = [s for _, s in ranking]
    assert all(x > y for x, y in itertools.pairwise(scores))
    # the first of a tie keeps its score, the others move down by one float step each
    assert dict(ranking)["z"] == 5.0
    assert dict(ranking)["a"] == 1.0
    assert dict(ranking)["b"] == float(np.nextafter(np.float32(1.0), np.float32(-np.inf)))  # a 32-bit step
    step = np.nextafter(np.float32(1.0), np.float32(-np.inf))
    assert dict(ranking)["c"] == float(np.nextafter(step, np.float32(-np.inf)))
    assert dict(ranking)["y"] == 0.5


def test_rank_is_independent_of_input_order():
    items = [(f"d{i}", float(i % 3)) for i in range(30)]
    shuffled = items[:]
    random.Random(1).shuffle(shuffled)
    assert rank(items) == rank(shuffled) == rank(dict(shuffled))


def test_rank_doc_id_order_is_string_order():
    ranking = rank({"d10": 1.0, "d9": 1.0, "d100": 1.0})
    assert [d for d, _ in ranking] == ["d10", "d100", "d9"]


def test_rank_depth_and_ints():
    ranking = rank([("a", 3), ("b", 2), ("c", 1)], depth=2)
    assert ranking == [("a", 3.0), ("b", 2.0)]
    assert all(isinstance(s, float) for _, s in ranking)
    assert rank({}) == []


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_rank_rejects_non_finite(bad):
    with pytest.raises(ValueError, match="not finite"):
        rank({"a": 1.0, "b": bad})


def test_make_run_applies_rank_per_query():
    run = make_run({"q1": {"x": 1.0, "y": 1.0}, "q2": [("a", 0.1), ("b", 0.9)]}, depth=1)
    assert run == {"q1": [("x", 1.0)], "q2": [("b", 0.9)]}


# -- TREC files ------------------------------------------------------------------------------


@pytest.fixture
def sample_run():
    rng = random.Random(7)
    results = {}
    for q in range(12):
        scores = {f"doc{d}": rng.choice([rng.random() * 30 - 10, 1.0, 0.1 + 0.2, 1e-300, -2.5]) for d in range(40)}
        results[f"q{q}"] = scores
    return make_run(results)


def test_trec_round_trip_is_exact(tmp_path, sample_run):
    path = tmp_path / "sub" / "run.trec"
    write_trec(sample_run, path, "tag-1")
    back = read_trec(path)
    assert back == sample_run
    for qid, ranking in sample_run.items():
        assert [d for d, _ in back[qid]] == [d for d, _ in ranking]
        assert [bits(s) for _, s in back[qid]] == [bits(s) for _, s in ranking]
    # no temporary files left next to the run
    assert [p.name for p in path.parent.iterdir()] == ["run.trec"]


def test_trec_file_format(tmp_path):
    run = make_run({"q2": {"a": 0.5}, "q10": {"b": 2.0, "c": 1.0}})
    path = tmp_path / "run.trec"
    write_trec(run, path, "bm25")
    lines = path.read_text().splitlines()
    # queries in id order, ranks from 1, repr scores
    assert lines == [
        "q10 Q0 b 1 2.0 bm25",
        "q10 Q0 c 2 1.0 bm25",
        "q2 Q0 a 1 0.5 bm25",
    ]


@pytest.mark.parametrize("tag", ["", "two words", "tab\tbed"])
def test_write_trec_rejects_bad_tags(tmp_path, tag):
    with pytest.raises(ValueError, match="tag"):
        write_trec({"q": [("d", 1.0)]}, tmp_path / "run", tag)


@pytest.mark.parametrize("run, what", [
    ({"q1": [("d 1", 1.0)]}, "doc id 'd 1'"),
    ({"q1": [("ok", 2.0), ("", 1.0)]}, "doc id ''"),
    ({"q1": [("d1\t", 1.0)]}, "doc id 'd1\\t'"),
    ({"q 1": [("d1", 1.0)]}, "query id 'q 1'"),
    ({"": [("d1", 1.0)]}, "query id ''"),
])
def test_write_trec_refuses_ids_with_whitespace(tmp_path, run, what):
    path = tmp_path / "run.trec"
    with pytest.raises(ValueError, match=re.escape(what)):
        write_trec(run, path, "bm25")
    assert list(tmp_path.iterdir()) == []  # nothing a later step could take for a complete run


def test_read_trec_reranks_with_the_tie_rule(tmp_path):
    path = tmp_path / "run.trec"
    path.write_text("q1 Q0 b 1 1.0 x\nq1 Q0 a 2 1.0 x\n\nq1 Q0 c 3 2.0 x\n")
    run = read_trec(path)
    assert [d for d, _ in run["q1"]] == ["c", "a", "b"]
    scores = [s for _, s in run["q1"]]
    assert scores[0] > scores[1] > scores[2]


def write_lines(path, lines):
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_read_trec_wrong_column_count(tmp_path):
    path = write_lines(tmp_path / "run.trec", ["q1 Q0 a 1 2.0 x", "q1 Q0 b 2 1.0 x", "q1 Q0 c 3 0.5"])
    with pytest.raises(DataError) as info:
        read_trec(path)
    assert f"{path}:3" in str(info.value)


def test_read_trec_non_numeric_score(tmp_path):
    path = write_lines(tmp_path / "run.trec", ["q1 Q0 a 1 2.0 x", "q1 Q0 b 2 high x"])
    with pytest.raises(DataError) as info:
        read_trec(path)
    assert f"{path}:2" in str(info.value)
    assert "'high'" in str(info.value)


@pytest.mark.parametrize("score", ["nan", "inf"])
def test_read_trec_non_finite_score_names_the_line(tmp_path, score):
    path = write_lines(tmp_path / "run.trec", ["q1 Q0 a 1 2.0 x", f"q1 Q0 b 2 {score} x"])
    with pytest.raises(DataError) as info:
        read_trec(path)
    assert f"{path}:2" in str(info.value)


def test_read_trec_duplicate_doc(tmp_path):
    path = write_lines(tmp_path / "run.trec", ["q1 Q0 a 1 2.0 x", "q2 Q0 a 1 2.0 x", "q1 Q0 b 2 1.0 x", "q1 Q0 a 3 0.5 x"])
    with pytest.raises(DataError) as info:
        read_trec(path)
    message = str(info.value)
    assert f"{path}:4" in message
    assert "'a'" in message and "'q1'" in message


def test_read_trec_missing_file(tmp_path):
    path = tmp_path / "missing.trec"
    with pytest.raises(DataError, match="not found") as info:
        read_trec(path)
    assert str(path) in str(info.value)


# -- evaluation ------------------------------------------------------------------------------


def tied_case():
    """Runs where every query's scores tie heavily and the relevant docs sit at different ids.

    Each query has 10 documents, so RR@10 equals RR: ir_measures' pytrec_eval provider, called
    directly, computes trec_eval's ``recip_rank`` without the cutoff, the msmarco provider with it.
    """
    rng = random.Random(3)
    qrels, raw = {}, {}
    for q in range(30):
        docs = [f"d{q:02d}_{i:02d}" for i in range(10)]  # <= 10 docs: RR@10 == RR
        relevant = rng.sample(docs, rng.choice([1, 2]))
        qrels[f"q{q}"] = {d: 1 for d in relevant}
        qrels[f"q{q}"].update({d: 0 for d in rng.sample([d for d in docs if d not in relevant], 3)})
        # four score levels only, so most documents tie with others
        raw[f"q{q}"] = {d: float(rng.choice([1.0, 2.0, 3.0, 12.75])) for d in docs}
    return qrels, raw


def as_dict(run):
    return {qid: dict(ranking) for qid, ranking in run.items()}


def test_tied_raw_run_differs_between_providers():
    """The check below is meaningful: without tie-breaking the two providers disagree."""
    qrels, raw = tied_case()
    msmarco = ir_measures.msmarco.calc_aggregate([RR @ 10], qrels, raw)[RR @ 10]
    trec = ir_measures.pytrec_eval.calc_aggregate([RR @ 10], qrels, raw)[RR @ 10]
    assert msmarco != pytest.approx(trec)


def test_make_run_gives_one_order_to_every_provider():
    qrels, raw = tied_case()
    run = as_dict(make_run(raw))
    msmarco = ir_measures.msmarco.calc_aggregate([RR @ 10], qrels, run)[RR @ 10]
    trec = ir_measures.pytrec_eval.calc_aggregate([RR @ 10], qrels, run)[RR @ 10]
    assert msmarco == pytest.approx(trec, abs=1e-12), (
        f"msmarco RR@10={msmarco} but pytrec_eval RR@10={trec} on the tie-broken run"
    )


def test_make_run_matches_the_documented_order_under_pytrec_eval():
    """pytrec_eval must rank a tie-broken run in the harness order (score desc, doc id asc)."""
    qrels = {"q": {"a": 1}}
    run = as_dict(make_run({"q": {"a": 7.0, "b": 7.0, "c": 7.0}}))
    assert ir_measures.pytrec_eval.calc_aggregate([RR @ 10], qrels, run)[RR @ 10] == 1.0
    assert ir_measures.msmarco.calc_aggregate([RR @ 10], qrels, run)[RR @ 10] == 1.0


@pytest.fixture
def untied():
    qrels = {
        "q1": {"a": 1, "b": 2, "c": 0},
        "q2": {"x": 1},
        "q3": {"m": 1, "n": 1},
        "q4": {"z": 3},  # missing from the run
    }
    run = make_run({
        "q1": {"c": 9.0, "a": 7.5, "k": 6.0, "b": 2.25},
        "q2": {"y": 4.0, "w": 3.0, "x": 1.0},
        "q3": {"n": 5.0, "m": 4.5},
        "q9": {"a": 1.0},  # not judged: ignored
    })
    return qrels, run


MEASURES = ["RR@10", "nDCG@10", "AP", "R@100"]


def test_evaluate_covers_every_judged_query_and_measure(untied):
    qrels, run = untied
    per_query = evaluate(run, qrels, MEASURES)
    assert all(isinstance(pq, PerQuery) for pq in per_query)
    assert {(pq.query_id, pq.measure) for pq in per_query} == {(q, m) for q in qrels for m in MEASURES}
    assert len(per_query) == len(qrels) * len(MEASURES)
    assert [pq.query_id for pq in per_query] == sorted(pq.query_id for pq in per_query)
    values = {(pq.query_id, pq.measure): pq.value for pq in per_query}
    for m in MEASURES:
        assert values[("q4", m)] == 0.0
    assert values[("q1", "RR@10")] == pytest.approx(1 / 2)
    assert values[("q2", "RR@10")] == pytest.approx(1 / 3)
    assert values[("q3", "RR@10")] == pytest.approx(1.0)
    assert values[("q3", "R@100")] == pytest.approx(1.0)
    assert not any(pq.query_id == "q9" for pq in per_query)


def test_evaluate_empty_run_scores_zero(untied):
    qrels, _ = untied
    per_query = evaluate({}, qrels, ["RR@10", "nDCG@10"])
    assert len(per_query) == 8
    assert all(pq.value == 0.0 for pq in per_query)


def test_means_match_ir_measures_when_all_queries_are_present(untied):
    qrels, run = untied
    del qrels["q4"]
    ours = means(evaluate(run, qrels, MEASURES))
    theirs = ir_measures.calc_aggregate([RR @ 10, nDCG @ 10, AP, R @ 100], qrels, as_dict(run))
    assert set(ours) == set(MEASURES)
    for measure, value in theirs.items():
        assert ours[str(measure)] == pytest.approx(value, abs=1e-12), measure


def test_means_count_missing_queries_as_zero(untied):
    qrels, run = untied
    with_missing = means(evaluate(run, qrels, ["RR@10"]))["RR@10"]
    present = {q: v for q, v in qrels.items() if q != "q4"}
    without = means(evaluate(run, present, ["RR@10"]))["RR@10"]
    assert with_missing == pytest.approx(without * 3 / 4)


def test_means_of_explicit_values():
    per_query = [PerQuery("a", "M", 1.0), PerQuery("b", "M", 0.0), PerQuery("a", "N", 0.25)]
    assert means(per_query) == {"M": 0.5, "N": 0.25}


@pytest.mark.parametrize("name", ["Foo@10", "RR@ten", "nDCG@10@", "", "RR@10)"])
def test_unknown_measure(name):
    with pytest.raises(ValueError, match="unknown measure"):
        parse_measures([name])
    with pytest.raises(ValueError, match="unknown measure"):
        evaluate({}, {"q": {"d": 1}}, ["RR@10", name])


def test_parse_measures_known():
    assert [str(m) for m in parse_measures(["RR@10", "nDCG@20", "AP", "Judged@20"])] == ["RR@10", "nDCG@20", "AP", "Judged@20"]


def test_per_query_round_trip(tmp_path, untied):
    qrels, run = untied
    per_query = evaluate(run, qrels, MEASURES) + [PerQuery("q-x", "nDCG@10", 1 / 3), PerQuery("q y", "AP", 1e-17)]
    path = tmp_path / "eval" / "per_query.tsv"
    write_per_query(per_query, path)
    back = read_per_query(path)
    assert back == per_query
    assert [bits(pq.value) for pq in back] == [bits(pq.value) for pq in per_query]
    assert path.read_text().splitlines()[0] == "query_id\tmeasure\tvalue"
    assert [p.name for p in path.parent.iterdir()] == ["per_query.tsv"]


def test_read_per_query_errors(tmp_path):
    bad_header = tmp_path / "a.tsv"
    bad_header.write_text("qid\tmeasure\tvalue\nq\tAP\t0.5\n")
    with pytest.raises(DataError, match=r"a\.tsv:1"):
        read_per_query(bad_header)
    bad_value = tmp_path / "b.tsv"
    bad_value.write_text("query_id\tmeasure\tvalue\nq\tAP\tlots\n")
    with pytest.raises(DataError, match=r"b\.tsv"):
        read_per_query(bad_value)


def test_evaluate_follows_the_harness_order_for_tied_scores():
    """nDCG comes from pytrec_eval; on a tie-broken run it must see doc id ascending order too."""
    run = make_run({"q": {"a": 7.0, "b": 7.0, "c": 7.0}})
    assert [d for d, _ in run["q"]] == ["a", "b", "c"]
    values = {pq.measure: pq.value for pq in evaluate(run, {"q": {"a": 1}}, ["RR@10", "nDCG@10"])}
    assert values["RR@10"] == 1.0
    assert values["nDCG@10"] == pytest.approx(1.0), "the top-ranked relevant doc was scored as rank 3"


def _readers(path):
    """(the one-pass reader's run or None, the line reader's run)."""
    from harness.runs import _read_ranked_trec, _read_trec_lines

    return _read_ranked_trec(path), _read_trec_lines(path)


@pytest.mark.parametrize("case", ["written", "shuffled", "interleaved", "ties", "ints"])
def test_read_trec_equals_the_line_reader(tmp_path, case):
    """The one-pass reader of ranked files and the line reader give the same run, whatever the file."""
    rng = random.Random(case)
    run = make_run({f"q{q}": {f"d{rng.randrange(500)}": rng.random() * 20 for _ in range(60)} for q in range(40)})
    path = tmp_path / "run.trec"
    write_trec(run, path, "t")
    lines = path.read_text(encoding="utf-8").splitlines()
    if case == "shuffled":
        rng.shuffle(lines)
    elif case == "interleaved":
        lines = lines[::2] + lines[1::2]
    elif case == "ties":
        lines = [" ".join([*line.split()[:4], "1.5", "t"]) for line in lines]
    elif case == "ints":
        lines = [" ".join([*line.split()[:4], str(len(lines) - n), "t"]) for n, line in enumerate(lines)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    got = read_trec(path)
    one_pass, by_line = _readers(path)
    assert got == by_line
    assert (one_pass is not None) == (case in ("written", "ints"))  # ranked files take the one pass
    if case == "written":
        assert got == run  # exact: the scores round-trip


@pytest.mark.parametrize("bad, message", [
    ("q1 Q0 d1 1 2.0 t\nq1 Q0 d1 2 1.0 t\n", ":2: doc 'd1' appears twice"),
    ("q1 Q0 d1 1 2.0 t\nq1 Q0 d2 2 1.0\n", ":2: expected"),
    ("q1 Q0 d1 1 2.0 t\nq1 Q0 d2 2 1.0 t extra\n", ":2: expected"),
    ("q1 Q0 d1 1 2.0 t\nq1 Q0 d2 2 x t\n", ":2: score 'x' is not a number"),
    ("q1 Q0 d1 1 2.0 t\nq1 Q0 d2 2 -inf t\n", ":2: score '-inf' is not finite"),
])
def test_read_trec_problems_in_ranked_files_name_the_line(tmp_path, bad, message):
    path = tmp_path / "run.trec"
    path.write_text(bad, encoding="utf-8")
    with pytest.raises(DataError, match=re.escape(message)):
        read_trec(path)


def test_columnar_reader_takes_written_runs_whole(tmp_path, sample_run):
    """`write_trec` output is read by the one-pass columnar reader, and equals the line reader's run
    (ids with quotes, commas and non-ASCII letters kept as they are)."""
    run = {**sample_run, 'q"x': [('"quoted"', 2.0), ("a,b", 1.0)], "Zürich": [("дом", 0.5)]}
    path = tmp_path / "run.trec"
    write_trec(run, path, "tag")
    fast = _read_ranked_trec(path)
    assert fast is not None and fast == _read_trec_lines(path) == run
    assert list(fast) == sorted(run)


@pytest.mark.parametrize("text", [
    "q1\tQ0\td1\t1\t2.0\tt\nq1\tQ0\td2\t2\t1.0\tt\n",   # tabs
    "q1 Q0  d1 1 2.0 t\n",                               # two spaces
    "q1 Q0 d1 1 1.0 t\nq1 Q0 d2 2 2.0 t\n",              # scores rising
    "q1 Q0 d1 1 1.0 t\nq2 Q0 d1 1 1.0 t\nq1 Q0 d2 2 0.5 t\n",  # a query's lines apart
    "q1 Q0 d1 1 1.0 t\nq1 Q0 d2 2 1.0 t\n",              # a tie
])
def test_other_layouts_go_through_the_line_reader(tmp_path, text):
    path = tmp_path / "run.trec"
    path.write_text(text)
    assert _read_ranked_trec(path) is None
    assert read_trec(path) == _read_trec_lines(path)
