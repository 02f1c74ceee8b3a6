"""Long documents: split into overlapping passages for indexing, aggregate passage runs to documents.

A document becomes passages of ``length`` units every ``stride`` units (units are words, or
characters in scripts written without spaces); passage ids are ``<doc id>#p<k>``. MaxP scores a
document by its best passage; FirstP indexes only each document's first passage. Either way the
document run goes through the same tie-breaking as every run.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from harness.data.base import Dataset, Doc, Located, Qrels, Query
from harness.languages import language
from harness.runs import Run, rank
from harness.spec import PassageSpec

MARK = "#p"


def units(text: str, lang: str) -> tuple[list[str], str]:
    """The text cut into counting units, and the string that joins them back."""
    if not language(lang).spaced:
        return [c for c in text if not c.isspace()], ""
    return text.split(), " "


def split(doc: Doc, spec: PassageSpec) -> Iterator[Doc]:
    """The passages of one document (at least one, even for an empty document)."""
    if MARK in doc.doc_id:
        raise ValueError(f"doc id {doc.doc_id!r} contains {MARK!r}, which marks passage ids")
    pieces, joiner = units(doc.contents, doc.language)
    starts = range(0, max(1, len(pieces) - spec.length + spec.stride), spec.stride)
    if spec.aggregate == "firstp":
        starts = range(1)
    for k, start in enumerate(starts):
        yield Doc(f"{doc.doc_id}{MARK}{k}", joiner.join(pieces[start : start + spec.length]), doc.language)


@dataclass
class Passages(Dataset):
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


def as_passages(dataset: Dataset, spec: PassageSpec) -> Passages:
    return Passages(f"{dataset.dataset_id}#passages", dict(dataset.options), source=dataset, spec=spec)


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
