"""Token shards: the encoded documents an index is built from, as encoders write them and as the
index opens them (checked, memory-mapped, with their offsets in the collection)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness.files import atomic_write
from harness.training import loop

SCORE_BUDGET = 1 << 22
"""Most float32 values (tokens × centroids, tokens × query tokens, tokens × dim) in one block."""
FINGERPRINT_ROWS = 64
"""Evenly spaced rows of a shard hashed into its fingerprint (with its shape and doclens)."""


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
    """``auto``: cuda when torch sees one, else cpu (`harness.training.loop.device`)."""
    return torch.device(loop.device(device))



@dataclass
class OpenShard:
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


def open_shards(shards: Sequence[TokenShard]) -> list[OpenShard]:
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
        opened.append(OpenShard(shard, embeddings.shape, embeddings.dtype, doclens.astype(np.int64), first_doc,
                             first_token))
        first_doc += len(doclens)
        first_token += len(embeddings)
    return opened


def floats(rows: np.ndarray, device: torch.device) -> torch.Tensor:
    """Rows of a (memory-mapped) float array as float32 on ``device``, converted there."""
    return torch.from_numpy(np.array(rows)).to(device).float()


def doc_blocks(doclens: np.ndarray, max_tokens: int) -> Iterator[tuple[int, int, int, int]]:
    """Consecutive runs of documents ``(doc_start, doc_end, token_start, token_end)`` of about
    ``max_tokens`` tokens each (a longer document is a run of its own)."""
    ends = np.cumsum(doclens)
    doc, token = 0, 0
    while doc < len(doclens):
        end = max(doc + 1, int(np.searchsorted(ends, token + max_tokens, side="right")))
        yield doc, end, token, int(ends[end - 1])
        doc, token = end, int(ends[end - 1])

