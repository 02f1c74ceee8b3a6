"""Late interaction: ColBERT-XM and MTD ColBERT-X over a PLAID index.

The checkpoint (`systems.colbert.checkpoint`) and its torch model (`systems.colbert.model`) are
described there; this module indexes, searches and names the systems.

**Indexing.** A shard encodes its documents in batches of equal token length (no padding, so on
CPU a document's vectors do not depend on its batch-mates; GPU kernels may round differently per
batch size), under fp16 autocast on CUDA (colbert-ai's amp), keeps each document's unmasked token
vectors (float16) and writes them as `systems.colbert.plaid.TokenShard` blocks. Shards are
*contiguous* ranges of the collection (not `shard_docs`' round robin; a sharded job reads the
collection once more to count it), so the shards concatenated in order are the collection in order
and the PLAID index built from S shards is the one built from one: same k-means sample, centroids,
inverted lists and runs (tested on CPU). Search is PLAID's (`PlaidIndex.search`) with colbert-ai's
settings by depth — k ≤ 10: ncells 1, threshold 0.5, ndocs 256; k ≤ 100: 2, 0.45, 1024; otherwise
4, 0.4, max(4k, 4096) — unless the params set them; ``exhaustive`` scores every document by exact
MaxSim on its decompressed vectors (no candidate pruning). Runs break ties by doc id.

**Long documents (MTD).** PLAID-X indexes passages of 180 xlm-roberta-large tokens every 90 and
aggregates the top 2,500 with MaxP (so ``search_settings(2500)``: 10,000 candidates); in a suite that
is the ``passages:`` entry of the system (`harness.system.passages`, whose defaults are these), not a
param here.

**Systems** (catalogue rows). ``colbert-xm`` is `ColbertSystem` on ``antoinelouis/colbert-xm``;
``mtd-colbertx`` is `MTDSystem`, whose checkpoint is
``hltcoe/plaidx-large-{collection}-mtd-{mixing}-mt5xxl-engeng`` (``collection``: neuclir | clef;
``mixing``: mix-passages | mix-entries | round-robin → ``round-robin-entries``) unless ``model`` names
one. Plain ``mtd-colbertx`` is Mix Passages, the first strategy of the paper's Table 2 (the paper
finds the three statistically equivalent); the rows ``mtd-colbertx-mix-passages``, ``-mix-entries``
and ``-round-robin`` name each, with the same mixing in their training recipe. Training recipes:
`systems.colbert.train`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from pydantic import Field

from harness.checkpoints import checkpoint_identity
from harness.data.base import Dataset, Doc, Query
from harness.runs import Run, make_run
from harness.system import Params, System, index_in_one_shard
from harness.system.sharding import check_shard
from harness.training.loop import autocast, device
from systems.colbert import train as recipes
from systems.colbert.checkpoint import ColbertSettings, MarkerScheme, checkpoint_folder, checkpoint_settings
from systems.colbert.model import ColbertModel
from systems.colbert.sampling import Mixing
from systems.colbert.tiny import tiny_colbert_xm, tiny_mtd
from systems.common.batching import length_batches

if TYPE_CHECKING:
    from harness.training import TrainingData
    from systems.colbert.plaid import PlaidIndex

ENCODE_BLOCK = 20_000
"""Documents read, encoded and written as one `TokenShard` block."""
TOKENIZE_BLOCK = 5_000
"""Texts tokenised at once to find their lengths."""
MTD_CHECKPOINT = "hltcoe/plaidx-large-{collection}-mtd-{mixing}-mt5xxl-engeng"
MTD_MIXING_NAME = {"mix-passages": "mix-passages", "mix-entries": "mix-entries", "round-robin": "round-robin-entries"}


@lru_cache(maxsize=2)
def _cached_model(model: str, revision: str | None, marker_scheme: str | None, device: str,
                  identity: str) -> ColbertModel:
    return ColbertModel.load(model, revision=revision, marker_scheme=marker_scheme, device=device)


def cached_model(model: str, revision: str | None, marker_scheme: str | None, device: str) -> ColbertModel:
    """`ColbertModel.load` shared by systems with the same settings (searching never modifies it);
    keyed by the checkpoint's identity too, so a folder whose files changed is loaded again."""
    return _cached_model(model, revision, marker_scheme, device, checkpoint_identity(model, revision))


def search_settings(k: int) -> tuple[int, float, int]:
    """colbert-ai's (and PLAID-X's) ncells, centroid score threshold and ndocs for depth ``k``."""
    if k <= 10:
        return 1, 0.5, 256
    if k <= 100:
        return 2, 0.45, 1024
    return 4, 0.4, max(k * 4, 4096)


def contiguous_docs(dataset: Dataset, shard: int, shards: int) -> Iterator[Doc]:
    """The documents of one shard as a contiguous range of the collection (shard i of S: positions
    ⌊i·n/S⌋ … ⌊(i+1)·n/S⌋ - 1), so the shards in order are the collection in order."""
    check_shard(shard, shards)
    if shards == 1:
        yield from dataset.docs()
        return
    n = sum(1 for _ in dataset.docs())
    start, end = shard * n // shards, (shard + 1) * n // shards
    yield from islice(dataset.docs(), start, end)


class ColbertParams(Params):
    model: str = Field("antoinelouis/colbert-xm", description="HF_ColBERT checkpoint: hub id, local folder or "
                       "pkg:<module>")
    revision: str | None = Field(None, description="hub revision (commit, tag or branch) to load; recorded")
    marker_scheme: MarkerScheme | None = Field(None, description="how [Q]/[D] enter the input: 'dot-placeholder' "
                                               "(colbert-ai < PR #362, PLAID-X: '. ' prefix, position 1 overwritten) "
                                               "or 'insert' (marker inserted after <s>); None: the checkpoint's")
    nbits: Literal[1, 2, 4] | None = Field(None, description="residual bits per dimension; None: the checkpoint's")
    n_centroids: int | None = Field(None, ge=1, description="PLAID centroids; None: colbert-ai's 2^⌊log2(16√E)⌋ "
                                    "(E: the embeddings, as colbert-ai estimates them from its sample)")
    kmeans_sample: int | None = Field(None, ge=1, description="token vectors sampled for k-means; None: colbert-ai's "
                                      "sample, every token of min(1 + ⌊16√(120·N)⌋, N) of the N documents")
    kmeans_iters: int = Field(4, ge=1, description="k-means iterations (colbert-ai's and PLAID-X's kmeans_niters: 4)")
    nprobe: int | None = Field(None, ge=1, description="centroids probed per query token (colbert-ai ncells); None: "
                               "by depth (k≤10: 1, k≤100: 2, else 4)")
    centroid_score_threshold: float | None = Field(None, description="centroid pruning threshold; None: by depth "
                                                   "(0.5, 0.45, 0.4)")
    ndocs: int | None = Field(None, ge=1, description="candidates kept after centroid scoring; None: by depth "
                              "(256, 1024, max(4k, 4096))")
    exhaustive: bool = Field(False, description="exact MaxSim over every document's decompressed vectors instead "
                             "of PLAID's candidate generation (retrieval only)")
    batch_size: int = Field(64, ge=1, exclude=True, description="texts per encoder batch (does not change results)")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", exclude=True, description="auto: cuda when available")


@dataclass
class Searcher:
    """An open index: the PLAID index and the doc id of each of its documents."""

    index: PlaidIndex
    ids: list[str]


class ColbertSystem(System):
    """A ColBERT checkpoint over a PLAID index (module docstring); ColBERT-XM's routes each text
    through its language's XMOD adapter."""

    Params = ColbertParams
    TrainParams = recipes.TrainParams
    retrieve_params = frozenset({"nprobe", "centroid_score_threshold", "ndocs", "exhaustive"})
    shard_folder = "tokens"
    params: ColbertParams

    # -- the checkpoint -----------------------------------------------------------------------------

    @property
    def model_id(self) -> str:
        """The checkpoint the system loads."""
        return self.params.model

    @property
    def model(self) -> ColbertModel:
        """The model in eval mode, loaded on first use (shared by systems with the same settings)."""
        return cached_model(self.model_id, self.params.revision, self.params.marker_scheme,
                            device(self.params.device))

    def load_model(self, where: str) -> ColbertModel:
        """A fresh model on device ``where`` for training (never the shared inference one)."""
        return ColbertModel.load(self.model_id, revision=self.params.revision,
                                 marker_scheme=self.params.marker_scheme, device=where)

    def settings(self) -> ColbertSettings:
        """The checkpoint's settings (with the params' marker scheme), read without loading weights."""
        return checkpoint_settings(self.model_id, self.params.revision, self.params.marker_scheme)

    def searchable_settings(self) -> ColbertSettings:
        """`settings`, checked to be searchable in a PLAID index (which scores by inner product)."""
        settings = self.settings()
        if settings.similarity != "cosine":
            raise ValueError(f"{self.model_id}: similarity {settings.similarity!r}; a PLAID index scores by inner "
                             f"product, which needs 'cosine'")
        return settings

    @property
    def nbits(self) -> int:
        return self.params.nbits or self.settings().nbits

    def identity_params(self) -> dict[str, Any]:
        params = super().identity_params()
        if params.get(self.checkpoint_param) is None:
            params[self.checkpoint_param] = self.model_id
        return params

    def extra_index_identity(self, dataset: Dataset) -> dict[str, Any]:
        return {"model": self.identity_params()["model"], "revision": self.params.revision,
                "checkpoint": checkpoint_identity(self.model_id, self.params.revision)}

    def train(self, data: TrainingData, params: Any, out: Path) -> dict[str, Any]:
        """The family's recipes (`systems.colbert.train`) from this system's checkpoint."""
        return recipes.train(data, params, out, self.load_model,
                             lambda: checkpoint_folder(self.model_id, self.params.revision))

    def tiny(self, data: TrainingData, out: Path) -> ColbertSystem:
        """This system on a tiny random ColBERT-XM checkpoint written into ``out`` (`tiny_colbert_xm`)."""
        return self.with_checkpoint(tiny_colbert_xm(data, out), "tiny")

    # -- indexing -------------------------------------------------------------------------------

    def index(self, dataset: Dataset, out: Path) -> dict[str, Any]:
        """The sharded build as one shard (`index_shard` then `merge_shards`)."""
        return index_in_one_shard(self, dataset, out)

    def encode_docs(self, docs: list[Doc]) -> tuple[np.ndarray, np.ndarray]:
        """Every document's kept token vectors (float16, documents contiguous, in order) and doclens,
        encoded in batches of equal token length (no padding)."""
        model = self.model
        texts = [doc.contents for doc in docs]
        languages = [doc.language for doc in docs]
        model.lang_ids(languages, len(docs))  # every language checked before anything is encoded
        lengths: list[int] = []
        for start in range(0, len(texts), TOKENIZE_BLOCK):
            lengths += model.doc_lengths(texts[start : start + TOKENIZE_BLOCK])
        per_doc: list[np.ndarray | None] = [None] * len(texts)
        with torch.inference_mode(), autocast(model.device, "fp16"):
            for batch in length_batches(lengths, self.params.batch_size):
                D, keep = model.encode_docs([texts[i] for i in batch], [languages[i] for i in batch])
                D, keep = D.float().cpu(), keep.cpu()
                for row, i in enumerate(batch):
                    per_doc[i] = D[row][keep[row]].numpy().astype(np.float16)
        doclens = np.array([len(v) for v in per_doc], dtype=np.int64)
        return np.concatenate(per_doc), doclens

    def index_shard(self, dataset: Dataset, shard: int, shards: int, out: Path) -> dict[str, Any]:
        """Encode a contiguous range of documents into ``out/tokens``: `TokenShard` blocks
        ``NNNNN/``, ``ids.json`` and ``shard.json``."""
        from systems.colbert.plaid import write_shard

        self.searchable_settings()
        folder = out / self.shard_folder
        folder.mkdir(parents=True)
        docs = contiguous_docs(dataset, shard, shards)
        ids: list[str] = []
        blocks = tokens = 0
        while block := list(islice(docs, ENCODE_BLOCK)):
            vectors, doclens = self.encode_docs(block)
            write_shard(folder / f"{blocks:05d}", vectors, doclens)
            ids += [doc.doc_id for doc in block]
            blocks += 1
            tokens += len(vectors)
        if not ids:
            raise ValueError(f"shard {shard} of {shards} of {dataset.dataset_id} has no documents")
        (folder / "ids.json").write_text(json.dumps(ids), encoding="utf-8")
        (folder / "shard.json").write_text(json.dumps({"shard": shard, "shards": shards, "blocks": blocks}),
                                           encoding="utf-8")
        return {"documents": len(ids), "tokens": tokens, "dim": self.model.settings.dim, "blocks": blocks}

    def merge_shards(self, dataset: Dataset, shard_dirs: list[Path], out: Path) -> dict[str, Any]:
        """Build the PLAID index ``out/plaid`` from the shards' blocks in collection order; ``ids.json``."""
        from systems.colbert.plaid import TokenShard, build_index

        folders = [Path(d) / self.shard_folder for d in shard_dirs]
        numbers = [json.loads((f / "shard.json").read_text(encoding="utf-8")) for f in folders]
        shards = len(folders)
        if sorted(n["shard"] for n in numbers) != list(range(shards)) or {n["shards"] for n in numbers} != {shards}:
            raise ValueError(f"{dataset.dataset_id}: shard folders {[str(d) for d in shard_dirs]} are not shards "
                             f"0..{shards - 1} of one split (found {numbers})")
        order = sorted(range(shards), key=lambda i: numbers[i]["shard"])
        token_shards, ids = [], []
        for i in order:
            for b in range(numbers[i]["blocks"]):
                block = folders[i] / f"{b:05d}"
                token_shards.append(TokenShard(block / "embeddings.npy", block / "doclens.npy"))
            ids += json.loads((folders[i] / "ids.json").read_text(encoding="utf-8"))
        settings = self.searchable_settings()
        nbits = self.params.nbits or settings.nbits  # `nbits`, without reading the checkpoint's settings again
        out.mkdir(parents=True, exist_ok=True)
        info = build_index(token_shards, out / "plaid", nbits=nbits, n_centroids=self.params.n_centroids,
                           sample=self.params.kmeans_sample, kmeans_iters=self.params.kmeans_iters, seed=0,
                           device=self.params.device)
        if info["documents"] != len(ids):
            raise ValueError(f"{dataset.dataset_id}: {info['documents']} encoded documents but {len(ids)} ids")
        (out / "ids.json").write_text(json.dumps(ids), encoding="utf-8")
        used = {"model": self.identity_params()["model"], "settings": settings.model_dump(), "nbits": nbits}
        (out / "colbert.json").write_text(json.dumps(used, indent=1), encoding="utf-8")
        return {**info, "shards": shards, "marker_scheme": settings.marker_scheme,
                "marker_scheme_source": settings.marker_scheme_source}

    # -- retrieval ------------------------------------------------------------------------------

    def open(self, index: Path) -> Searcher:
        from systems.colbert.plaid import PlaidIndex

        ids = json.loads((index / "ids.json").read_text(encoding="utf-8"))
        return Searcher(PlaidIndex.open(index / "plaid", self.params.device), ids)

    def encode_queries(self, queries: list[Query]) -> list[np.ndarray]:
        """Each query's token vectors, float32 [query_maxlen, dim] (every position; pads are masks)."""
        if not queries:
            return []
        model = self.model
        out: list[np.ndarray] = []
        model.lang_ids([q.language for q in queries], len(queries))
        with torch.inference_mode(), autocast(model.device, "fp16"):
            for start in range(0, len(queries), self.params.batch_size):
                batch = queries[start : start + self.params.batch_size]
                Q, keep = model.encode_queries([q.text for q in batch], [q.language for q in batch])
                Q, keep = Q.float().cpu(), keep.cpu()
                out += [Q[row][keep[row]].numpy() for row in range(len(batch))]
        return out

    def search(self, searcher: Searcher, queries: list[Query], encoded: list[np.ndarray], k: int) -> Run:
        if not queries:
            return {}
        if self.params.exhaustive:
            results = searcher.index.exhaustive(encoded, k)
        else:
            nprobe, threshold, ndocs = search_settings(k)
            p = self.params
            if p.centroid_score_threshold is not None:
                threshold = p.centroid_score_threshold
            results = searcher.index.search(encoded, k, nprobe=p.nprobe or nprobe, centroid_score_threshold=threshold,
                                            ndocs=p.ndocs or ndocs)
        return make_run({q.query_id: [(searcher.ids[int(d)], float(s)) for d, s in zip(positions, scores)]
                         for q, (positions, scores) in zip(queries, results, strict=True)}, depth=k)


class MTDParams(ColbertParams):
    model: str | None = Field(None, description="HF_ColBERT checkpoint; None: the hltcoe MTD checkpoint of "
                              "collection and mixing")
    collection: Literal["neuclir", "clef"] = Field("neuclir", description="which MTD release (its training languages)")
    mixing: Mixing = Field("mix-passages", description="language mixing of the release (and of the mtd recipe)")


class MTDSystem(ColbertSystem):
    """MTD ColBERT-X (seed 001): XLM-R large, distinct [Q]/[D] tokens, no language routing, nbits 1."""

    Params = MTDParams
    params: MTDParams

    @property
    def model_id(self) -> str:
        p = self.params
        return p.model or MTD_CHECKPOINT.format(collection=p.collection, mixing=MTD_MIXING_NAME[p.mixing])

    def tiny(self, data: TrainingData, out: Path) -> MTDSystem:
        """This system on a tiny random MTD checkpoint written into ``out`` (`tiny_mtd`)."""
        return self.with_checkpoint(tiny_mtd(data, out), "tiny")
