"""The faiss side of dense retrieval: which index the params describe, building it from vectors in
collection order (on GPU where faiss can), and opening it for search with the retrieve-time knobs.

All indexes are inner-product: exact (flat), IVF, HNSW or PQ, with 8- or 4-bit scalar quantisation
of the stored vectors. Shards keep float32 vectors; `CollectionOrder` reads them back interleaved into
collection order, so an index merged from shards equals an unsharded one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
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
WINDOW_BYTES = 64 << 20
"""Bytes of a shard file read at a time when gathering vectors into collection order."""


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
    if isinstance(flat := faiss.downcast_index(work), faiss.IndexFlatCodes):
        # allocate the codes once: adding block by block would regrow them (to 2× the index while copying)
        flat.codes.resize(n * flat.code_size)
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


class ShardVectors:
    """A shard's ``vectors.npy`` (C-ordered float32 rows), read from the file a window at a time: no
    mapping is kept, so a merge holds one block of the shards, not every page it has read."""

    def __init__(self, path: Path) -> None:
        header = np.load(path, mmap_mode="r")  # maps the file; only the header is read
        if header.dtype != np.float32 or header.ndim != 2 or not header.flags.c_contiguous:
            raise ValueError(f"{path}: expected C-ordered 2-D float32 vectors, found {header.dtype} {header.shape}")
        self.path, self.shape, self.offset = path, header.shape, header.offset
        del header

    def __len__(self) -> int:
        return self.shape[0]

    def take(self, rows: np.ndarray) -> np.ndarray:
        """The vectors of ``rows`` in their order, reading the span they cover `WINDOW_BYTES` at a time."""
        width = self.shape[1]
        out = np.empty((len(rows), width), np.float32)
        if not len(rows):
            return out
        order = np.argsort(rows, kind="stable")
        wanted = rows[order]
        if wanted[0] < 0 or wanted[-1] >= len(self):
            raise IndexError(f"rows {wanted[0]}..{wanted[-1]} outside {self.path} ({len(self)} rows)")
        step, done = max(1, WINDOW_BYTES // (4 * width)), 0
        for first in range(int(wanted[0]), int(wanted[-1]) + 1, step):
            count = min(step, int(wanted[-1]) + 1 - first)
            window = np.fromfile(self.path, np.float32, count * width, offset=self.offset + 4 * width * first)
            end = int(np.searchsorted(wanted, first + count))
            out[order[done:end]] = window.reshape(count, width)[wanted[done:end] - first]
            done = end
        return out


class CollectionOrder:
    """Shards' vectors seen as one array in collection order (row p is row p // S of shard p % S),
    sliceable and indexable by row arrays, read from the shard files a block at a time."""

    def __init__(self, parts: list[ShardVectors]) -> None:
        self.parts = parts
        self.shape = (sum(len(p) for p in parts), parts[0].shape[1])

    def __getitem__(self, rows: slice | np.ndarray) -> np.ndarray:
        positions = np.arange(*rows.indices(self.shape[0])) if isinstance(rows, slice) else np.asarray(rows)
        out = np.empty((len(positions), self.shape[1]), np.float32)
        for shard, part in enumerate(self.parts):
            mine = positions % len(self.parts) == shard
            out[mine] = part.take(positions[mine] // len(self.parts))
        return out


@dataclass
class Searcher:
    """An open index: the faiss index and the doc id of each of its rows."""

    index: faiss.Index
    ids: list[str]
