"""Building a PLAID index: a codec trained on the shards, each shard compressed into a chunk, and the
inverted lists merged.

Files in an index folder (``.npy`` files are plain numpy arrays; every file is written to a
temporary name and renamed, so a file that exists is complete):

    codec.json                 nbits, dim, centroids, code_bits, cutoffs, weights, the settings and data
                               fingerprint it was trained with, and its hash
    centroids.npy              float16 [|C|, dim], unit rows (as colbert-ai keeps them; residuals are
                               measured from these values)
    chunks/NNNNN.codes.npy     uint8: shard NNNNN's centroid ids, code_bits each, packed big-endian
    chunks/NNNNN.residuals.npy uint8 [tokens, nbits·dim/8]: bucket ids, the first dimension in the
                               high bits of the first byte
    chunks/NNNNN.json          the chunk's shard fingerprint, codec hash and offsets; written after
                               its arrays, so a chunk with this file is finished
    doclens.npy                int64 [documents]: tokens per document; documents are numbered by
                               concatenating the shards in the order given
    ivf.npy                    int32 (int64 from 2^31 documents): document positions grouped by
                               centroid, ascending within each list
    ivf_lengths.npy            int32 (as ivf.npy) [|C|]: the length of each centroid's list in ivf.npy
    meta.json                  counts, sizes and bytes per vector; written last, marks a finished index

Builds resume: the codec and every chunk whose json matches (same shard contents, same codec) are
kept, the other chunks are compressed again, one shard in memory at a time (shards are read with
``mmap``). Merging (doclens, inverted lists) is redone on each run and gives identical files.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness.files import atomic_path
from systems.colbert.plaid.codec import (
    NBITS,
    Codec,
    codec_record,
    load_codec,
    pack_codes,
    pack_residuals,
    train_codec,
    unpack_codes,
)
from systems.colbert.plaid.shards import (
    SCORE_BUDGET,
    OpenShard,
    TokenShard,
    floats,
    open_shards,
    resolve_device,
    save_json,
    save_npy,
)

FORMAT = "plaid-v1"
FILES = ("codec.json", "centroids.npy", "doclens.npy", "ivf.npy", "ivf_lengths.npy", "meta.json")
"""The index's files besides the chunks folder."""


def chunk_paths(out: Path, i: int) -> tuple[Path, Path, Path]:
    folder = out / "chunks"
    return folder / f"{i:05d}.codes.npy", folder / f"{i:05d}.residuals.npy", folder / f"{i:05d}.json"


def _npy_shape(path: Path) -> tuple[tuple[int, ...], np.dtype] | None:
    """Shape and dtype from an .npy header, or None if the file is missing or unreadable."""
    try:
        array = np.load(path, mmap_mode="r")
    except (OSError, ValueError):
        return None
    return array.shape, array.dtype


def _chunk_record(shard: OpenShard, codec_digest: str) -> dict[str, Any]:
    return {"shard": shard.fingerprint(), "codec": codec_digest, "documents": len(shard.doclens),
            "tokens": shard.tokens, "first_document": shard.first_doc, "first_token": shard.first_token}


def _chunk_done(out: Path, i: int, record: dict[str, Any], codec: Codec) -> bool:
    """Whether chunk ``i`` is finished and was made from this shard with this codec."""
    codes, residuals, facts = chunk_paths(out, i)
    try:
        if json.loads(facts.read_text(encoding="utf-8")) != record:
            return False
    except (OSError, ValueError):
        return False
    n = record["tokens"]
    return (_npy_shape(codes) == ((-(-n * codec.code_bits // 8),), np.dtype(np.uint8))
            and _npy_shape(residuals) == ((n, codec.dim * codec.nbits // 8), np.dtype(np.uint8)))


def _compress_chunk(out: Path, i: int, shard: OpenShard, codec: Codec, device: torch.device) -> None:
    """Compress one shard into chunk ``i``: arrays first (each atomically), then its json."""
    codes_path, residuals_path, _ = chunk_paths(out, i)
    centroids = torch.from_numpy(codec.centroids).to(device)
    cutoffs = torch.from_numpy(codec.cutoffs).to(device)
    codes = np.empty(shard.tokens, np.int32)
    vectors = shard.vectors()
    with atomic_path(residuals_path) as tmp:
        residuals = np.lib.format.open_memmap(tmp, "w+", np.uint8, (shard.tokens, codec.dim * codec.nbits // 8))
        step = max(256, SCORE_BUDGET // max(len(codec.centroids), codec.dim))
        for start in range(0, shard.tokens, step):
            v = floats(vectors[start : start + step], device)
            code = (v @ centroids.T).argmax(1)
            buckets = torch.bucketize(v - centroids[code], cutoffs)
            residuals[start : start + len(v)] = pack_residuals(buckets, codec.nbits).cpu().numpy()
            codes[start : start + len(v)] = code.cpu().numpy()
        residuals.flush()
        del residuals
    save_npy(codes_path, pack_codes(codes, codec.code_bits))


def _chunk_lists(codes: np.ndarray, doclens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A chunk's inverted lists: (centroid, local document) pairs, each once, sorted; as two arrays."""
    docs = np.repeat(np.arange(len(doclens), dtype=np.int64), doclens)
    keys = np.unique(codes.astype(np.int64) * len(doclens) + docs)
    return keys // len(doclens), keys % len(doclens)


def _write_ivf(out: Path, shards: list[OpenShard], codec: Codec) -> None:
    """ivf.npy and ivf_lengths.npy from the chunks' codes, one chunk in memory at a time."""
    k, n_docs = len(codec.centroids), shards[-1].first_doc + len(shards[-1].doclens)

    def lists(i: int, shard: OpenShard) -> tuple[np.ndarray, np.ndarray]:
        codes = unpack_codes(np.load(chunk_paths(out, i)[0]), codec.code_bits, shard.tokens)
        return _chunk_lists(codes, shard.doclens)

    lengths = np.zeros(k, np.int64)
    for i, shard in enumerate(shards):
        lengths += np.bincount(lists(i, shard)[0], minlength=k)
    with atomic_path(out / "ivf.npy") as tmp:
        ivf = np.lib.format.open_memmap(tmp, "w+", np.int32 if n_docs < 2**31 else np.int64, (int(lengths.sum()),))
        filled = np.cumsum(lengths) - lengths  # where each list's next entry goes
        for i, shard in enumerate(shards):
            cells, docs = lists(i, shard)
            counts = np.bincount(cells, minlength=k)
            group_start = np.cumsum(counts) - counts
            ivf[filled[cells] + np.arange(len(cells)) - group_start[cells]] = docs + shard.first_doc
            filled += counts
        ivf.flush()
        del ivf
    save_npy(out / "ivf_lengths.npy", lengths.astype(np.int32 if n_docs < 2**31 else np.int64))


def build_index(shards: Sequence[TokenShard], out: Path, nbits: int, n_centroids: int | None = None,
                sample: int | None = None, kmeans_iters: int = 20, seed: int = 0,
                device: str = "auto") -> dict[str, Any]:
    """Build (or finish building) a PLAID index of ``shards`` in ``out``; return facts about it.

    ``n_centroids`` None: colbert-ai's rule (see `default_centroids`). ``sample`` None: k-means on
    colbert-ai's document sample; a number: that many token vectors (`systems.colbert.plaid.codec`).
    Documents are numbered by concatenating the shards in order. Chunks already compressed from the
    same shard contents with the same codec are kept (the facts count them as ``chunks_reused``).
    """
    if nbits not in NBITS:
        raise ValueError(f"nbits must be one of {NBITS}, got {nbits}")
    if (sample is not None and sample < 1) or kmeans_iters < 1:
        raise ValueError(f"sample ({sample}) and kmeans_iters ({kmeans_iters}) must be positive")
    opened = open_shards(shards)
    dim = opened[0].shape[1]
    if dim * nbits % 8:
        raise ValueError(f"dimension {dim} times nbits {nbits} must be a multiple of 8 to pack residuals in bytes")
    out = Path(out)
    own = {(out / name).resolve() for name in FILES}
    for shard in shards:
        if {Path(shard.embeddings).resolve(), Path(shard.doclens).resolve()} & own:
            raise ValueError(f"shard {shard} lies where the index in {out} writes its own files")
    out.mkdir(parents=True, exist_ok=True)
    (out / "meta.json").unlink(missing_ok=True)
    stale = [p for name in FILES for p in out.glob(f".{name}.*")] + list(out.glob("chunks/.*"))
    for path in stale:  # temporaries of an interrupted build
        path.unlink()
    torch_device = resolve_device(device)

    settings = {"nbits": nbits, "n_centroids": n_centroids, "sample": sample, "kmeans_iters": kmeans_iters,
                "seed": seed, "data": hashlib.sha256("".join(s.fingerprint() for s in opened).encode()).hexdigest()}
    codec = None
    try:
        codec, record = load_codec(out)
        if record["settings"] != settings or record["digest"] != codec.digest():
            codec = None
    except (OSError, ValueError, KeyError):
        pass
    if codec is None:
        codec = train_codec(opened, nbits, n_centroids, sample, kmeans_iters, seed, torch_device)
        save_npy(out / "centroids.npy", codec.centroids.astype(np.float16))
        save_json(out / "codec.json", codec_record(codec, settings))
    digest = codec.digest()

    compressed = reused = 0
    for i, shard in enumerate(opened):
        record = _chunk_record(shard, digest)
        if _chunk_done(out, i, record, codec):
            reused += 1
            continue
        chunk_paths(out, i)[2].unlink(missing_ok=True)
        _compress_chunk(out, i, shard, codec, torch_device)
        save_json(chunk_paths(out, i)[2], record)
        compressed += 1
    for path in (out / "chunks").glob("*"):  # chunks of an earlier build with more shards
        if not path.name[:5].isdigit() or int(path.name[:5]) >= len(opened):
            path.unlink()

    save_npy(out / "doclens.npy", np.concatenate([s.doclens for s in opened]))
    _write_ivf(out, opened, codec)
    tokens = sum(s.tokens for s in opened)
    payload = sum(np.load(chunk_paths(out, i)[j], mmap_mode="r").nbytes for i in range(len(opened)) for j in (0, 1))
    meta = {"format": FORMAT, "documents": sum(len(s.doclens) for s in opened), "tokens": tokens, "dim": dim,
            "nbits": nbits, "centroids": len(codec.centroids), "code_bits": codec.code_bits, "chunks": len(opened),
            "payload_bytes": payload, "bytes_per_vector": payload / tokens,
            "bytes_per_vector_formula": (nbits * dim + codec.code_bits) / 8}
    save_json(out / "meta.json", meta)
    index_bytes = sum(p.stat().st_size for p in [*(out / name for name in FILES), *(out / "chunks").iterdir()])
    return {**meta, "index_bytes": index_bytes, "chunks_compressed": compressed, "chunks_reused": reused}

