"""BM25 through Pyserini (Lucene), one analyzer per language from the languages table.

Documents are indexed by Anserini's own ``IndexCollection`` (run in this process's JVM) with the
Lucene analyzer the languages table names for each document's language, so terms, document lengths
and therefore BM25 scores are those of a native ``-language`` index; Anserini analyses and indexes
with as many threads as the job has. The same path serves the languages Anserini has no
``-language`` for (Greek, Romanian, Tamil, …; see `analyzer_option`) and mixed-language
collections: the documents of each analyzer are indexed on their own and the indexes' segments
merged into one (as are the shards' indexes of a sharded build). Queries are analysed with the same
analyzers and searched with Pyserini's ``LuceneSearcher``.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from functools import cache
from itertools import cycle
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from pydantic import Field
from tqdm import tqdm

from harness.data.base import Dataset, Doc, Query
from harness.languages import lucene_analyzer
from harness.runs import Run, make_run
from harness.system import Params, System, index_in_one_shard, shard_docs
from systems.bm25.lucene import analyzer_option, anserini_jar, index_collection, jclass, merge_indexes, start_jvm

PARTS_PER_THREAD = 4
SEARCH_BATCH = 1_000


@dataclass(slots=True)
class AnalyzerFiles:
    """One analyzer's JSON-lines files, written in turn, and how many documents they hold."""

    parts: Iterator[BinaryIO]
    documents: int = 0


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


def json_line(doc: Doc) -> bytes:
    """``doc`` as a line of Anserini's JSON collection (UTF-8; orjson, several times faster than
    ``json.dumps`` here; text with lone surrogates, which UTF-8 cannot hold, as ASCII escapes)."""
    try:
        return orjson.dumps({"id": doc.doc_id, "contents": doc.contents}, option=orjson.OPT_APPEND_NEWLINE)
    except orjson.JSONEncodeError:
        return (json.dumps({"id": doc.doc_id, "contents": doc.contents}) + "\n").encode("ascii")


class BM25System(System):
    """BM25 over per-language analysed terms (see the module docstring); shardable: each shard indexes
    its documents, the merge joins the shards' indexes."""

    Params = BM25Params
    retrieve_params = frozenset({"k1", "b"})
    shard_folder = "shard"

    def extra_index_identity(self, dataset: Dataset) -> dict[str, Any]:
        return {"analyzers": {lang: lucene_analyzer(lang) for lang in dataset.doc_languages},
                "anserini": anserini_jar().name}

    def index(self, dataset: Dataset, out: Path) -> dict[str, Any]:
        return index_in_one_shard(self, dataset, out)

    def index_shard(self, dataset: Dataset, shard: int, shards: int, out: Path) -> dict[str, Any]:
        """The shard's documents as a Lucene index in ``out/shard/lucene`` (see `write_docs`, `index_docs`)."""
        start_jvm()
        work = out / self.shard_folder
        written = self.write_docs(shard_docs(dataset, shard, shards), work / "docs",
                                  desc=f"read {dataset.dataset_id} [{shard + 1}/{shards}]")
        if n_docs := sum(written.values()):
            self.index_docs(work / "docs", written, work / "lucene")
        shutil.rmtree(work / "docs")
        (work / "documents").write_text(f"{n_docs}\n")
        return {"documents": n_docs}

    def write_docs(self, docs: Iterable[Doc], folder: Path, desc: str) -> dict[str, int]:
        """Write ``docs`` as JSON lines, a folder per analyzer and `PARTS_PER_THREAD` files per indexing
        thread (Anserini indexes one file per thread at a time); how many documents each analyzer got."""
        folder.mkdir(parents=True)
        analyzers: dict[str, AnalyzerFiles] = {}
        by_language: dict[str, AnalyzerFiles] = {}
        with ExitStack() as files:
            for doc in tqdm(docs, desc=desc, unit="doc", mininterval=2):
                if (target := by_language.get(doc.language)) is None:  # a language's first document must analyse here (Thai needs ICU)
                    analyze(doc.contents, doc.language)
                    if (name := lucene_analyzer(doc.language)) not in analyzers:
                        (folder / name).mkdir()
                        analyzers[name] = AnalyzerFiles(cycle([
                            files.enter_context(open(folder / name / f"part-{i:03d}.jsonl", "wb"))
                            for i in range(PARTS_PER_THREAD * self.params.threads)]))
                    target = by_language[doc.language] = analyzers[name]
                next(target.parts).write(json_line(doc))
                target.documents += 1
        return {name: analyzers[name].documents for name in sorted(analyzers)}

    def index_docs(self, folder: Path, written: dict[str, int], out: Path) -> None:
        """Anserini's ``IndexCollection`` over each analyzer's folder of ``folder`` (``written``: its
        documents, all of which must be indexed), into ``out``; the indexes' segments merged there
        when there are several."""
        targets = [out] if len(written) == 1 else [folder / f"{name}.lucene" for name in written]
        for (name, documents), target in zip(written.items(), targets, strict=True):
            index_collection(["-collection", "JsonCollection", "-generator", "DefaultLuceneDocumentGenerator",
                              "-input", str((folder / name).resolve()), "-index", str(target.resolve()),
                              "-threads", str(self.params.threads), "-language", analyzer_option(name),
                              "-storeDocvectors", "-quiet"], documents=documents)
        if len(written) > 1:
            merge_indexes(targets, out)

    def merge_shards(self, dataset: Dataset, shard_dirs: list[Path], out: Path) -> dict[str, Any]:
        """One Lucene index of every shard's segments (document order does not change BM25 scores)."""
        start_jvm()
        work = [d / self.shard_folder for d in shard_dirs]
        n_docs = sum(int((w / "documents").read_text()) for w in work)
        if n_docs == 0:
            raise ValueError(f"{dataset.dataset_id} has no documents")
        parts = [w / "lucene" for w in work if (w / "lucene").is_dir()]
        if shard_dirs == [out]:  # unsharded: the one shard's index is the index
            parts[0].rename(out / "lucene")
        else:
            merge_indexes(parts, out / "lucene")
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
