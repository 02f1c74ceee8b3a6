"""PLAID: a compressed late-interaction index over token embeddings, and its staged search.

Encoders write documents' token vectors as `TokenShard`s (`write_shard`); `build_index` compresses
shards into an index folder the way ColBERTv2 does, and `PlaidIndex` searches it the way PLAID does.

Compression (ColBERTv2's residual codec). k-means (faiss, on GPU when faiss has one) over a
fixed-seed sample of token vectors drawn across all shards gives |C| centroids, L2-normalised.
A vector is stored as the id of its nearest centroid (inner product) plus its residual ``v - c``
quantised to ``nbits`` (1, 2 or 4) per dimension. The 2^nbits buckets are cut at the
1/2^nbits, …, (2^nbits - 1)/2^nbits quantiles of the residuals of a held-out part of the sample
(all dimensions pooled), and a bucket decodes to the quantile at its middle, as colbert-ai's
ResidualCodec does. A decompressed vector is ``normalise(c + weights[buckets])``. Each vector
costs ``nbits·dim`` bits of residual and ``⌈log2 |C|⌉`` bits of centroid id, both bit-packed.

Search (PLAID). For a query ``Q`` (``[Lq, dim]``): centroid scores ``S = C·Qᵀ``; candidates are the
documents in the inverted lists of each query token's ``nprobe`` best centroids; candidates are
ranked by a MaxSim over centroid scores in which tokens whose centroid scores below
``centroid_score_threshold`` for every query token are dropped, ``ndocs`` are kept; these are
ranked by the unpruned centroid MaxSim and ``ndocs / 4`` kept; their residuals are decompressed
and scored by exact MaxSim (sum over query tokens of the best inner product over document
tokens). Stage sizes below ``k`` are raised to ``k``. Ties rank the lower document position first.

Files in an index folder (``.npy`` files are plain numpy arrays; every file is written to a
temporary name and renamed, so a file that exists is complete):

    codec.json                 nbits, dim, centroids, code_bits, cutoffs, weights, the settings and data
                               fingerprint it was trained with, and its hash
    centroids.npy              float32 [|C|, dim], unit rows
    chunks/NNNNN.codes.npy     uint8: shard NNNNN's centroid ids, code_bits each, packed big-endian
    chunks/NNNNN.residuals.npy uint8 [tokens, nbits·dim/8]: bucket ids, the first dimension in the
                               high bits of the first byte
    chunks/NNNNN.json          the chunk's shard fingerprint, codec hash and offsets; written after
                               its arrays, so a chunk with this file is finished
    doclens.npy                int64 [documents]: tokens per document; documents are numbered by
                               concatenating the shards in the order given
    ivf.npy                    int32 (int64 from 2^31 documents): document positions grouped by
                               centroid, ascending within each list
    ivf_lengths.npy            int64 [|C|]: the length of each centroid's list in ivf.npy
    meta.json                  counts, sizes and bytes per vector; written last, marks a finished index

Builds resume: the codec and every chunk whose json matches (same shard contents, same codec) are
kept, the other chunks are compressed again, one shard in memory at a time (shards are read with
``mmap``). Merging (doclens, inverted lists) is redone on each run and gives identical files.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import torch

from harness.files import atomic_write

NBITS = (1, 2, 4)
"""Residual bits per dimension that the codec supports."""
DEFAULT_SAMPLE = 1 << 21
"""Token vectors sampled for k-means and the bucket quantiles."""
MIN_POINTS_PER_CENTROID = 4
"""The default centroid count is capped so that k-means has at least this many points per centroid."""
HELDOUT_FRACTION, HELDOUT_MAX = 0.05, 50_000
"""Part of the sample kept out of k-means to estimate bucket cutoffs and weights (as colbert-ai)."""
SCORE_BUDGET = 1 << 22
"""Most float32 values (tokens × centroids, tokens × query tokens, tokens × dim) in one block."""
QUERY_GROUP_TOKENS = 1024
"""Most query tokens scored together by `PlaidIndex.exhaustive`."""
CODE_BLOCK = 1 << 20
"""Centroid ids bit-packed or unpacked at a time (a multiple of 8, so blocks are byte-aligned)."""
FINGERPRINT_ROWS = 64
"""Evenly spaced rows of a shard hashed into its fingerprint (with its shape and doclens)."""
OPEN_CHUNKS = 64
"""Residual files an open index keeps memory-mapped at once (each map holds a file descriptor)."""
FORMAT = "plaid-v1"
FILES = ("codec.json", "centroids.npy", "doclens.npy", "ivf.npy", "ivf_lengths.npy", "meta.json")
"""The index's files besides the chunks folder."""


@dataclass(frozen=True)
class TokenShard:
    """One shard of encoded documents as written by the encoder: token vectors and per-doc lengths."""

    embeddings: Path
    """.npy, float16, [n_tokens, dim]: L2-normalised token vectors, each document's contiguous."""
    doclens: Path
    """.npy, integer, [n_docs]: tokens per document, summing to n_tokens."""


def write_shard(folder: Path, embeddings: np.ndarray, doclens: np.ndarray) -> TokenShard:
    """Write ``embeddings`` (as float16) and ``doclens`` into ``folder`` atomically; checks them first."""
    embeddings, doclens = np.asarray(embeddings), np.asarray(doclens)
    if embeddings.ndim != 2 or not np.issubdtype(embeddings.dtype, np.floating):
        raise ValueError(f"embeddings must be a 2-D float array, got {embeddings.dtype} {embeddings.shape}")
    check_doclens(doclens, len(embeddings), "doclens")
    shard = TokenShard(Path(folder) / "embeddings.npy", Path(folder) / "doclens.npy")
    save_npy(shard.embeddings, embeddings.astype(np.float16, copy=False))
    save_npy(shard.doclens, doclens.astype(np.int64, copy=False))
    return shard


def check_doclens(doclens: np.ndarray, n_tokens: int, where: str) -> None:
    """Raise unless ``doclens`` is a non-empty 1-D integer array of positive lengths summing to ``n_tokens``."""
    if doclens.ndim != 1 or not np.issubdtype(doclens.dtype, np.integer):
        raise ValueError(f"{where}: doclens must be a 1-D integer array, got {doclens.dtype} {doclens.shape}")
    if len(doclens) == 0:
        raise ValueError(f"{where}: empty shard (no documents)")
    if doclens.min() < 1:
        raise ValueError(f"{where}: every document needs at least one token (min doclen {doclens.min()})")
    if int(doclens.sum()) != n_tokens:
        raise ValueError(f"{where}: doclens sum to {int(doclens.sum())} but the embeddings have {n_tokens} tokens")


def save_npy(path: Path, array: np.ndarray) -> None:
    """``np.save`` to ``path`` atomically."""
    with atomic_write(path, "wb") as f:
        np.save(f, array)


def save_json(path: Path, value: Any) -> None:
    with atomic_write(path, encoding="utf-8") as f:
        json.dump(value, f, indent=1, sort_keys=True)


def resolve_device(device: str) -> torch.device:
    """``auto``: cuda when torch sees one, else cpu."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


# -- shards ---------------------------------------------------------------------------------------


@dataclass
class _Shard:
    """A checked shard: its doclens, vector shape and offsets in the collection."""

    source: TokenShard
    shape: tuple[int, int]
    dtype: np.dtype
    doclens: np.ndarray
    first_doc: int
    first_token: int

    @property
    def tokens(self) -> int:
        return self.shape[0]

    def vectors(self) -> np.ndarray:
        """The token vectors, memory-mapped (opened on demand: a map holds a file descriptor)."""
        return np.load(self.source.embeddings, mmap_mode="r")

    def fingerprint(self) -> str:
        """Shape, dtype, doclens and a few evenly spaced rows: changes when the shard is re-encoded."""
        h = hashlib.sha256(f"{self.shape}\0{self.dtype}\0".encode())
        h.update(self.doclens.astype(np.int64).tobytes())
        rows = np.unique(np.linspace(0, self.tokens - 1, FINGERPRINT_ROWS).astype(np.int64))
        h.update(np.ascontiguousarray(self.vectors()[rows]).tobytes())
        return h.hexdigest()


def _open_shards(shards: Sequence[TokenShard]) -> list[_Shard]:
    """Open and check every shard: 2-D float vectors of one dimension, doclens matching them."""
    if not shards:
        raise ValueError("no shards given")
    opened, first_doc, first_token, dim = [], 0, 0, None
    for shard in shards:
        embeddings = np.load(shard.embeddings, mmap_mode="r")
        if embeddings.ndim != 2 or not np.issubdtype(embeddings.dtype, np.floating):
            raise ValueError(f"{shard.embeddings}: expected a 2-D float array, "
                             f"got {embeddings.dtype} {embeddings.shape}")
        doclens = np.load(shard.doclens)
        check_doclens(doclens, len(embeddings), str(shard.doclens))
        if dim is None:
            dim = embeddings.shape[1]
        elif embeddings.shape[1] != dim:
            raise ValueError(f"{shard.embeddings}: dimension {embeddings.shape[1]}, but earlier shards have {dim}")
        opened.append(_Shard(shard, embeddings.shape, embeddings.dtype, doclens.astype(np.int64), first_doc,
                             first_token))
        first_doc += len(doclens)
        first_token += len(embeddings)
    return opened


def _floats(rows: np.ndarray, device: torch.device) -> torch.Tensor:
    """Rows of a (memory-mapped) float array as float32 on ``device``, converted there."""
    return torch.from_numpy(np.array(rows)).to(device).float()


def _doc_blocks(doclens: np.ndarray, max_tokens: int) -> Iterator[tuple[int, int, int, int]]:
    """Consecutive runs of documents ``(doc_start, doc_end, token_start, token_end)`` of about
    ``max_tokens`` tokens each (a longer document is a run of its own)."""
    ends = np.cumsum(doclens)
    doc, token = 0, 0
    while doc < len(doclens):
        end = max(doc + 1, int(np.searchsorted(ends, token + max_tokens, side="right")))
        yield doc, end, token, int(ends[end - 1])
        doc, token = end, int(ends[end - 1])


# -- codec ----------------------------------------------------------------------------------------


def default_centroids(n_tokens: int, n_train: int) -> int:
    """colbert-ai's rule, 2^⌊log2(16·√n_tokens)⌋, capped at the largest power of two with
    `MIN_POINTS_PER_CENTROID` training points per centroid; at least 1."""
    rule = 2 ** math.floor(math.log2(16 * math.sqrt(n_tokens)))
    cap = 2 ** math.floor(math.log2(max(1, n_train // MIN_POINTS_PER_CENTROID)))
    return max(1, min(rule, cap))


def code_bits(n_centroids: int) -> int:
    """Bits per centroid id: ⌈log2 |C|⌉."""
    return math.ceil(math.log2(n_centroids)) if n_centroids > 1 else 0


def _sample(shards: list[_Shard], size: int, seed: int) -> np.ndarray:
    """``size`` token vectors (all when there are fewer) drawn uniformly across shards, float32."""
    total = shards[-1].first_token + shards[-1].tokens
    if size >= total:
        rows = np.arange(total)
    else:
        rows = np.sort(np.random.default_rng(seed).choice(total, size, replace=False))
    parts = []
    for shard in shards:
        a, b = np.searchsorted(rows, [shard.first_token, shard.first_token + shard.tokens])
        parts.append(np.asarray(shard.vectors()[rows[a:b] - shard.first_token], dtype=np.float32))
    return np.concatenate(parts)


@dataclass
class Codec:
    """Centroids and the residual quantiser."""

    centroids: np.ndarray
    cutoffs: np.ndarray
    weights: np.ndarray
    nbits: int

    @property
    def dim(self) -> int:
        return self.centroids.shape[1]

    @property
    def code_bits(self) -> int:
        return code_bits(len(self.centroids))

    def digest(self) -> str:
        h = hashlib.sha256(self.centroids.tobytes())
        h.update(self.cutoffs.astype(np.float32).tobytes() + self.weights.astype(np.float32).tobytes())
        h.update(str(self.nbits).encode())
        return h.hexdigest()


def train_codec(shards: list[_Shard], nbits: int, n_centroids: int | None, sample: int, kmeans_iters: int,
                seed: int, device: torch.device) -> Codec:
    """k-means centroids on a sample and bucket cutoffs/weights from its held-out residuals."""
    vectors = _sample(shards, sample, seed)
    order = np.random.default_rng(seed + 1).permutation(len(vectors))
    n_heldout = min(HELDOUT_MAX, int(len(vectors) * HELDOUT_FRACTION))
    if n_heldout:
        heldout, train = vectors[order[:n_heldout]], vectors[np.sort(order[n_heldout:])]
    else:  # too few vectors to hold any out
        heldout = train = vectors
    n_tokens = shards[-1].first_token + shards[-1].tokens
    k = default_centroids(n_tokens, len(train)) if n_centroids is None else n_centroids
    if not 1 <= k <= len(train):
        raise ValueError(f"n_centroids={k} needs between 1 and {len(train)} (the k-means sample) centroids")
    kmeans = faiss.Kmeans(train.shape[1], k, niter=kmeans_iters, seed=seed, verbose=False,
                          gpu=device.type == "cuda" and faiss.get_num_gpus() > 0)
    kmeans.train(np.ascontiguousarray(train))
    centroids = kmeans.centroids.astype(np.float32)
    centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
    c = torch.from_numpy(centroids).to(device)
    residuals, step = [], max(1, SCORE_BUDGET // k)
    for start in range(0, len(heldout), step):
        v = torch.from_numpy(heldout[start : start + step]).to(device)
        residuals.append((v - c[(v @ c.T).argmax(1)]).cpu().numpy())
    residuals = np.concatenate(residuals).ravel()
    levels = 2**nbits
    cutoffs = np.quantile(residuals, np.arange(1, levels) / levels).astype(np.float32)
    weights = np.quantile(residuals, (np.arange(levels) + 0.5) / levels).astype(np.float32)
    return Codec(centroids, cutoffs, weights, nbits)


def _codec_record(codec: Codec, settings: dict[str, Any]) -> dict[str, Any]:
    return {"nbits": codec.nbits, "dim": codec.dim, "centroids": len(codec.centroids), "code_bits": codec.code_bits,
            "cutoffs": [float(x) for x in codec.cutoffs], "weights": [float(x) for x in codec.weights],
            "settings": settings, "digest": codec.digest()}


def _load_codec(folder: Path) -> tuple[Codec, dict[str, Any]]:
    record = json.loads((folder / "codec.json").read_text(encoding="utf-8"))
    codec = Codec(np.load(folder / "centroids.npy"), np.asarray(record["cutoffs"], np.float32),
                  np.asarray(record["weights"], np.float32), record["nbits"])
    return codec, record


def _shift_table(nbits: int) -> torch.Tensor:
    """Bit shifts of the values packed in one byte, first value in the high bits."""
    per_byte = 8 // nbits
    return torch.arange(per_byte - 1, -1, -1, dtype=torch.int64) * nbits


def pack_residuals(buckets: torch.Tensor, nbits: int) -> torch.Tensor:
    """Bucket ids ``[n, dim]`` (< 2^nbits) packed into ``[n, dim·nbits/8]`` bytes."""
    n, dim = buckets.shape
    shifts = _shift_table(nbits).to(buckets.device)
    return (buckets.long().view(n, dim * nbits // 8, 8 // nbits) << shifts).sum(-1).to(torch.uint8)


def byte_table(weights: torch.Tensor, nbits: int) -> torch.Tensor:
    """``[256, 8/nbits]``: the decoded residual values of every possible packed byte."""
    shifts = _shift_table(nbits).to(weights.device)
    byte = torch.arange(256, device=weights.device)[:, None]
    return weights[(byte >> shifts) & (2**nbits - 1)]


def pack_codes(codes: np.ndarray, bits: int) -> np.ndarray:
    """Centroid ids packed into ``bits`` bits each, big-endian, in ⌈len·bits/8⌉ bytes."""
    if bits == 0:
        return np.zeros(0, np.uint8)
    shifts = np.arange(bits - 1, -1, -1, dtype=np.uint32)
    parts = [np.packbits(((codes[s : s + CODE_BLOCK, None].astype(np.uint32) >> shifts) & 1).astype(np.uint8).ravel())
             for s in range(0, len(codes), CODE_BLOCK)]
    return np.concatenate(parts) if parts else np.zeros(0, np.uint8)


def unpack_codes(packed: np.ndarray, bits: int, n: int) -> np.ndarray:
    """Inverse of `pack_codes`: ``n`` centroid ids as int32."""
    out = np.zeros(n, np.int32)
    if bits == 0:
        return out
    place = (1 << np.arange(bits - 1, -1, -1)).astype(np.int32)
    for start in range(0, n, CODE_BLOCK):
        end = min(n, start + CODE_BLOCK)
        raw = np.unpackbits(packed[start * bits // 8 : -(-end * bits // 8)], count=(end - start) * bits)
        out[start:end] = raw.reshape(-1, bits).astype(np.int32) @ place
    return out


# -- build ----------------------------------------------------------------------------------------


def _chunk_paths(out: Path, i: int) -> tuple[Path, Path, Path]:
    folder = out / "chunks"
    return folder / f"{i:05d}.codes.npy", folder / f"{i:05d}.residuals.npy", folder / f"{i:05d}.json"


def _npy_shape(path: Path) -> tuple[tuple[int, ...], np.dtype] | None:
    """Shape and dtype from an .npy header, or None if the file is missing or unreadable."""
    try:
        array = np.load(path, mmap_mode="r")
    except (OSError, ValueError):
        return None
    return array.shape, array.dtype


def _chunk_record(shard: _Shard, codec_digest: str) -> dict[str, Any]:
    return {"shard": shard.fingerprint(), "codec": codec_digest, "documents": len(shard.doclens),
            "tokens": shard.tokens, "first_document": shard.first_doc, "first_token": shard.first_token}


def _chunk_done(out: Path, i: int, record: dict[str, Any], codec: Codec) -> bool:
    """Whether chunk ``i`` is finished and was made from this shard with this codec."""
    codes, residuals, facts = _chunk_paths(out, i)
    try:
        if json.loads(facts.read_text(encoding="utf-8")) != record:
            return False
    except (OSError, ValueError):
        return False
    n = record["tokens"]
    return (_npy_shape(codes) == ((-(-n * codec.code_bits // 8),), np.dtype(np.uint8))
            and _npy_shape(residuals) == ((n, codec.dim * codec.nbits // 8), np.dtype(np.uint8)))


def _compress_chunk(out: Path, i: int, shard: _Shard, codec: Codec, device: torch.device) -> None:
    """Compress one shard into chunk ``i``: arrays first (each atomically), then its json."""
    codes_path, residuals_path, _ = _chunk_paths(out, i)
    centroids = torch.from_numpy(codec.centroids).to(device)
    cutoffs = torch.from_numpy(codec.cutoffs).to(device)
    codes = np.empty(shard.tokens, np.int32)
    vectors = shard.vectors()
    residuals_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=residuals_path.parent, prefix=f".{residuals_path.name}.")
    os.close(fd)
    try:
        residuals = np.lib.format.open_memmap(tmp, "w+", np.uint8, (shard.tokens, codec.dim * codec.nbits // 8))
        step = max(256, SCORE_BUDGET // max(len(codec.centroids), codec.dim))
        for start in range(0, shard.tokens, step):
            v = _floats(vectors[start : start + step], device)
            code = (v @ centroids.T).argmax(1)
            buckets = torch.bucketize(v - centroids[code], cutoffs)
            residuals[start : start + len(v)] = pack_residuals(buckets, codec.nbits).cpu().numpy()
            codes[start : start + len(v)] = code.cpu().numpy()
        residuals.flush()
        del residuals
        os.chmod(tmp, 0o644)
        os.replace(tmp, residuals_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    save_npy(codes_path, pack_codes(codes, codec.code_bits))


def _chunk_lists(codes: np.ndarray, doclens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A chunk's inverted lists: (centroid, local document) pairs, each once, sorted; as two arrays."""
    docs = np.repeat(np.arange(len(doclens), dtype=np.int64), doclens)
    keys = np.unique(codes.astype(np.int64) * len(doclens) + docs)
    return keys // len(doclens), keys % len(doclens)


def _write_ivf(out: Path, shards: list[_Shard], codec: Codec) -> None:
    """ivf.npy and ivf_lengths.npy from the chunks' codes, one chunk in memory at a time."""
    k, n_docs = len(codec.centroids), shards[-1].first_doc + len(shards[-1].doclens)

    def lists(i: int, shard: _Shard) -> tuple[np.ndarray, np.ndarray]:
        codes = unpack_codes(np.load(_chunk_paths(out, i)[0]), codec.code_bits, shard.tokens)
        return _chunk_lists(codes, shard.doclens)

    lengths = np.zeros(k, np.int64)
    for i, shard in enumerate(shards):
        lengths += np.bincount(lists(i, shard)[0], minlength=k)
    fd, tmp = tempfile.mkstemp(dir=out, prefix=".ivf.npy.")
    os.close(fd)
    try:
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
        os.chmod(tmp, 0o644)
        os.replace(tmp, out / "ivf.npy")
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    save_npy(out / "ivf_lengths.npy", lengths.astype(np.int64))


def build_index(shards: Sequence[TokenShard], out: Path, nbits: int, n_centroids: int | None = None,
                sample: int = DEFAULT_SAMPLE, kmeans_iters: int = 20, seed: int = 0,
                device: str = "auto") -> dict[str, Any]:
    """Build (or finish building) a PLAID index of ``shards`` in ``out``; return facts about it.

    ``n_centroids`` None: colbert-ai's rule (see `default_centroids`). Documents are numbered by
    concatenating the shards in order. Chunks already compressed from the same shard contents
    with the same codec are kept (the facts count them as ``chunks_reused``).
    """
    if nbits not in NBITS:
        raise ValueError(f"nbits must be one of {NBITS}, got {nbits}")
    if sample < 1 or kmeans_iters < 1:
        raise ValueError(f"sample ({sample}) and kmeans_iters ({kmeans_iters}) must be positive")
    opened = _open_shards(shards)
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
        codec, record = _load_codec(out)
        if record["settings"] != settings or record["digest"] != codec.digest():
            codec = None
    except (OSError, ValueError, KeyError):
        pass
    if codec is None:
        codec = train_codec(opened, nbits, n_centroids, sample, kmeans_iters, seed, torch_device)
        save_npy(out / "centroids.npy", codec.centroids)
        save_json(out / "codec.json", _codec_record(codec, settings))
    digest = codec.digest()

    compressed = reused = 0
    for i, shard in enumerate(opened):
        record = _chunk_record(shard, digest)
        if _chunk_done(out, i, record, codec):
            reused += 1
            continue
        _chunk_paths(out, i)[2].unlink(missing_ok=True)
        _compress_chunk(out, i, shard, codec, torch_device)
        save_json(_chunk_paths(out, i)[2], record)
        compressed += 1
    for path in (out / "chunks").glob("*"):  # chunks of an earlier build with more shards
        if not path.name[:5].isdigit() or int(path.name[:5]) >= len(opened):
            path.unlink()

    save_npy(out / "doclens.npy", np.concatenate([s.doclens for s in opened]))
    _write_ivf(out, opened, codec)
    tokens = sum(s.tokens for s in opened)
    payload = sum(np.load(_chunk_paths(out, i)[j], mmap_mode="r").nbytes for i in range(len(opened)) for j in (0, 1))
    meta = {"format": FORMAT, "documents": sum(len(s.doclens) for s in opened), "tokens": tokens, "dim": dim,
            "nbits": nbits, "centroids": len(codec.centroids), "code_bits": codec.code_bits, "chunks": len(opened),
            "payload_bytes": payload, "bytes_per_vector": payload / tokens,
            "bytes_per_vector_formula": (nbits * dim + codec.code_bits) / 8}
    save_json(out / "meta.json", meta)
    index_bytes = sum(p.stat().st_size for p in [*(out / name for name in FILES), *(out / "chunks").iterdir()])
    return {**meta, "index_bytes": index_bytes, "chunks_compressed": compressed, "chunks_reused": reused}


# -- search ---------------------------------------------------------------------------------------


def _ranges(starts: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The concatenation of ``arange(s, s + n)`` over ``(s, n)`` pairs."""
    total = int(lengths.sum())
    segment = torch.repeat_interleave(torch.arange(len(lengths), device=lengths.device), lengths, output_size=total)
    return torch.arange(total, device=lengths.device) - (lengths.cumsum(0) - lengths)[segment] + starts[segment]


def _best(scores: torch.Tensor, n: int) -> torch.Tensor:
    """Indices of the ``n`` highest scores, best first; equal scores keep their order."""
    if n < len(scores):
        kth = torch.topk(scores, n).values[-1]
        keep = torch.nonzero(scores >= kth).squeeze(1)
    else:
        keep = torch.arange(len(scores), device=scores.device)
    return keep[torch.sort(scores[keep], descending=True, stable=True).indices][:n]


def _maxsim(token_scores: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``[tokens, Lq]`` scores of consecutive documents of ``lengths`` → each document's sum over
    query tokens of its best token."""
    return torch.segment_reduce(token_scores, "max", lengths=lengths, axis=0, unsafe=True).sum(1)


class PlaidIndex:
    """An open PLAID index: codec, centroid ids and inverted lists in memory (on ``device``),
    residuals memory-mapped."""

    def __init__(self, folder: Path, device: torch.device) -> None:
        self.folder, self.device = folder, device
        try:
            self.meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ValueError(f"{folder}: no finished PLAID index (meta.json missing)") from None
        if self.meta.get("format") != FORMAT:
            raise ValueError(f"{folder}: index format {self.meta.get('format')!r}, expected {FORMAT!r}")
        codec, _ = _load_codec(folder)
        self.dim, self.nbits, self.n_centroids = codec.dim, codec.nbits, len(codec.centroids)
        self.doclens = np.load(folder / "doclens.npy")
        self.n_docs = len(self.doclens)
        chunks = [json.loads(_chunk_paths(folder, i)[2].read_text(encoding="utf-8"))
                  for i in range(self.meta["chunks"])]
        self.chunk_first_token = np.array([c["first_token"] for c in chunks] + [self.meta["tokens"]], np.int64)
        self.chunk_first_doc = np.array([c["first_document"] for c in chunks] + [self.n_docs], np.int64)
        codes = [unpack_codes(np.load(_chunk_paths(folder, i)[0]), codec.code_bits, c["tokens"])
                 for i, c in enumerate(chunks)]
        self.residuals = functools.lru_cache(maxsize=OPEN_CHUNKS)(self._open_residuals)
        self.centroids = torch.from_numpy(codec.centroids).to(device)
        self.codes = torch.from_numpy(np.concatenate(codes)).to(device)
        self.doclens_t = torch.from_numpy(self.doclens.astype(np.int64)).to(device)
        self.offsets_t = self.doclens_t.cumsum(0) - self.doclens_t
        self.ivf = torch.from_numpy(np.load(folder / "ivf.npy")).to(device)
        self.ivf_lengths = torch.from_numpy(np.load(folder / "ivf_lengths.npy")).to(device)
        self.ivf_offsets = self.ivf_lengths.cumsum(0) - self.ivf_lengths
        self.table = byte_table(torch.from_numpy(codec.weights).to(device), codec.nbits)

    @classmethod
    def open(cls, folder: Path, device: str = "auto") -> PlaidIndex:
        """Open the index in ``folder``; ``auto``: cuda when torch sees one."""
        return cls(Path(folder), resolve_device(device))

    # decompression

    def _open_residuals(self, chunk: int) -> np.ndarray:
        return np.load(_chunk_paths(self.folder, chunk)[1], mmap_mode="r")

    def _residual_rows(self, tokens: np.ndarray) -> np.ndarray:
        """Packed residuals of global token numbers ``tokens`` (read from the chunks' memory maps)."""
        order = np.argsort(tokens, kind="stable")
        ordered = tokens[order]
        bounds = np.searchsorted(ordered, self.chunk_first_token)
        out = np.empty((len(tokens), self.dim * self.nbits // 8), np.uint8)
        for c in np.flatnonzero(np.diff(bounds)):
            part = slice(bounds[c], bounds[c + 1])
            out[order[part]] = self.residuals(c)[ordered[part] - self.chunk_first_token[c]]
        return out

    def _decode(self, codes: torch.Tensor, packed: np.ndarray) -> torch.Tensor:
        """Vectors from centroid ids and packed residuals: normalise(centroid + residual)."""
        packed_t = torch.from_numpy(packed).to(self.device).view(-1).int()
        vectors = torch.index_select(self.centroids, 0, codes.int())
        vectors += torch.index_select(self.table, 0, packed_t).view(len(packed), self.dim)
        return vectors / torch.linalg.vector_norm(vectors, dim=-1, keepdim=True).clamp_min(1e-12)

    def _vectors(self, pids: torch.Tensor) -> torch.Tensor:
        """Decompressed token vectors of documents ``pids`` (in that order), ``[tokens, dim]``."""
        tokens = _ranges(self.offsets_t[pids], self.doclens_t[pids])
        return self._decode(torch.index_select(self.codes, 0, tokens), self._residual_rows(tokens.cpu().numpy()))

    def decompress(self, doc_positions: Sequence[int] | np.ndarray) -> list[np.ndarray]:
        """Each document's decompressed token vectors, float32 ``[len, dim]``."""
        pids = self._positions(doc_positions)
        if len(pids) == 0:
            return []
        vectors = self._vectors(pids).cpu().numpy()
        return np.split(vectors, np.cumsum(self.doclens[pids.cpu().numpy()])[:-1])

    def _positions(self, doc_positions: Sequence[int] | np.ndarray) -> torch.Tensor:
        pids = np.asarray(doc_positions, dtype=np.int64).reshape(-1)
        if len(pids) and (pids.min() < 0 or pids.max() >= self.n_docs):
            raise IndexError(f"document positions must be in [0, {self.n_docs})")
        return torch.from_numpy(pids).to(self.device)

    # scoring

    def _batches(self, pids: torch.Tensor, width: int) -> Iterator[torch.Tensor]:
        """``pids`` in consecutive groups of about `SCORE_BUDGET` / ``width`` tokens."""
        lengths = self.doclens_t[pids]
        group = (lengths.cumsum(0) - lengths) // max(1, SCORE_BUDGET // max(width, self.dim))
        yield from torch.split(pids, torch.unique_consecutive(group, return_counts=True)[1].tolist())

    def _centroid_maxsim(self, pids: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """MaxSim of documents ``pids`` with each token replaced by its centroid's row of ``table`` [|C|, Lq]."""
        out = [torch.empty(0, device=self.device)]
        for batch in self._batches(pids, table.shape[1]):
            lengths = self.doclens_t[batch]
            tokens = _ranges(self.offsets_t[batch], lengths)
            out.append(_maxsim(torch.index_select(table, 0, torch.index_select(self.codes, 0, tokens)), lengths))
        return torch.cat(out)

    def _exact_maxsim(self, pids: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        """MaxSim of documents ``pids`` on their decompressed vectors."""
        out = [torch.empty(0, device=self.device)]
        for batch in self._batches(pids, len(query)):
            out.append(_maxsim(self._vectors(batch) @ query.T, self.doclens_t[batch]))
        return torch.cat(out)

    def _query(self, query: np.ndarray) -> torch.Tensor:
        q = np.asarray(query, dtype=np.float32)
        if q.ndim != 2 or q.shape[1] != self.dim or len(q) == 0:
            raise ValueError(f"a query must be a non-empty [tokens, {self.dim}] array, got shape {q.shape}")
        return torch.from_numpy(q).to(self.device)

    def search(self, queries: Sequence[np.ndarray], k: int, nprobe: int = 2, centroid_score_threshold: float = 0.5,
               ndocs: int = 256) -> list[tuple[np.ndarray, np.ndarray]]:
        """PLAID's staged search; per query (doc positions int64, scores float32), best first, at most ``k``."""
        if k < 1 or nprobe < 1 or ndocs < 1:
            raise ValueError(f"k ({k}), nprobe ({nprobe}) and ndocs ({ndocs}) must be positive")
        with torch.inference_mode():
            return [self._search_one(self._query(q), k, min(nprobe, self.n_centroids), centroid_score_threshold,
                                     ndocs) for q in queries]

    def _search_one(self, query: torch.Tensor, k: int, nprobe: int, threshold: float,
                    ndocs: int) -> tuple[np.ndarray, np.ndarray]:
        scores = self.centroids @ query.T                                       # [|C|, Lq]
        cells = torch.unique(torch.topk(scores, nprobe, dim=0).indices)
        pids = torch.unique(self.ivf[_ranges(self.ivf_offsets[cells], self.ivf_lengths[cells])].long())
        if len(pids) == 0:  # only empty lists probed
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        pruned = scores.masked_fill(scores.amax(1, keepdim=True) < threshold, float("-inf"))
        pids = torch.sort(pids[_best(self._centroid_maxsim(pids, pruned), max(ndocs, k))]).values
        pids = torch.sort(pids[_best(self._centroid_maxsim(pids, scores), max(ndocs // 4, k))]).values
        exact = self._exact_maxsim(pids, query)
        best = _best(exact, k)
        return pids[best].cpu().numpy(), exact[best].float().cpu().numpy()

    def exhaustive(self, queries: Sequence[np.ndarray], k: int,
                   shards: Sequence[TokenShard] | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """Exact MaxSim over every document: on the original vectors of ``shards`` (the index's own,
        in order), else on decompressed vectors. Same results shape as `search`."""
        if k < 1:
            raise ValueError(f"k must be positive, got {k}")
        with torch.inference_mode():
            encoded = [self._query(q) for q in queries]
            if not encoded:
                return []
            groups, size = [[]], 0
            for i, q in enumerate(encoded):
                if groups[-1] and size + len(q) > QUERY_GROUP_TOKENS:
                    groups.append([])
                    size = 0
                groups[-1].append(i)
                size += len(q)
            width = max(sum(len(encoded[i]) for i in group) for group in groups)
            best = [(torch.empty(0, dtype=torch.long, device=self.device), torch.empty(0, device=self.device))
                    for _ in encoded]
            for first_doc, lengths, vectors in self._all_vectors(shards, max(1, SCORE_BUDGET // max(width, self.dim))):
                for group in groups:
                    token_scores = vectors @ torch.cat([encoded[i] for i in group]).T
                    per_doc = torch.segment_reduce(token_scores, "max", lengths=lengths, axis=0, unsafe=True)
                    for i, block in zip(group, torch.split(per_doc, [len(encoded[i]) for i in group], dim=1)):
                        sums = block.sum(1)
                        top = _best(sums, k)
                        pids = torch.cat([best[i][0], top + first_doc])
                        merged = torch.cat([best[i][1], sums[top]])
                        keep = _best(merged, k)
                        best[i] = (pids[keep], merged[keep])
            return [(p.cpu().numpy(), s.float().cpu().numpy()) for p, s in best]

    def _all_vectors(self, shards: Sequence[TokenShard] | None,
                     max_tokens: int) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
        """Every document in order, in blocks: (first doc position, doclens, float32 token vectors)."""
        if shards is not None:
            opened = _open_shards(shards)
            doclens = np.concatenate([s.doclens for s in opened])
            if opened[0].shape[1] != self.dim or not np.array_equal(doclens, self.doclens):
                raise ValueError("the shards given are not the ones this index was built from "
                                 "(dimension or document lengths differ)")
            for shard in opened:
                vectors = shard.vectors()
                for d0, d1, t0, t1 in _doc_blocks(shard.doclens, max_tokens):
                    yield shard.first_doc + d0, self.doclens_t[shard.first_doc + d0 : shard.first_doc + d1], \
                        _floats(vectors[t0:t1], self.device)
            return
        bounds = self.chunk_first_doc
        for c in range(len(bounds) - 1):
            residuals = self.residuals(c)
            first_doc, first_token = int(bounds[c]), int(self.chunk_first_token[c])
            for d0, d1, t0, t1 in _doc_blocks(self.doclens[bounds[c] : bounds[c + 1]], max_tokens):
                codes = self.codes[first_token + t0 : first_token + t1]
                yield first_doc + d0, self.doclens_t[first_doc + d0 : first_doc + d1], \
                    self._decode(codes, np.array(residuals[t0:t1]))
