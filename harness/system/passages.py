"""Long documents: `Passages` wraps any system to index passages and rank documents.

A document becomes passages of ``length`` units every ``stride`` units; passage ids are
``<doc id>#p<k>``. Units are, by default, tokens of a tokenizer, as PLAID-X's
``create_passage_collection`` (MTD): ``title + " " + text`` with newlines and runs of whitespace made
one space, tokenised without special tokens, passages starting every ``stride`` tokens while a start
lies inside the document (so the last ones may lie inside the one before), each passage the span of
the text its tokens cover (from the tokenizer's offsets). Units may also be words (characters in
scripts written without spaces), starting every ``stride`` words until the rest fits in one passage.
MaxP scores a document by its best passage; FirstP indexes only each document's first passage.
Either way the document run goes through the same tie-breaking as every run. The wrapper is a
`System` itself, so indexing, retrieval and latency measurement all run the same pipeline: split,
inner system, MaxP.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from harness.code import code_version
from harness.data.base import Dataset, Doc, Located, Qrels, Query
from harness.languages import language
from harness.runs import Run, rank
from harness.spec import PassageSpec
from harness.system.base import Shardable, System

MARK = "#p"


def units(text: str, lang: str) -> tuple[list[str], str]:
    """The text cut into counting units, and the string that joins them back."""
    if not language(lang).spaced:
        return [c for c in text if not c.isspace()], ""
    return text.split(), " "


@lru_cache(maxsize=4)
def tokenizer(name: str) -> Any:
    """A fast (offset-giving) tokenizer, loaded once per process; transformers is imported only here."""
    from transformers import AutoTokenizer

    loaded = AutoTokenizer.from_pretrained(name)
    if not loaded.is_fast:
        raise ValueError(f"passages: tokenizer {name!r} has no fast version, which the token offsets need")
    return loaded


def plaidx_text(doc: Doc) -> str:
    """``title + " " + text`` with newlines and whitespace runs made one space (PLAID-X's ``strip_newlines``)."""
    title, text = (re.sub(r"\s+", " ", part.replace("\n", " ")) for part in (doc.title, doc.text))
    return f"{title} {text}" if title else text


def token_passages(text: str, spec: PassageSpec) -> list[str]:
    """``text`` cut into spans of ``length`` tokens starting every ``stride`` tokens (module docstring)."""
    offsets = tokenizer(spec.tokenizer)(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    if not offsets:
        return [text]
    # a passage ends where the token after it starts (the end offset of a lone "▁" piece can point
    # past the character that follows it), or at the end of the text
    ends = [start for start, _ in offsets[1:]] + [len(text)]
    return [text[offsets[start][0] : ends[min(start + spec.length, len(offsets)) - 1]].strip()
            for start in range(0, len(offsets), spec.stride)]


def split(doc: Doc, spec: PassageSpec) -> Iterator[Doc]:
    """The passages of one document (at least one, even for an empty document)."""
    if MARK in doc.doc_id:
        raise ValueError(f"doc id {doc.doc_id!r} contains {MARK!r}, which marks passage ids")
    if spec.unit == "tokens":
        texts = token_passages(plaidx_text(doc), spec)
    else:
        pieces, joiner = units(doc.contents, doc.language)
        starts = range(0, max(1, len(pieces) - spec.length + spec.stride), spec.stride)
        texts = [joiner.join(pieces[start : start + spec.length]) for start in starts]
    if spec.aggregate == "firstp":
        texts = texts[:1]
    for k, text in enumerate(texts):
        yield Doc(f"{doc.doc_id}{MARK}{k}", text, doc.language)


@dataclass
class PassageDataset(Dataset):
    """A dataset's documents as passages; queries and qrels are the dataset's own."""

    source: Dataset | None = None
    spec: PassageSpec | None = None

    def _read_docs(self) -> Iterator[Located]:
        for doc in self.source.docs():
            for passage in split(doc, self.spec):
                yield Located(passage, f"{self.source.dataset_id} {passage.doc_id}")

    def _read_queries(self) -> list[Query]:
        return self.source.queries()

    def _read_qrels(self) -> Qrels:
        return self.source.qrels()

    def _content_identity(self) -> Iterable[bytes]:
        yield self.source.fingerprint.encode()
        yield self.spec.model_dump_json().encode()

    @property
    def doc_languages(self) -> tuple[str, ...]:
        return self.source.doc_languages


def as_passages(dataset: Dataset, spec: PassageSpec) -> PassageDataset:
    return PassageDataset(f"{dataset.dataset_id}#passages", dict(dataset.options), source=dataset, spec=spec)


def aggregate(run: Run, depth: int) -> Run:
    """Document run from a passage run: each document scored by its best passage (MaxP)."""
    documents: Run = {}
    for qid, ranking in run.items():
        best: dict[str, float] = {}
        for passage_id, score in ranking:
            doc_id = passage_id.rsplit(MARK, 1)[0]
            best[doc_id] = max(score, best.get(doc_id, score))
        documents[qid] = rank(best, depth)
    return documents


class Passages(System):
    """``inner`` over the passages of each document: it indexes the passages (`as_passages`) and
    searches ``search_depth`` (or ``search_factor`` × ``k``) of them per query, which `aggregate` turns
    into the top ``k`` documents. Its identity is the inner system's plus the passage settings and this module's code."""

    def __init__(self, inner: System, spec: PassageSpec) -> None:
        super().__init__(inner.params, inner.name)
        self.inner, self.spec = inner, spec
        self.origin = inner.origin

    def identity(self) -> dict[str, Any]:
        return {**self.inner.identity(),
                "passages": {**self.spec.model_dump(), "code": code_version(__name__)}}

    def index_identity(self, dataset: Dataset) -> dict[str, Any]:
        """The inner system's, of the passages (whose fingerprint covers the settings and this code)."""
        return self.inner.index_identity(as_passages(dataset, self.spec))

    def with_checkpoint(self, folder: Path, origin: str) -> Passages:
        return Passages(self.inner.with_checkpoint(folder, origin), self.spec)

    def index(self, dataset: Dataset, out: Path) -> dict[str, Any]:
        return self.inner.index(as_passages(dataset, self.spec), out)

    def index_shard(self, dataset: Dataset, shard: int, shards: int, out: Path) -> dict[str, Any]:
        return self._shardable().index_shard(as_passages(dataset, self.spec), shard, shards, out)

    def merge_shards(self, dataset: Dataset, shard_dirs: list[Path], out: Path) -> dict[str, Any]:
        return self._shardable().merge_shards(as_passages(dataset, self.spec), shard_dirs, out)

    def _shardable(self) -> Shardable:
        if not isinstance(self.inner, Shardable):
            raise TypeError(f"system {self.name!r} does not build its index in shards")
        return self.inner

    def open(self, index: Path) -> Any:
        return self.inner.open(index)

    def close(self, searcher: Any) -> None:
        self.inner.close(searcher)

    def encode_queries(self, queries: list[Query]) -> list[Any]:
        return self.inner.encode_queries(queries)

    def search(self, searcher: Any, queries: list[Query], encoded: list[Any], k: int) -> Run:
        return aggregate(self.inner.search(searcher, queries, encoded, self.spec.passages_searched(k)), k)
