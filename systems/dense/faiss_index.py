"""The faiss side of dense retrieval: which index the params describe, building it from vectors in
collection order (on GPU where faiss can), and opening it for search with the retrieve-time knobs.

All indexes are inner-product: exact (flat), IVF, HNSW or PQ, with 8- or 4-bit scalar quantisation
of the stored vectors. Shards keep float32 vectors; `CollectionOrder` reads them back interleaved into
collection order, so an index merged from shards equals an unsharded one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from harness.device import require_faiss

if TYPE_CHECKING:
    from systems.dense.system import DenseParams

faiss = require_faiss()

ADD_BLOCK = 100_000
"""Vectors gathered into collection order and added to the index at a time."""
TRAIN_SAMPLE = 500_000
"""Most vectors used to train IVF, PQ and scalar quantisers (a fixed random sample)."""


def factory_string(params: DenseParams, n: int) -> str:
    """The faiss index factory description for ``params`` over ``n`` vectors."""
    storage = {"none": "Flat", "int8": "SQ8", "int4": "SQ4"}[params.quantization]
    if params.index == "flat":
        return storage
    if params.index == "ivf":
        return f"IVF{params.nlist or max(1, min(round(4 * math.sqrt(n)), n // 39))},{storage}"
    if params.index == "hnsw":
        return f"HNSW{params.hnsw_m},{storage}"
    return f"PQ{params.pq_m}x{params.pq_nbits}np"  # np: skip polysemous training, unused by PQ search


def build_index(vectors: np.ndarray | CollectionOrder, params: DenseParams) -> faiss.Index:
    """A trained, filled inner-product index over ``vectors`` (rows in collection order), on CPU."""
    n, d = vectors.shape
    if params.index == "pq" and d % params.pq_m:
        raise ValueError(f"pq_m={params.pq_m} does not divide the vector dimension {d}")
    index = faiss.index_factory(d, factory_string(params, n), faiss.METRIC_INNER_PRODUCT)
    if params.index == "hnsw":
        index.hnsw.efConstruction = params.ef_construction
    work = on_gpu(index, params)
    if not work.is_trained:
        rows = np.arange(n)
        if n > TRAIN_SAMPLE:
            rows = np.sort(np.random.default_rng(0).choice(n, TRAIN_SAMPLE, replace=False))
        work.train(np.ascontiguousarray(vectors[rows], dtype=np.float32))
    for start in range(0, n, ADD_BLOCK):
        work.add(np.ascontiguousarray(vectors[start : start + ADD_BLOCK], dtype=np.float32))
    return faiss.index_gpu_to_cpu(work) if work is not index else index


def on_gpu(index: faiss.Index, params: DenseParams) -> faiss.Index:
    """``index`` on every GPU faiss sees when there is one and faiss supports the index there
    (flat and IVF), else ``index`` itself."""
    if faiss.get_num_gpus() > 0 and (params.index == "ivf" or (params.index, params.quantization) == ("flat", "none")):
        return faiss.index_cpu_to_all_gpus(index)
    return index


def searchable(index: faiss.Index, params: DenseParams) -> faiss.Index:
    """``index`` with the retrieve-time knobs (nprobe, efSearch) set, on GPU where possible."""
    if params.index == "ivf":
        faiss.extract_index_ivf(index).nprobe = params.nprobe
    elif params.index == "hnsw":
        index.hnsw.efSearch = params.ef_search
    return on_gpu(index, params)


class CollectionOrder:
    """Shard vector arrays seen as one array in collection order (row p is row p // S of shard p % S),
    sliceable and indexable by row arrays without copying everything at once."""

    def __init__(self, parts: list[np.ndarray]) -> None:
        self.parts = parts
        self.shape = (sum(len(p) for p in parts), parts[0].shape[1])

    def __getitem__(self, rows: slice | np.ndarray) -> np.ndarray:
        positions = np.arange(*rows.indices(self.shape[0])) if isinstance(rows, slice) else rows
        out = np.empty((len(positions), self.shape[1]), np.float32)
        for shard, part in enumerate(self.parts):
            mine = positions % len(self.parts) == shard
            out[mine] = part[positions[mine] // len(self.parts)]
        return out


@dataclass
class Searcher:
    """An open index: the faiss index and the doc id of each of its rows."""

    index: faiss.Index
    ids: list[str]
