"""PLAID search: the harness against colbert-ai 0.2.20's CPU search (installed by setup.sh under .ref/,
run in its own process by tests/systems/reference_colbert.py) on the same token vectors and queries.

Both index the same synthetic clustered vectors (tests/helpers.py `clustered_corpus`) with colbert-ai's
centroid rule and its 4 k-means iterations, 2 bits per dimension; both search with colbert-ai's own
settings for each k (ncells, centroid_score_threshold, ndocs: what its ``dense_search`` picks, checked
against `COLBERT_DEFAULTS`), batch size 1, precomputed query vectors, on the session's torch threads
(one by default, tests/conftest.py). Pairs alternate which side runs first; each prints both mean
latencies per query and the pair's ratio (harness / colbert-ai), then the median of the ratios, and
the top-k overlap of each with exact MaxSim on the original vectors (the harness's must be at least
colbert-ai's less `OVERLAP_MARGIN`). ``BENCH_PASSAGES`` (default 2,000; 20,000 is ~1.2M token
vectors), ``BENCH_QUERIES`` (20) scale it; pairs are pytest-benchmark's rounds (``--benchmark-enable``,
``BENCH_PAIRS``, default 5), one pair under the default ``--benchmark-disable``. ``BENCH_DIR``: a folder
where both indexes are kept and reused by later runs of the same size (default: a fresh temporary one).
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from systems.colbert.plaid import PlaidIndex, build_index, write_shard
from tests.helpers import clustered_corpus, clustered_queries, overlap, run_reference

PASSAGES = int(os.environ.get("BENCH_PASSAGES", "2000"))
QUERIES = int(os.environ.get("BENCH_QUERIES", "20"))
PAIRS = int(os.environ.get("BENCH_PAIRS", "5"))
KEEP = os.environ.get("BENCH_DIR")
DIM, NBITS, QUERY_TOKENS, DOC_TOKENS = 128, 2, 32, (30, 90)
KMEANS_ITERS = 4
"""colbert-ai's ``kmeans_niters`` default, used by both builds."""
COLBERT_DEFAULTS = {10: (1, 0.5, 256), 100: (2, 0.45, 1024), 1000: (4, 0.4, 4096)}
"""colbert-ai's search settings per k (``Searcher.dense_search``): ncells, centroid_score_threshold, ndocs
(for k > 100: max(4k, 4096))."""
OVERLAP_MARGIN = 0.02
"""The harness's top-k overlap with exact MaxSim may be this much below colbert-ai's, at most."""


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> dict:
    """Both indexes over the same vectors, the queries, and exact MaxSim's top 1000 on the original vectors."""
    folder = Path(KEEP) / f"passages-{PASSAGES}" if KEEP else tmp_path_factory.mktemp("plaid-search")
    folder.mkdir(parents=True, exist_ok=True)
    embeddings, doclens = clustered_corpus(PASSAGES, DIM, seed=21, lengths=DOC_TOKENS, topics=max(64, PASSAGES // 20))
    queries = clustered_queries(embeddings, doclens, QUERIES, QUERY_TOKENS, seed=22)
    vectors = folder / "vectors.npz"
    np.savez(vectors, embeddings=embeddings, doclens=doclens, queries=np.stack(queries))
    job = {"package": "colbert-ai", "vectors": str(vectors), "root": str(folder / "colbert-ai"), "nbits": NBITS}
    built = folder / "colbert-ai.built"  # colbert-ai's index is finished (the harness's build resumes itself)
    if not built.exists():
        run_reference({**job, "task": "index", "k": 10}, folder, timeout=3600)
        built.touch()
    shards = [write_shard(folder / "shard", embeddings, doclens)]
    del embeddings
    facts = build_index(shards, folder / "plaid", NBITS, kmeans_iters=KMEANS_ITERS, device="cpu")
    index = PlaidIndex.open(folder / "plaid", device="cpu")
    exact = index.exhaustive(queries, max(COLBERT_DEFAULTS), shards)
    return {"job": job, "queries": queries, "index": index, "exact": exact, "facts": facts, "folder": folder}


@pytest.mark.parametrize("k", sorted(COLBERT_DEFAULTS))
def test_plaid_search_vs_colbert_ai(k: int, bench, benchmark, tmp_path: Path) -> None:
    index, queries = bench["index"], bench["queries"]
    ncells, threshold, ndocs = COLBERT_DEFAULTS[k]
    ndocs = max(ndocs, 4 * k) if k > 100 else ndocs
    threads = torch.get_num_threads()
    times: dict[str, list[np.ndarray]] = {"harness": [], "colbert-ai": []}
    tops: dict[str, list[np.ndarray]] = {}

    def harness() -> None:
        index.search(queries[:1], k, nprobe=ncells, centroid_score_threshold=threshold, ndocs=ndocs)  # warm-up
        seconds, top = [], []
        for q in queries:
            start = time.perf_counter()
            (positions, _), = index.search([q], k, nprobe=ncells, centroid_score_threshold=threshold, ndocs=ndocs)
            seconds.append(time.perf_counter() - start)
            top.append(positions)
        times["harness"].append(np.array(seconds))
        tops["harness"] = top

    def reference() -> None:
        out = run_reference({**bench["job"], "task": "search", "ks": [k], "threads": threads}, tmp_path)
        times["colbert-ai"].append(out[f"times_{k}"])
        tops["colbert-ai"] = list(out[f"top_{k}"])
        assert tuple(out[f"settings_{k}"]) == (ncells, threshold, ndocs), "colbert-ai picked other settings"

    def pair() -> None:
        for run in (harness, reference) if len(times["harness"]) % 2 == 0 else (reference, harness):
            run()

    benchmark.pedantic(pair, rounds=PAIRS, iterations=1)
    ratios = [h.mean() / r.mean() for h, r in zip(times["harness"], times["colbert-ai"], strict=True)]
    for h, r, ratio in zip(times["harness"], times["colbert-ai"], ratios, strict=True):
        print(f"k={k}: harness {1000 * h.mean():.2f} ms/query (p50 {1000 * np.median(h):.2f}), colbert-ai "
              f"{1000 * r.mean():.2f} ms/query (p50 {1000 * np.median(r):.2f}), ratio {ratio:.3f}")
    agreement = {name: float(np.mean([overlap(t, e, k) for t, (e, _) in zip(top, bench["exact"], strict=True)]))
                 for name, top in tops.items()}
    facts = bench["facts"]
    print(f"k={k}: {PASSAGES} passages ({facts['tokens']} token vectors, {facts['centroids']} centroids), "
          f"{len(queries)} queries × {QUERY_TOKENS} tokens, {threads} thread(s), ncells {ncells}, threshold "
          f"{threshold}, ndocs {ndocs}; {len(ratios)} pairs: median ratio {statistics.median(ratios):.3f}; top-{k} "
          f"overlap with exact MaxSim: harness {agreement['harness']:.3f}, colbert-ai {agreement['colbert-ai']:.3f}")
    benchmark.extra_info.update(k=k, passages=PASSAGES, tokens=facts["tokens"], threads=threads, ratios=ratios,
                                overlap=agreement)
    # Both return at most the passages in the cells probed (fewer than k at k = 1000 on these clustered
    # vectors); the harness, per query, as many as colbert-ai (which pads with -1), within 1% of k.
    returned = {name: np.array([int((np.asarray(t) >= 0).sum()) for t in top]) for name, top in tops.items()}
    assert (returned["harness"] <= k).all() and (returned["harness"] >= returned["colbert-ai"] - k // 100).all(), returned
    if k <= 100:  # past the few hundred passages sharing a query's topics, exact scores are near-ties
        assert agreement["colbert-ai"] >= 0.5, "colbert-ai's search is not working on these vectors"
    assert agreement["harness"] >= agreement["colbert-ai"] - OVERLAP_MARGIN
