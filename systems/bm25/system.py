"""BM25 through Pyserini (Lucene), one analyzer per language from the languages table.

Text is analysed in the JVM with the Lucene analyzer the languages table names for each
document's (and query's) own language, and the resulting terms are indexed with Anserini's
``IndexCollection`` in pretokenized mode and searched with Pyserini's ``LuceneSearcher``. Terms,
document lengths and therefore BM25 scores are those of a native ``-language`` index, and the same
path serves the languages Anserini has no ``-language`` for (Greek, Romanian) and mixed-language
collections.
"""

from __future__ import annotations

import json
import os
import shutil
from functools import cache
from itertools import chain, islice
from pathlib import Path
from typing import Any

from pydantic import Field
from tqdm import tqdm

from harness.data.base import Dataset, Query
from harness.languages import lucene_analyzer
from harness.runs import Run, make_run
from harness.system import Params, System, index_in_one_shard, shard_docs
from systems.bm25.lucene import anserini_jar, jclass, start_jvm

SHARD_DOCS = 100_000
SEARCH_BATCH = 1_000


class BM25Params(Params):
    k1: float = Field(0.9, gt=0, description="term-frequency saturation")
    b: float = Field(0.4, ge=0, le=1, description="length normalisation")
    threads: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, exclude=True,
                         description="indexing and search threads (does not change results)")


@cache
def analyzer(class_name: str):
    """A Lucene analyzer instance; Anserini's English one is built by its factory method."""
    cls = jclass(class_name)
    return cls.newDefaultInstance() if hasattr(cls, "newDefaultInstance") else cls()


def analyze(text: str, lang: str) -> str:
    """The terms Lucene's analyzer for ``lang`` makes of ``text``, space-joined."""
    try:
        terms = jclass("io.anserini.analysis.AnalyzerUtils").analyze(analyzer(lucene_analyzer(lang)), text)
    except start_jvm().JavaException as e:
        if "Thai segmentation" in str(e):
            raise RuntimeError(
                "this Java runtime cannot segment Thai: install Debian's libicu4j-java (setup.sh does) "
                "or point JAVA_HOME at a full JDK >= 21"
            ) from None
        raise
    return " ".join(terms)


class BM25System(System):
    """BM25 over per-language analysed terms (see the module docstring); shardable: shards analyse
    their documents, the merge indexes every shard's terms."""

    Params = BM25Params
    retrieve_params = frozenset({"k1", "b"})
    shard_folder = "terms"

    def extra_index_identity(self, dataset: Dataset) -> dict[str, Any]:
        return {"analyzers": {lang: lucene_analyzer(lang) for lang in dataset.doc_languages},
                "anserini": anserini_jar().name}

    def index(self, dataset: Dataset, out: Path) -> dict[str, Any]:
        return index_in_one_shard(self, dataset, out)

    def index_shard(self, dataset: Dataset, shard: int, shards: int, out: Path) -> dict[str, Any]:
        """Analyse the shard's documents into pretokenized JSON files under ``out/terms``."""
        start_jvm()
        terms_dir = out / "terms"
        terms_dir.mkdir(parents=True)
        docs = iter(tqdm(shard_docs(dataset, shard, shards), desc=f"analyse {dataset.dataset_id} [{shard + 1}/{shards}]",
                         unit="doc", mininterval=2))
        n_docs = 0
        while (first := next(docs, None)) is not None:  # one file per SHARD_DOCS documents
            with open(terms_dir / f"part-{shard:04d}-{n_docs // SHARD_DOCS:05d}.jsonl", "w", encoding="utf-8") as part:
                for doc in chain([first], islice(docs, SHARD_DOCS - 1)):
                    part.write(json.dumps({"id": doc.doc_id, "contents": analyze(doc.contents, doc.language)}) + "\n")
                    n_docs += 1
        return {"documents": n_docs}

    def merge_shards(self, dataset: Dataset, shard_dirs: list[Path], out: Path) -> dict[str, Any]:
        """One Lucene index over every shard's terms (document order does not change BM25 scores)."""
        start_jvm()
        inputs = out / "terms-all"
        inputs.mkdir()
        for part in sorted(p for d in shard_dirs for p in (d / "terms").glob("*.jsonl")):
            (inputs / part.name).symlink_to(part.resolve())
        n_docs = 0
        for path in inputs.iterdir():
            with open(path, encoding="utf-8") as lines:
                n_docs += sum(1 for _ in lines)
        if n_docs == 0:
            raise ValueError(f"{dataset.dataset_id} has no documents")
        args = ["-collection", "JsonCollection", "-generator", "DefaultLuceneDocumentGenerator",
                "-input", str(inputs.resolve()), "-index", str((out / "lucene").resolve()),
                "-threads", str(self.params.threads),
                "-pretokenized", "-storeDocvectors", "-quiet"]
        jclass("io.anserini.index.IndexCollection").main(args)
        shutil.rmtree(inputs)
        size = sum(p.stat().st_size for p in (out / "lucene").rglob("*") if p.is_file())
        return {"documents": n_docs, "index_bytes": size, "shards": len(shard_dirs)}

    def open(self, index: Path) -> Any:
        # Anserini's SimpleSearcher, the class Pyserini's LuceneSearcher wraps: importing
        # pyserini.search.lucene would load torch and transformers (~10 s per job) for nothing.
        # absolute: the JVM resolves relative paths against the directory the process started in
        searcher = jclass("io.anserini.search.SimpleSearcher")(str((index / "lucene").resolve()))
        searcher.set_analyzer(jclass("org.apache.lucene.analysis.core.WhitespaceAnalyzer")())
        searcher.set_bm25(float(self.params.k1), float(self.params.b))
        return searcher

    def close(self, searcher: Any) -> None:
        searcher.close()

    def encode_queries(self, queries: list[Query]) -> list[str]:
        return [analyze(q.text, q.language) for q in queries]

    def search(self, searcher: Any, queries: list[Query], encoded: list[str], k: int) -> Run:
        results: dict[str, list[tuple[str, float]]] = {}
        with tqdm(total=len(queries), desc="search", unit="query", mininterval=2, disable=len(queries) < 100) as bar:
            for start in range(0, len(queries), SEARCH_BATCH):
                qids = [q.query_id for q in queries[start : start + SEARCH_BATCH]]
                texts, ids = jclass("java.util.ArrayList")(), jclass("java.util.ArrayList")()
                for text, qid in zip(encoded[start : start + SEARCH_BATCH], qids, strict=True):
                    texts.add(text)
                    ids.add(qid)
                hits = searcher.batch_search(texts, ids, int(k), int(self.params.threads))
                for entry in hits.entrySet().toArray():
                    results[entry.getKey()] = [(h.docid, h.score) for h in entry.getValue()]
                bar.update(len(qids))
        return make_run(results, depth=k)
