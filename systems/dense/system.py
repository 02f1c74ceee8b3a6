"""Dense single-vector retrieval: a sentence-transformers encoder and a faiss index.

``st:<model>`` runs any sentence-transformers model (a Hugging Face id or a local folder); the
Arctic-Embed 2.0 and DPR-XM systems are catalogue rows over this class with other default params.
Documents are encoded in batches of texts with *equal token length*, longest first
(`systems.common.batching`): nothing is padded, so a document's vector does not depend on which
documents share its batch — on CPU a sharded index holds exactly the vectors of an unsharded one (on
GPU, kernels may still round differently per batch size). Vectors are optionally truncated to their
first ``dim`` dimensions (Matryoshka) and L2-normalised, then stored in a faiss inner-product index
(`systems.dense.faiss_index`). Shards keep float32 vectors and doc ids; the merge interleaves them
back into collection order and builds the index, so sharded and unsharded indexes are equal.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field, model_validator
from tqdm import tqdm

from harness.checkpoints import checkpoint_identity, resolve_model
from harness.data.base import Dataset, Query
from harness.device import require_faiss
from harness.languages import xmod_code
from harness.runs import Run, make_run
from harness.system import Params, System, index_in_one_shard, shard_docs
from harness.training import TrainingData, loop
from systems.common.batching import length_batches
from systems.dense import train as dense_train
from systems.dense.faiss_index import (
    CollectionOrder,
    Searcher,
    ShardVectors,
    build_index,
    factory_string,
    searchable,
)

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

faiss = require_faiss()

ENCODE_BLOCK = 100_000
"""Documents read, length-sorted and encoded together (bounds the texts held in memory)."""
TOKENIZE_BLOCK = 10_000
"""Texts tokenised at once to find their lengths (bounds the padded token tensors)."""


class DenseParams(Params):
    model: str = Field(description="Hugging Face model id, local sentence-transformers folder, or pkg:<module>")
    revision: str | None = Field(None, description="hub revision (commit, tag or branch) to load; recorded")
    trust_remote_code: bool = Field(False, description="allow the checkpoint's own modelling code")
    query_prompt: str | None = Field(None, description="text prepended to queries; None: the model's "
                                                       "'query' prompt, if any")
    doc_prompt: str | None = Field(None, description="text prepended to documents; None: the model's "
                                                     "'document'/'passage'/'corpus' prompt, if any")
    pooling: Literal["cls", "mean", "max", "lasttoken"] | None = Field(None, description="override the model's pooling")
    max_length: int | None = Field(None, ge=1, description="token limit; None: the model's own")
    normalize: bool = Field(True, description="L2-normalise (after truncation) so inner product is cosine")
    dim: int | None = Field(None, ge=1, description="keep the first dim dimensions (Matryoshka); None: all")
    quantization: Literal["none", "int8", "int4"] = Field("none", description="scalar quantisation of stored vectors")
    index: Literal["flat", "ivf", "hnsw", "pq"] = Field("flat", description="faiss index (flat is exact)")
    nlist: int | None = Field(None, ge=1, description="IVF lists; None: 4·√n, at least 39 vectors per list")
    nprobe: int = Field(32, ge=1, description="IVF lists searched (retrieval only)")
    hnsw_m: int = Field(32, ge=2, description="HNSW neighbours per node")
    ef_construction: int = Field(200, ge=1, description="HNSW candidate list while building")
    ef_search: int = Field(128, ge=1, description="HNSW candidate list while searching (retrieval only)")
    pq_m: int = Field(16, ge=1, description="PQ sub-quantisers (must divide the dimension)")
    pq_nbits: int = Field(8, ge=1, le=16, description="bits per PQ code")
    route_languages: bool | None = Field(None, description="encode each text with the XMOD adapter of its own "
                                         "language (documents: Doc.language, queries: Query.language); "
                                         "None: whenever the backbone is XMOD")
    batch_size: int = Field(64, ge=1, exclude=True, description="texts per encoder batch (does not change results)")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", exclude=True,
                                                   description="encoder device; auto: cuda when available")

    @model_validator(mode="after")
    def _pq_is_its_own_quantisation(self) -> DenseParams:
        if self.index == "pq" and self.quantization != "none":
            raise ValueError("index 'pq' compresses vectors itself; use quantization 'none' with it")
        return self


def open_model(model: str, revision: str | None, trust_remote_code: bool, device: str,
               pooling: str | None, max_length: int | None) -> SentenceTransformer:
    """A sentence-transformers model in eval mode, with the pooling and token limit overridden if given."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    encoder = SentenceTransformer(resolve_model(model), revision=revision, trust_remote_code=trust_remote_code, device=device)
    if max_length is not None:
        encoder.max_seq_length = max_length
    if pooling is not None:
        pools = [module for module in encoder if isinstance(module, Pooling)]
        if not pools:
            raise ValueError(f"{model} has no Pooling module whose mode could be set to {pooling!r}")
        for module in pools:
            module.pooling_mode = pooling
    return encoder.eval()


load_model = lru_cache(maxsize=4)(open_model)
"""`open_model`, shared by systems with the same model settings (searching never modifies it)."""


class DenseSystem(System):
    """Any sentence-transformers model over a faiss index (see the module docstring)."""

    Params = DenseParams
    retrieve_params = frozenset({"query_prompt", "nprobe", "ef_search"})
    shard_folder = "vectors"
    TrainParams = dense_train.DenseTraining
    params: DenseParams

    def train(self, data: TrainingData, params: dense_train.DenseTraining, out: Path) -> dict[str, Any]:
        """MultipleNegativesRankingLoss fine-tuning (see `systems.dense.train`) of a private copy of the
        model (never the shared one), seeded before it is loaded."""
        import torch

        torch.manual_seed(params.seed)
        p = self.params
        where = loop.device(p.device)
        model = open_model(p.model, p.revision, p.trust_remote_code, where, p.pooling, p.max_length)
        return dense_train.train(model, data, params, out, (self.prompt("query"), self.prompt("document")), where)

    def tiny(self, data: TrainingData, out: Path) -> DenseSystem:
        """A tiny random model in sentence-transformers layout: XMOD with an adapter per training
        language (and en_XX) when the system routes languages, else XLM-R; the params' pooling."""
        from transformers import XLMRobertaConfig, XLMRobertaModel, XmodConfig, XmodModel

        from systems.common.tiny import CORPUS, TINY_SIZES, VOCAB, sentence_transformer

        extra: dict[str, Any] = {}
        model_cls, config_cls = XLMRobertaModel, XLMRobertaConfig
        if self.params.route_languages:
            model_cls, config_cls = XmodModel, XmodConfig
            extra = {"languages": sorted({xmod_code(lang) for lang in data.languages} | {"en_XX"}),
                     "default_language": "en_XX"}
        folder = sentence_transformer(out, data.texts(limit=CORPUS), model_cls, config_cls,
                                      self.params.pooling or "mean", vocab_size=VOCAB, max_seq_length=self.params.max_length or 128,
                                      sizes=TINY_SIZES, **extra)
        return self.with_checkpoint(folder, "tiny")

    @property
    def encoder(self) -> SentenceTransformer:
        """The model, loaded on first use (and shared by systems with the same model settings)."""
        p = self.params
        return load_model(p.model, p.revision, p.trust_remote_code, loop.device(p.device), p.pooling, p.max_length)

    def extra_index_identity(self, dataset: Dataset) -> dict[str, Any]:
        return {"model": self.identity_params()["model"], "revision": self.params.revision,
                "checkpoint": checkpoint_identity(self.params.model, self.params.revision)}

    def prompt(self, kind: Literal["query", "document"]) -> str:
        """The text prepended to queries or documents: the param, else the model's own prompt."""
        given = self.params.query_prompt if kind == "query" else self.params.doc_prompt
        if given is not None:
            return given
        prompts = self.encoder.prompts
        names = ("query",) if kind == "query" else ("document", "passage", "corpus")
        return next((prompts[name] or "" for name in names if name in prompts), "")

    def adapters(self, languages: list[str]) -> dict[str, list[int]] | None:
        """Positions of ``languages`` grouped by the encoder's language key (first-seen order) when
        the encoder routes languages, else None. Two kinds route: an XMOD backbone (key: adapter code,
        when the params route languages) and a first module with ``language_key``/``set_language``
        (NLLB-E5's ``src_lang``). Every language is checked before anything is encoded: one not in
        the table raises `UnsupportedLanguage`, one the checkpoint lacks a ValueError — never the
        backbone's silent default (English)."""
        first = self.encoder[0]
        if hasattr(first, "set_language"):
            groups: dict[str, list[int]] = {}
            for position, lang in enumerate(languages):
                groups.setdefault(first.language_key(lang), []).append(position)
            return groups
        backbone = getattr(first, "auto_model", None)
        xmod = hasattr(backbone, "set_default_language") and hasattr(backbone.config, "languages")
        route = self.params.route_languages
        if route is None:
            route = xmod
        if not route:
            if xmod:
                raise ValueError(f"{self.params.model} is an XMOD model: route_languages=false would encode every "
                                 f"text with its default adapter {backbone.config.default_language!r}")
            return None
        if not xmod:
            raise ValueError(f"route_languages needs an XMOD backbone; {self.params.model} has "
                             f"{type(backbone).__name__}")
        available = list(backbone.config.languages)
        groups = {}
        for position, lang in enumerate(languages):
            code = xmod_code(lang)
            if code not in available:
                raise ValueError(f"language {lang!r} (XMOD adapter {code!r}) has no adapter in {self.params.model}; "
                                 f"its languages: {', '.join(available)}")
            groups.setdefault(code, []).append(position)
        return groups

    @contextmanager
    def routed(self, key: str) -> Iterator[None]:
        """Encode with the language ``key`` (an XMOD adapter, or the first module's language)."""
        first = self.encoder[0]
        if hasattr(first, "set_language"):
            first.set_language(key)
            yield
            return
        backbone = first.auto_model
        default = backbone.config.default_language
        backbone.set_default_language(key)
        try:
            yield
        finally:
            backbone.config.default_language = default

    def encode(self, texts: list[str], kind: Literal["query", "document"], progress: bool = False,
               languages: list[str] | None = None) -> np.ndarray:
        """Float32 vectors of ``texts`` (one row each), truncated to ``dim`` and normalised as the params say.
        ``languages`` (one per text) pick each text's XMOD adapter when languages are routed."""
        encoder = self.encoder
        width = encoder.get_embedding_dimension()
        if self.params.dim is not None and self.params.dim > width:
            raise ValueError(f"dim={self.params.dim} exceeds the {width} dimensions of {self.params.model}")
        if languages is not None and len(languages) != len(texts):
            raise ValueError(f"{len(languages)} languages for {len(texts)} texts")
        groups = self.adapters(languages if languages is not None else [])
        if groups is not None and languages is None and texts:
            raise ValueError(f"{self.params.model} routes languages: encode needs each text's language")
        vectors = np.empty((len(texts), width), np.float32)
        with tqdm(total=len(texts), desc=f"encode {kind}s", unit=kind, mininterval=2, disable=not progress) as bar:
            if groups is None:
                self.encode_into(vectors, texts, kind, bar)
                return self.finish(vectors)
            for key, positions in groups.items():
                with self.routed(key):
                    part = np.empty((len(positions), width), np.float32)
                    self.encode_into(part, [texts[i] for i in positions], kind, bar)
                    vectors[positions] = part
        return self.finish(vectors)

    def encode_into(self, vectors: np.ndarray, texts: list[str], kind: Literal["query", "document"], bar: tqdm) -> None:
        """Fill ``vectors`` with the raw encodings of ``texts``, in batches of equal token length."""
        encoder, prompt = self.encoder, self.prompt(kind)
        encode = encoder.encode_query if kind == "query" else encoder.encode_document
        lengths = []
        for start in range(0, len(texts), TOKENIZE_BLOCK):
            tokens = encoder.preprocess(texts[start : start + TOKENIZE_BLOCK], prompt=prompt, task=kind)
            lengths += tokens["attention_mask"].sum(1).tolist()
        for batch in length_batches(lengths, self.params.batch_size):
            vectors[batch] = encode([texts[i] for i in batch], prompt=prompt, batch_size=len(batch),
                                    convert_to_numpy=True, show_progress_bar=False)
            bar.update(len(batch))

    def finish(self, vectors: np.ndarray) -> np.ndarray:
        """Keep the first ``dim`` columns, then L2-normalise rows if ``normalize``."""
        if self.params.dim is not None:
            vectors = vectors[:, : self.params.dim]
        if self.params.normalize:
            vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def index(self, dataset: Dataset, out: Path) -> dict[str, Any]:
        return index_in_one_shard(self, dataset, out)

    def index_shard(self, dataset: Dataset, shard: int, shards: int, out: Path) -> dict[str, Any]:
        """Encode the shard's documents into ``out/vectors``: ``vectors.npy``, ``ids.json``, ``shard.json``."""
        folder = out / "vectors"
        folder.mkdir(parents=True)
        docs = shard_docs(dataset, shard, shards)
        ids: list[str] = []
        blocks: list[np.ndarray] = []
        while block := list(islice(docs, ENCODE_BLOCK)):
            ids += [doc.doc_id for doc in block]
            blocks.append(self.encode([doc.contents for doc in block], "document", progress=True,
                                      languages=[doc.language for doc in block]))
        if not blocks:
            raise ValueError(f"shard {shard} of {shards} of {dataset.dataset_id} has no documents")
        vectors = np.concatenate(blocks)
        np.save(folder / "vectors.npy", vectors)
        (folder / "ids.json").write_text(json.dumps(ids), encoding="utf-8")
        (folder / "shard.json").write_text(json.dumps({"shard": shard, "shards": shards}), encoding="utf-8")
        return {"documents": len(ids), "dim": int(vectors.shape[1]), "vector_bytes": int(vectors.nbytes)}

    def merge_shards(self, dataset: Dataset, shard_dirs: list[Path], out: Path) -> dict[str, Any]:
        """Interleave the shards' vectors back into collection order, build the index, write it with the ids."""
        folders = [d / "vectors" for d in shard_dirs]
        numbers = [json.loads((f / "shard.json").read_text(encoding="utf-8")) for f in folders]
        shards = len(folders)
        if sorted(n["shard"] for n in numbers) != list(range(shards)) or {n["shards"] for n in numbers} != {shards}:
            raise ValueError(f"{dataset.dataset_id}: shard folders {[str(d) for d in shard_dirs]} are not shards "
                             f"0..{shards - 1} of one split (found {numbers})")
        folders = [f for _, f in sorted(zip((n["shard"] for n in numbers), folders))]
        parts = [ShardVectors(f / "vectors.npy") for f in folders]
        part_ids = [json.loads((f / "ids.json").read_text(encoding="utf-8")) for f in folders]
        n = sum(len(p) for p in parts)
        ids = [part_ids[p % shards][p // shards] for p in range(n)]
        index = build_index(CollectionOrder(parts), self.params)
        out.mkdir(parents=True, exist_ok=True)
        faiss.write_index(index, str(out / "index.faiss"))
        (out / "ids.json").write_text(json.dumps(ids), encoding="utf-8")
        return {"documents": n, "dim": int(parts[0].shape[1]), "faiss": factory_string(self.params, n),
                "index_bytes": (out / "index.faiss").stat().st_size, "shards": shards}

    def open(self, index: Path) -> Searcher:
        ids = json.loads((index / "ids.json").read_text(encoding="utf-8"))
        return Searcher(searchable(faiss.read_index(str(index / "index.faiss")), self.params), ids)

    def encode_queries(self, queries: list[Query]) -> list[np.ndarray]:
        if not queries:
            return []
        return list(self.encode([q.text for q in queries], "query", languages=[q.language for q in queries]))

    def search(self, searcher: Searcher, queries: list[Query], encoded: list[np.ndarray], k: int) -> Run:
        if not queries:
            return {}
        scores, rows = searcher.index.search(np.ascontiguousarray(np.stack(encoded), dtype=np.float32), k)
        return make_run({q.query_id: [(searcher.ids[r], float(s)) for r, s in zip(row, score) if r >= 0]
                         for q, row, score in zip(queries, rows, scores, strict=True)}, depth=k)

