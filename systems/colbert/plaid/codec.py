"""ColBERTv2's residual codec: centroids by k-means and residuals quantised to ``nbits`` per dimension.

k-means (faiss, on GPU when faiss has one) over a fixed-seed sample gives |C| centroids,
L2-normalised. The sample is colbert-ai's by default (`CollectionIndexer._sample_pids`): every token
vector of min(1 + ⌊16·√(120·N)⌋, N) documents drawn without replacement (N documents; 120 is its
"typical doclen"), and |C| = 2^⌊log2(16·√E)⌋ with E = N × the sample's mean doclen (its estimate of
the embeddings); or, when a token count is given, that many token vectors drawn uniformly across
shards, with E the exact token count. |C| is capped only where faiss needs it (a centroid per
training point). A vector is stored as the id of its nearest centroid
(inner product) plus its residual ``v - c`` quantised to ``nbits`` (1, 2 or 4) per dimension. The
2^nbits buckets are cut at the 1/2^nbits, …, (2^nbits - 1)/2^nbits quantiles of the residuals of a
held-out part of the sample (all dimensions pooled), and a bucket decodes to the quantile at its
middle, as colbert-ai's ResidualCodec does. A decompressed vector is ``normalise(c +
weights[buckets])``. Each vector costs ``nbits·dim`` bits of residual and ``⌈log2 |C|⌉`` bits of
centroid id, both bit-packed.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness.device import require_faiss
from systems.colbert.plaid.shards import SCORE_BUDGET, OpenShard

faiss = require_faiss()

NBITS = (1, 2, 4)
"""Residual bits per dimension that the codec supports."""
TYPICAL_DOCLEN = 120
"""colbert-ai's document-sample rule assumes this many tokens per document, whatever the real lengths."""
HELDOUT_FRACTION, HELDOUT_MAX = 0.05, 50_000
"""Part of the sample kept out of k-means to estimate bucket cutoffs and weights (as colbert-ai)."""
CODE_BLOCK = 1 << 20
"""Centroid ids bit-packed or unpacked at a time (a multiple of 8, so blocks are byte-aligned)."""


def default_centroids(n_embeddings: float, n_train: int) -> int:
    """colbert-ai's rule, 2^⌊log2(16·√n_embeddings)⌋, capped at the largest power of two ≤ ``n_train``
    (faiss needs a training point per centroid; colbert-ai would fail there); at least 1."""
    rule = 2 ** math.floor(math.log2(16 * math.sqrt(n_embeddings)))
    cap = 2 ** math.floor(math.log2(max(1, n_train)))
    return max(1, min(rule, cap))


def sampled_documents(n_docs: int) -> int:
    """colbert-ai's k-means sample size in documents: min(1 + ⌊16·√(120·N)⌋, N)."""
    return min(1 + int(16 * math.sqrt(TYPICAL_DOCLEN * n_docs)), n_docs)


def code_bits(n_centroids: int) -> int:
    """Bits per centroid id: ⌈log2 |C|⌉."""
    return math.ceil(math.log2(n_centroids)) if n_centroids > 1 else 0


def _gather(shards: list[OpenShard], rows: np.ndarray) -> np.ndarray:
    """The token vectors at sorted collection positions ``rows``, float32, filled in place (the
    sample is the largest array an index build holds)."""
    out = np.empty((len(rows), shards[0].shape[1]), np.float32)
    for shard in shards:
        a, b = np.searchsorted(rows, [shard.first_token, shard.first_token + shard.tokens])
        out[a:b] = shard.vectors()[rows[a:b] - shard.first_token]
    return out


def _drop_rows(vectors: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``vectors`` without ``rows``, order kept, compacted in place a block at a time (no second
    copy of the sample): the leading rows of ``vectors`` afterwards, as a view."""
    keep = np.ones(len(vectors), bool)
    keep[rows] = False
    kept, step = 0, max(1, SCORE_BUDGET // vectors.shape[1])
    for start in range(0, len(vectors), step):
        block = vectors[start : start + step][keep[start : start + step]]  # a copy, read before written
        vectors[kept : kept + len(block)] = block
        kept += len(block)
    return vectors[:kept]


def _sample(shards: list[OpenShard], size: int | None, seed: int) -> tuple[np.ndarray, float]:
    """The k-means sample and the embedding count the centroid rule uses (module docstring): ``size``
    None, every token of colbert-ai's document sample; else ``size`` token vectors (all when there are
    fewer) drawn uniformly across shards."""
    total = shards[-1].first_token + shards[-1].tokens
    rng = np.random.default_rng(seed)
    if size is None:
        doclens = np.concatenate([s.doclens for s in shards])
        docs = np.sort(rng.choice(len(doclens), sampled_documents(len(doclens)), replace=False))
        starts = np.cumsum(doclens) - doclens
        lengths = doclens[docs]
        rows = np.repeat(starts[docs] - (np.cumsum(lengths) - lengths), lengths) + np.arange(int(lengths.sum()))
        return _gather(shards, rows), len(doclens) * float(lengths.mean())
    rows = np.arange(total) if size >= total else np.sort(rng.choice(total, size, replace=False))
    return _gather(shards, rows), float(total)


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


def train_codec(shards: list[OpenShard], nbits: int, n_centroids: int | None, sample: int | None,
                kmeans_iters: int, seed: int, device: torch.device) -> Codec:
    """k-means centroids on a sample (`_sample`) and bucket cutoffs/weights from its held-out residuals."""
    vectors, n_embeddings = _sample(shards, sample, seed)
    order = np.random.default_rng(seed + 1).permutation(len(vectors))
    n_heldout = min(HELDOUT_MAX, int(len(vectors) * HELDOUT_FRACTION))
    if n_heldout:
        heldout = vectors[order[:n_heldout]]
        train = _drop_rows(vectors, order[:n_heldout])
    else:  # too few vectors to hold any out
        heldout = train = vectors
    k = default_centroids(n_embeddings, len(train)) if n_centroids is None else n_centroids
    if not 1 <= k <= len(train):
        raise ValueError(f"n_centroids={k} needs between 1 and {len(train)} (the k-means sample) centroids")
    kmeans = faiss.Kmeans(train.shape[1], k, niter=kmeans_iters, seed=seed, verbose=False,
                          gpu=device.type == "cuda" and faiss.get_num_gpus() > 0)
    kmeans.train(np.ascontiguousarray(train))
    centroids = kmeans.centroids.astype(np.float32)
    centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
    centroids = centroids.astype(np.float16).astype(np.float32)  # stored in half precision, as colbert-ai
    # stores them: residuals are measured from the values the index keeps
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


def codec_record(codec: Codec, settings: dict[str, Any]) -> dict[str, Any]:
    return {"nbits": codec.nbits, "dim": codec.dim, "centroids": len(codec.centroids), "code_bits": codec.code_bits,
            "cutoffs": [float(x) for x in codec.cutoffs], "weights": [float(x) for x in codec.weights],
            "settings": settings, "digest": codec.digest()}


def load_codec(folder: Path) -> tuple[Codec, dict[str, Any]]:
    record = json.loads((folder / "codec.json").read_text(encoding="utf-8"))
    codec = Codec(np.load(folder / "centroids.npy").astype(np.float32), np.asarray(record["cutoffs"], np.float32),
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

