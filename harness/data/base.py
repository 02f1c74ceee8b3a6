"""The one dataset abstraction every loader produces: docs, queries, qrels, languages."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property

from harness.languages import language

Qrels = dict[str, dict[str, int]]
"""query id → doc id → graded relevance."""


class DataError(ValueError):
    """Malformed or missing input; the message names the file (and line) and what was expected."""


@dataclass(frozen=True)
class Doc:
    doc_id: str
    text: str
    language: str
    title: str = ""

    @property
    def contents(self) -> str:
        """Title and body as one text, the way every system in the harness sees a document."""
        return f"{self.title}\n{self.text}" if self.title else self.text


@dataclass(frozen=True)
class Query:
    query_id: str
    text: str
    language: str


@dataclass(frozen=True)
class Located:
    """A record with where it was read from (``file:line`` or a position), for error messages."""

    item: Doc
    where: str


@dataclass
class Dataset(ABC):
    """A retrieval test collection.

    Subclasses implement the ``_read_*`` methods; the public methods add the checks every loader
    needs (unique doc ids, known languages, qrels pointing at known queries).
    """

    dataset_id: str
    options: dict[str, str] = field(default_factory=dict)

    @abstractmethod
    def _read_docs(self) -> Iterator[Located]: ...

    @abstractmethod
    def _read_queries(self) -> list[Query]: ...

    @abstractmethod
    def _read_qrels(self) -> Qrels: ...

    @abstractmethod
    def _content_identity(self) -> Iterable[bytes]:
        """Bytes that change whenever the content changes (file hashes, pinned versions, params)."""

    @property
    @abstractmethod
    def doc_languages(self) -> tuple[str, ...]:
        """ISO codes of the documents' languages (one for a monolingual collection)."""

    def training(self) -> Dataset | None:
        """The training split over the same documents, where the collection has one."""
        return None

    def docs(self) -> Iterator[Doc]:
        """Documents in collection order; a repeated doc id is a `DataError`."""
        seen: set[str] = set()
        for located in self._read_docs():
            doc = located.item
            if doc.doc_id in seen:
                raise DataError(f"{located.where}: duplicate doc id {doc.doc_id!r} in {self.dataset_id}")
            seen.add(doc.doc_id)
            yield doc

    @cached_property
    def _queries(self) -> list[Query]:
        queries = self._read_queries()
        ids = [q.query_id for q in queries]
        if len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
            raise DataError(f"{self.dataset_id}: duplicate query id {dup!r}")
        for q in queries:
            language(q.language)
        return queries

    def queries(self) -> list[Query]:
        """Queries that have at least one judgement (as official evaluation does)."""
        judged = self.qrels()
        return [q for q in self._queries if q.query_id in judged]

    @cached_property
    def _qrels(self) -> Qrels:
        qrels = self._read_qrels()
        known = {q.query_id for q in self._queries}
        unknown = sorted(set(qrels) - known)
        if unknown and self.options.get("qrels_without_queries") != "drop":
            raise DataError(
                f"{self.dataset_id}: qrels mention {len(unknown)} queries that are not in the queries "
                f"(e.g. {unknown[:3]})"
            )
        return {qid: docs for qid, docs in qrels.items() if qid in known}

    def qrels(self) -> Qrels:
        return self._qrels

    @cached_property
    def fingerprint(self) -> str:
        """Content hash (or pinned version) of this collection; enters every run identity."""
        h = hashlib.sha256(self.dataset_id.encode())
        for chunk in self._content_identity():
            h.update(chunk)
        return h.hexdigest()[:16]

    def describe(self) -> dict[str, object]:
        return {
            "id": self.dataset_id,
            "fingerprint": self.fingerprint,
            "doc_languages": list(self.doc_languages),
            "queries": len(self.queries()),
        }


def sha256_file(path, chunk: int = 1 << 20) -> bytes:
    """Digest of a file's bytes, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.digest()
