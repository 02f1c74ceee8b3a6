"""Runs a reference implementation (colbert-ai 0.2.20 or PLAID-X 0.3.3, installed by setup.sh under
.ref/) on a job from the reference tests, in its own process: transformers 4 comes first on the path
(tests/helpers.py `run_reference`), so nothing of the harness is imported here.

``python reference_colbert.py JOB.json OUT.npz``; the job's ``task`` is

- ``encode``: per checkpoint and group of texts (one XMOD adapter each), the reference's input ids and attention
  masks (its tokenizers' ``tensorize``), its kept-token mask and token vectors (``Checkpoint.query``
  and ``Checkpoint.doc(keep_dims='return_mask')``);
- ``index``: colbert-ai's ``Indexer`` over precomputed token vectors (its collection encoder's
  ``encode_passages`` reads them instead of running a model), then its CPU ``Searcher`` top-k for
  precomputed query vectors, and the index's payload bytes (codes and residuals) per vector;
- ``search``: the CPU ``Searcher`` over an index the ``index`` task built, on ``threads`` torch threads:
  for each of ``ks``, with colbert-ai's own search settings for that k, one untimed query, then each
  query's top-k and seconds (batch size 1, precomputed query vectors).

Run-time adjustments, none of them changing a computation: both import ``AdamW`` from transformers
(gone in 4.57), so the name is given torch's; PLAID-X 0.3.3's config dataclasses use an
unhashable ``DefaultVal`` as field default, which Python 3.11's dataclasses refuse, so the class gets
a ``__hash__`` as soon as its module has run; both pick the model class from the config of
``model_name`` (``facebook/xmod-base``, ``xlm-roberta-large``: hub ids, unreachable here), so the
checkpoint folder is named instead (its config has the same ``model_type``, hence the same class).
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

CORE_CONFIG = "colbert.infra.config.core_config"


class _HashDefaultVal(importlib.abc.MetaPathFinder):
    """Gives PLAID-X's ``DefaultVal`` a ``__hash__`` right after its module runs, before any
    dataclass uses it as a default."""

    def find_spec(self, name, path, target=None):
        if name != CORE_CONFIG:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        run = spec.loader.exec_module

        def exec_module(module) -> None:
            run(module)
            module.DefaultVal.__hash__ = lambda value: hash(repr(value.val))

        spec.loader.exec_module = exec_module
        return spec


def prepare(package: str) -> None:
    """The run-time adjustments described above, before ``colbert`` is imported."""
    import transformers

    if package == "plaid-x":
        sys.meta_path.insert(0, _HashDefaultVal())
    if not hasattr(transformers, "AdamW"):
        transformers.AdamW = torch.optim.AdamW


def encode(job: dict) -> dict[str, np.ndarray]:
    from colbert.infra import ColBERTConfig
    from colbert.modeling.checkpoint import Checkpoint
    from colbert.modeling.colbert import ColBERT

    ColBERT.loaded_extensions = True  # encoding needs no C++ extension: skip compiling segmented_maxsim
    out = {}
    for c, folder in enumerate(job["checkpoints"]):
        checkpoint = Checkpoint(folder, colbert_config=ColBERTConfig(model_name=folder))
        for i, group in enumerate(job["groups"]):
            if group["adapter"]:
                checkpoint.bert.set_default_language(group["adapter"])
            q_ids, q_mask = checkpoint.query_tokenizer.tensorize(group["queries"])
            d_ids, d_mask = checkpoint.doc_tokenizer.tensorize(group["docs"])
            with torch.no_grad():
                Q = checkpoint.query(q_ids, q_mask)
                D, keep = checkpoint.doc(d_ids, d_mask, keep_dims="return_mask")
            arrays = {"q_ids": q_ids, "q_mask": q_mask, "Q": Q.float(), "d_ids": d_ids, "d_mask": d_mask,
                      "D": D.float(), "d_keep": keep.squeeze(-1)}
            out.update({f"{c}.{i}.{key}": value for key, value in arrays.items()})
    return {k: v.numpy() for k, v in out.items()}


class _NoModel:
    """Stands in for the checkpoint where only precomputed vectors are indexed and searched."""

    def __init__(self, *args, **kwargs) -> None:
        pass


def cpu_search() -> None:
    """The ``Searcher`` without a model (queries come as vectors), and the C++ extensions its CPU search
    needs, segmented_maxsim among them (REFERENCE.md §5): compiled side by side on first use, then
    cached in TORCH_EXTENSIONS_DIR."""
    import colbert.searcher as searcher_module
    from colbert.modeling.colbert import ColBERT
    from colbert.search.index_storage import IndexScorer
    from colbert.search.strided_tensor import StridedTensor

    searcher_module.Checkpoint = _NoModel
    with ThreadPoolExecutor(3) as pool:
        list(pool.map(lambda owner: owner.try_load_torch_extensions(False), (ColBERT, IndexScorer, StridedTensor)))


def index(job: dict) -> dict[str, np.ndarray]:
    from colbert import Indexer, Searcher
    from colbert.indexing import collection_encoder, collection_indexer
    from colbert.infra import ColBERTConfig, Run, RunConfig

    data = np.load(job["vectors"])
    vectors, doclens = torch.from_numpy(data["embeddings"].astype(np.float32)), data["doclens"]
    starts = np.concatenate([[0], np.cumsum(doclens)])

    def encode_passages(self, passages):  # passages are document positions as text
        rows = [int(p) for p in passages]
        return torch.cat([vectors[starts[r]:starts[r + 1]] for r in rows]), [int(doclens[r]) for r in rows]

    collection_encoder.CollectionEncoder.encode_passages = encode_passages
    collection_indexer.Checkpoint = _NoModel
    cpu_search()
    root = Path(job["root"])
    (root / "checkpoint").mkdir(parents=True, exist_ok=True)
    metadata = {"dim": vectors.shape[1], "nbits": job["nbits"], "query_maxlen": int(data["queries"].shape[1]),
                "doc_maxlen": int(doclens.max()) + 2}
    (root / "checkpoint" / "artifact.metadata").write_text(json.dumps(metadata))
    with Run().context(RunConfig(nranks=1, avoid_fork_if_possible=True, experiment="reference", root=str(root))):
        config = ColBERTConfig(avoid_fork_if_possible=True, index_bsize=256, **metadata)
        path = Indexer(str(root / "checkpoint"), config=config, verbose=0).index(
            "index", [str(p) for p in range(len(doclens))], overwrite=True)
        searcher = Searcher("index", checkpoint=str(root / "checkpoint"), verbose=0)
        top = [searcher.dense_search(torch.from_numpy(q[None]), k=job["k"])[0] for q in data["queries"]]
    payload = sum(torch.load(p).numel() * torch.load(p).element_size()
                  for pattern in ("*.codes.pt", "*.residuals.pt") for p in Path(path).glob(pattern))
    total = sum(p.stat().st_size for p in Path(path).iterdir() if p.is_file())
    return {"top": np.array(top, dtype=np.int64), "payload_bytes_per_vector": np.float64(payload / len(vectors)),
            "index_bytes_per_vector": np.float64(total / len(vectors)),
            "centroids": np.int64(len(torch.load(Path(path) / "centroids.pt")))}


def search(job: dict) -> dict[str, np.ndarray]:
    import time

    from colbert import Searcher
    from colbert.infra import Run, RunConfig

    cpu_search()
    torch.set_num_threads(job["threads"])
    queries = torch.from_numpy(np.load(job["vectors"])["queries"])
    root = Path(job["root"])
    out = {}
    with Run().context(RunConfig(nranks=1, avoid_fork_if_possible=True, experiment="reference", root=str(root))):
        searcher = Searcher("index", checkpoint=str(root / "checkpoint"), verbose=0)
        for k in job["ks"]:
            # dense_search fills in its per-k settings only where unset, so they are unset before each k
            searcher.configure(ncells=None, centroid_score_threshold=None, ndocs=None)
            searcher.dense_search(queries[:1], k=k)
            tops, times = [], []
            for q in queries:
                start = time.perf_counter()
                pids = searcher.dense_search(q[None], k=k)[0]
                times.append(time.perf_counter() - start)
                tops.append(np.asarray(pids, dtype=np.int64))
            out[f"times_{k}"] = np.array(times)
            out[f"top_{k}"] = np.stack([np.pad(t, (0, k - len(t)), constant_values=-1) for t in tops])
            out[f"settings_{k}"] = np.array([searcher.config.ncells, searcher.config.centroid_score_threshold,
                                             searcher.config.ndocs], dtype=np.float64)
    return out


def main() -> None:
    job = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    prepare(job["package"])
    arrays = {"encode": encode, "index": index, "search": search}[job["task"]](job)
    np.savez(sys.argv[2], **arrays)


if __name__ == "__main__":
    main()
