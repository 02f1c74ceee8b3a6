"""Searching a PLAID index: staged candidate generation and pruning, then exact MaxSim.

For a query ``Q`` (``[Lq, dim]``): centroid scores ``S = C·Qᵀ``; candidates are the documents in the
inverted lists of each query token's ``nprobe`` best centroids; candidates are ranked by a MaxSim
over centroid scores in which tokens whose centroid scores below ``centroid_score_threshold`` for
every query token are dropped, ``ndocs`` are kept; these are ranked by the unpruned centroid MaxSim
and ``ndocs / 4`` kept; their residuals are decompressed and scored by exact MaxSim (sum over query
tokens of the best inner product over document tokens). Stage sizes below ``k`` are raised to
``k``. Ties rank the lower document position first.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from itertools import pairwise
from pathlib import Path

import numpy as np
import torch

from systems.colbert.plaid.build import FORMAT, chunk_paths
from systems.colbert.plaid.codec import byte_table, load_codec, unpack_codes
from systems.colbert.plaid.shards import SCORE_BUDGET, TokenShard, doc_blocks, floats, open_shards, resolve_device

QUERY_GROUP_TOKENS = 1024
"""Most query tokens scored together by `PlaidIndex.exhaustive`."""


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


def _segment_max(token_scores: torch.Tensor, owner: torch.Tensor, n: int) -> torch.Tensor:
    """``[n, Lq]``: per document the best of its rows of ``token_scores`` (``owner``: each row's document
    in ``[0, n)``); ``-inf`` for a document without rows. (A scatter, about twice as fast on CPU as
    ``segment_reduce``, which loops per segment.)"""
    out = torch.full((n, token_scores.shape[1]), float("-inf"), device=token_scores.device)
    return out.scatter_reduce_(0, owner[:, None].expand_as(token_scores), token_scores, "amax")


def _owners(lengths: torch.Tensor, total: int) -> torch.Tensor:
    """Each token's document number, for consecutive documents of ``lengths``."""
    return torch.repeat_interleave(torch.arange(len(lengths), device=lengths.device), lengths, output_size=total)


def _documents_max(token_scores: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """`_segment_max` for rows that are the tokens of consecutive documents of ``lengths``."""
    return _segment_max(token_scores, _owners(lengths, len(token_scores)), len(lengths))


class PlaidIndex:
    """An open PLAID index: codec, centroid ids and inverted lists in memory (on ``device``),
    residuals memory-mapped (on CPU; on CUDA loaded on the device)."""

    def __init__(self, folder: Path, device: torch.device) -> None:
        self.folder, self.device = folder, device
        try:
            self.meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ValueError(f"{folder}: no finished PLAID index (meta.json missing)") from None
        if self.meta.get("format") != FORMAT:
            raise ValueError(f"{folder}: index format {self.meta.get('format')!r}, expected {FORMAT!r}")
        codec, _ = load_codec(folder)
        self.dim, self.nbits, self.n_centroids = codec.dim, codec.nbits, len(codec.centroids)
        self.doclens = np.load(folder / "doclens.npy")
        self.n_docs = len(self.doclens)
        chunks = [json.loads(chunk_paths(folder, i)[2].read_text(encoding="utf-8"))
                  for i in range(self.meta["chunks"])]
        self.chunk_first_token = np.array([c["first_token"] for c in chunks] + [self.meta["tokens"]], np.int64)
        self.chunk_first_doc = np.array([c["first_document"] for c in chunks] + [self.n_docs], np.int64)
        codes = [unpack_codes(np.load(chunk_paths(folder, i)[0]), codec.code_bits, c["tokens"])
                 for i, c in enumerate(chunks)]
        self.residuals = [self._open_residuals(i).to(device) for i in range(len(chunks))]
        self.chunk_first_token_t = torch.from_numpy(self.chunk_first_token).to(device)
        self.centroids = torch.from_numpy(codec.centroids).to(device)
        self.codes = torch.from_numpy(np.concatenate(codes)).to(device)
        self.doclens_t = torch.from_numpy(self.doclens.astype(np.int64)).to(device)
        self.offsets_t = self.doclens_t.cumsum(0) - self.doclens_t
        self.ivf = torch.from_numpy(np.load(folder / "ivf.npy")).to(device)
        self.ivf_lengths = torch.from_numpy(np.load(folder / "ivf_lengths.npy").astype(np.int64)).to(device)
        self.ivf_offsets = self.ivf_lengths.cumsum(0) - self.ivf_lengths
        self.table = byte_table(torch.from_numpy(codec.weights).to(device), codec.nbits)

    @classmethod
    def open(cls, folder: Path, device: str = "auto") -> PlaidIndex:
        """Open the index in ``folder``; ``auto``: cuda when torch sees one."""
        return cls(Path(folder), resolve_device(device))

    # decompression

    def _open_residuals(self, chunk: int) -> torch.Tensor:
        """Chunk ``chunk``'s packed residuals ``[tokens, dim·nbits/8]``, memory-mapped copy-on-write (pages
        are read when first touched; the file is not held open)."""
        path = chunk_paths(self.folder, chunk)[1]
        header = np.load(path, mmap_mode="r")
        if header.size == 0:
            return torch.zeros(header.shape, dtype=torch.uint8)
        mapped = torch.from_file(str(path), shared=False, size=header.offset + header.size, dtype=torch.uint8)
        return mapped[header.offset :].view(header.shape)

    def _residual_rows(self, tokens: torch.Tensor) -> torch.Tensor:
        """Packed residuals of ascending global token numbers ``tokens``."""
        if len(self.residuals) == 1:
            return torch.index_select(self.residuals[0], 0, tokens)
        bounds = torch.searchsorted(tokens, self.chunk_first_token_t).tolist()
        return torch.cat([torch.index_select(self.residuals[c], 0, tokens[a:b] - int(self.chunk_first_token[c]))
                          for c, (a, b) in enumerate(pairwise(bounds)) if b > a])

    def _decode(self, codes: torch.Tensor, packed: torch.Tensor) -> torch.Tensor:
        """Vectors from centroid ids and packed residuals: normalise(centroid + residual)."""
        vectors = torch.index_select(self.centroids, 0, codes.int())
        vectors += torch.index_select(self.table, 0, packed.reshape(-1).int()).view(len(packed), self.dim)
        return vectors.div_(torch.linalg.vector_norm(vectors, dim=-1, keepdim=True).clamp_min_(1e-12))

    def _vectors(self, pids: torch.Tensor) -> torch.Tensor:
        """Decompressed token vectors of documents ``pids`` (ascending), ``[tokens, dim]``."""
        tokens = _ranges(self.offsets_t[pids], self.doclens_t[pids])
        return self._decode(torch.index_select(self.codes, 0, tokens), self._residual_rows(tokens))

    def decompress(self, doc_positions: Sequence[int] | np.ndarray) -> list[np.ndarray]:
        """Each document's decompressed token vectors, float32 ``[len, dim]``."""
        pids = self._positions(doc_positions)
        if len(pids) == 0:
            return []
        order = torch.sort(pids, stable=True)
        vectors = self._vectors(order.values).cpu().numpy()
        parts = np.split(vectors, np.cumsum(self.doclens[order.values.cpu().numpy()])[:-1])
        out: list[np.ndarray] = [np.empty(0)] * len(parts)
        for i, part in zip(order.indices.tolist(), parts):
            out[i] = part
        return out

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

    def _centroid_maxsim(self, pids: torch.Tensor, table: torch.Tensor,
                         passing: torch.Tensor | None = None) -> torch.Tensor:
        """MaxSim of documents ``pids`` with each token replaced by its centroid's row of ``table`` [|C|, Lq];
        ``passing`` [|C|] bool: only tokens of those centroids count (the others' rows being ``-inf``)."""
        out = [torch.empty(0, device=self.device)]
        for batch in self._batches(pids, table.shape[1]):
            lengths = self.doclens_t[batch]
            codes = torch.index_select(self.codes, 0, _ranges(self.offsets_t[batch], lengths))
            owner = _owners(lengths, len(codes))
            if passing is not None:
                keep = torch.index_select(passing, 0, codes)
                codes, owner = codes[keep], owner[keep]
            out.append(_segment_max(torch.index_select(table, 0, codes), owner, len(batch)).sum(1))
        return torch.cat(out)

    def _exact_maxsim(self, pids: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        """MaxSim of documents ``pids`` (ascending) on their decompressed vectors."""
        out = [torch.empty(0, device=self.device)]
        for batch in self._batches(pids, len(query)):
            scores = self._vectors(batch) @ query.T
            out.append(_documents_max(scores, self.doclens_t[batch]).sum(1))
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
        passing = scores.amax(1) >= threshold
        pids = torch.sort(pids[_best(self._centroid_maxsim(pids, scores, passing), max(ndocs, k))]).values
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
                    per_doc = _documents_max(token_scores, lengths)
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
            opened = open_shards(shards)
            doclens = np.concatenate([s.doclens for s in opened])
            if opened[0].shape[1] != self.dim or not np.array_equal(doclens, self.doclens):
                raise ValueError("the shards given are not the ones this index was built from "
                                 "(dimension or document lengths differ)")
            for shard in opened:
                vectors = shard.vectors()
                for d0, d1, t0, t1 in doc_blocks(shard.doclens, max_tokens):
                    yield shard.first_doc + d0, self.doclens_t[shard.first_doc + d0 : shard.first_doc + d1], \
                        floats(vectors[t0:t1], self.device)
            return
        bounds = self.chunk_first_doc
        for c in range(len(bounds) - 1):
            first_doc, first_token = int(bounds[c]), int(self.chunk_first_token[c])
            for d0, d1, t0, t1 in doc_blocks(self.doclens[bounds[c] : bounds[c + 1]], max_tokens):
                codes = self.codes[first_token + t0 : first_token + t1]
                yield first_doc + d0, self.doclens_t[first_doc + d0 : first_doc + d1], \
                    self._decode(codes, self.residuals[c][t0:t1])
