"""Peak memory (RSS) of indexing, BM25, dense (faiss) and PLAID, at two collection sizes.

The large collection has ``BENCH_DOCS`` synthetic documents (default 2,000) in ``BENCH_SHARDS``
shards (2 by default, to keep the test run short; the scale run below uses 10); the small one has
one shard's worth of them as one shard, so a shard holds as many documents at both sizes. Every shard job and every merge runs as the pipeline runs it (`build_system`, then
``index_shard`` per shard and ``merge_shards``, as `harness.steps` calls them) in a child process of
its own, which reports its peak RSS (``VmHWM``: Python, torch, the model and, for BM25, the JVM).
Dense and PLAID encode with the systems' own tiny random checkpoints (`System.tiny`: DPR-XM and
ColBERT-XM layouts). Printed per system and size; asserted, within the system's tolerance of the
small size's peak (`SETUPS`; ``BENCH_TOLERANCE`` overrides) plus `SLACK`:

- a shard job's peak does not grow with the collection (same shard size, ``BENCH_SHARDS`` times the documents);
- a merge's peak grows by no more than what the index it writes must hold in memory (`merge_allowance`:
  a flat faiss index holds every vector; PLAID's k-means sample grows as √N, colbert-ai's rule) and
  the ids it writes.

``BENCH_SYSTEMS`` (``bm25,dense,plaid``) picks systems, ``BENCH_THREADS`` (1) the threads per job;
``BENCH_DOCS=1000000 BENCH_SHARDS=10 pytest tests/benchmarks/test_index_memory.py -s`` is the scale run.
``BENCH_FIRST_SHARD=1`` runs, at each size, only the first shard job (no merge, so only the shard
assertion): the shard property at a collection size whose every document could not be encoded.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import time
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.data.base import Dataset, Doc, Located
from harness.system import build_system
from harness.training import TrainingData
from tests.helpers import synthetic_text

DOCS = int(os.environ.get("BENCH_DOCS", "2000"))
SHARDS = int(os.environ.get("BENCH_SHARDS", "2"))
THREADS = int(os.environ.get("BENCH_THREADS", "1"))
TOLERANCE = os.environ.get("BENCH_TOLERANCE")
SYSTEMS = os.environ.get("BENCH_SYSTEMS", "bm25,dense,plaid").split(",")
FIRST_SHARD = os.environ.get("BENCH_FIRST_SHARD") == "1"
SLACK = 32 << 20
"""Bytes of allocator and garbage-collector noise allowed on top of the tolerance."""
IDS_BYTES = 256
"""Bytes per document a merge may hold for the doc ids it writes (Python strings in a list)."""
BLOCK = 1_000
"""Documents generated together (any block is made alone, from its number)."""
VOCABULARY = 20_000
"""Synthetic words the documents are drawn from, Zipf-like."""

SETUPS: dict[str, tuple[str, dict[str, Any], float]] = {
    "bm25": ("bm25", {"threads": THREADS}, 0.3),
    "dense": ("dpr-xm", {"device": "cpu"}, 0.1),
    "plaid": ("colbert-xm", {"device": "cpu"}, 0.1),
}
"""Benchmark name → catalogue system, params and tolerance; systems with a ``tiny`` recipe run on a tiny
checkpoint. BM25's JVM sizes its heap adaptively: equal shard jobs peaked 383–490 MiB on a loaded machine."""


@dataclass
class Generated(Dataset):
    """``n_docs`` English documents of 30–90 words, generated a block at a time (nothing held); no queries."""

    n_docs: int = 0

    def _read_docs(self):
        words = vocabulary()
        cum = np.fromiter(accumulate(1 / (rank + 1) for rank in range(len(words))), float, len(words))
        for block in range(-(-self.n_docs // BLOCK)):
            rng = np.random.default_rng([7, block])
            lengths = rng.integers(30, 91, min(BLOCK, self.n_docs - block * BLOCK))
            drawn = words[np.searchsorted(cum, rng.random(int(lengths.sum())) * cum[-1])]
            ends = np.cumsum(lengths)
            for offset, (start, end) in enumerate(zip(ends - lengths, ends, strict=True)):
                i = block * BLOCK + offset
                yield Located(Doc(f"d{i}", " ".join(drawn[start:end]), "en"), f"{self.dataset_id} #{i}")

    def _read_queries(self) -> list:
        return []

    def _read_qrels(self) -> dict:
        return {}

    def _content_identity(self):
        yield f"{self.n_docs}".encode()

    @property
    def doc_languages(self) -> tuple[str, ...]:
        return ("en",)


def vocabulary() -> np.ndarray:
    """`VOCABULARY` distinct synthetic Latin words (`synthetic_text`), in a fixed order."""
    words = dict.fromkeys(synthetic_text(random.Random(0), "Latn", 4 * VOCABULARY).split())
    return np.array(list(words)[:VOCABULARY], dtype=object)


def peak_rss() -> int:
    """This process's peak resident set size in bytes (``VmHWM``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("/proc/self/status has no VmHWM")


def job(result: str, name: str, params: dict[str, Any], docs: int, shard: int | None, shards: int,
        dirs: list[str], out: str) -> None:
    """One step in a fresh process: ``index_shard`` (``shard`` given) or ``merge_shards`` of ``dirs``;
    writes its facts and peak RSS to ``result``."""
    import faiss
    import torch

    torch.set_num_threads(THREADS)
    faiss.omp_set_num_threads(THREADS)
    system = build_system(name, params)
    dataset = Generated(f"generated:{docs}", n_docs=docs)
    start = time.perf_counter()
    if shard is not None:
        info = system.index_shard(dataset, shard, shards, Path(out))
    else:
        info = system.merge_shards(dataset, [Path(d) for d in dirs], Path(out))
    facts = {"peak": peak_rss(), "seconds": time.perf_counter() - start, "info": info}
    Path(result).write_text(json.dumps(facts, default=str))


def in_child(tmp: Path, *args: Any) -> dict[str, Any]:
    """`job` with ``args`` in a spawned process (nothing inherited from this one); its facts."""
    result = tmp / f"result-{time.monotonic_ns()}.json"
    process = multiprocessing.get_context("spawn").Process(target=job, args=(str(result), *args))
    process.start()
    process.join()
    assert process.exitcode == 0, f"{args[0]} job {args} failed (exit {process.exitcode})"
    return json.loads(result.read_text())


def build(tmp: Path, name: str, params: dict[str, Any], docs: int, shards: int) -> dict[str, Any]:
    """Every shard job of a ``docs``-document collection in ``shards`` shards, then the merge (with
    `FIRST_SHARD`, the first shard job alone); the first shard job's and the merge's facts."""
    dirs = [tmp / f"{docs}" / f"shard{i}" for i in range(1 if FIRST_SHARD else shards)]
    jobs = [in_child(tmp, name, params, docs, i, shards, [], str(d)) for i, d in enumerate(dirs)]
    if FIRST_SHARD:
        return {"shard": jobs[0], "shards": jobs, "merge": None}
    merge = in_child(tmp, name, params, docs, None, shards, [str(d) for d in dirs], str(tmp / f"{docs}" / "index"))
    return {"shard": jobs[0], "shards": jobs, "merge": merge}


def merge_allowance(system: str, small: dict[str, Any], large: dict[str, Any]) -> float:
    """Bytes a merge of the large collection may hold beyond one of the small (``small`` and ``large``:
    the merges' facts): BM25 none (Lucene copies segments); dense its faiss index (held in memory to be
    written) and the ids; PLAID its doclens, ids and the growth of its k-means sample (float32 token
    vectors of colbert-ai's 16·√(120·N) documents)."""
    if system == "bm25":
        return 0.0
    added = large["documents"] - small["documents"]
    if system == "dense":
        return large["index_bytes"] - small["index_bytes"] + IDS_BYTES * added
    from systems.colbert.plaid.codec import sampled_documents

    def sample_bytes(info: dict[str, Any]) -> float:
        return sampled_documents(info["documents"]) * info["tokens"] / info["documents"] * info["dim"] * 4

    return (IDS_BYTES + 8) * added + sample_bytes(large) - sample_bytes(small)


def within(small: int, large: int, tolerance: float, allowed: float = 0.0) -> bool:
    """``large`` is at most ``small`` plus ``tolerance`` of it, `SLACK` and ``allowed`` bytes."""
    return large <= small * (1 + tolerance) + SLACK + allowed


@pytest.mark.parametrize("system", SYSTEMS)
def test_index_memory_is_bounded_by_the_shard(system: str, benchmark, tmp_path: Path) -> None:
    name, params, tolerance = SETUPS[system]
    tolerance = float(TOLERANCE or tolerance)
    if DOCS % SHARDS:
        pytest.fail(f"BENCH_DOCS ({DOCS}) must be a multiple of BENCH_SHARDS ({SHARDS}): equal shards at both sizes")
    small_docs, large_docs = DOCS // SHARDS, DOCS
    if hasattr(build_system(name, params), "tiny"):
        texts = Generated("generated:tokenizer", n_docs=min(DOCS, 20_000))
        params = {**params, "model": str(build_system(name, params).tiny(TrainingData({"en": texts}), tmp_path / "tiny")
                                          .params.model)}
    sizes: dict[int, dict[str, Any]] = {}

    def run() -> None:
        sizes[small_docs] = build(tmp_path, name, params, small_docs, 1)
        sizes[large_docs] = build(tmp_path, name, params, large_docs, SHARDS)

    benchmark.pedantic(run, rounds=1, iterations=1)
    mib = 1 << 20
    for docs, facts in sizes.items():
        shards = 1 if docs == small_docs else SHARDS
        merge = facts["merge"] and (f"merge peak RSS {facts['merge']['peak'] / mib:,.0f} MiB "
                                    f"({facts['merge']['seconds']:.0f} s)")
        print(f"{system} ({name}) {docs:,} docs in {shards} shard(s): shard job peak RSS "
              f"{max(j['peak'] for j in facts['shards']) / mib:,.0f} MiB (first {facts['shard']['peak'] / mib:,.0f}, "
              f"{facts['shard']['seconds']:.0f} s), {merge or 'no merge (BENCH_FIRST_SHARD)'}")
    benchmark.extra_info.update({f"{docs}": {"shard_peaks": [j["peak"] for j in f["shards"]],
                                             "merge_peak": f["merge"] and f["merge"]["peak"]} for docs, f in sizes.items()})
    small, large = sizes[small_docs], sizes[large_docs]
    assert large["shard"]["info"]["documents"] == small["shard"]["info"]["documents"] == small_docs
    for j in large["shards"]:
        assert within(small["shard"]["peak"], j["peak"], tolerance), (
            f"{system}: a shard job of {large_docs:,} documents peaked at {j['peak'] / mib:,.0f} MiB, one of "
            f"{small_docs:,} documents (as many per shard) at {small['shard']['peak'] / mib:,.0f} MiB")
    if FIRST_SHARD:
        return
    assert large["merge"]["info"]["documents"] == large_docs
    allowed = merge_allowance(system, small["merge"]["info"], large["merge"]["info"])
    assert within(small["merge"]["peak"], large["merge"]["peak"], tolerance, allowed), (
        f"{system}: merging {large_docs:,} documents peaked at {large['merge']['peak'] / mib:,.0f} MiB, "
        f"{small_docs:,} at {small['merge']['peak'] / mib:,.0f} MiB (allowed growth {allowed / mib:,.0f} MiB)")
