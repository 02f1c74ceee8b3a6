"""The one dataset abstraction every loader produces: docs, queries, qrels, languages.

Every loader's records pass the same checks here, and each error names where the record was read
(``file:line``, or a position where the source has no lines):

- ids are non-empty and hold no whitespace (a TREC run is whitespace-separated);
- doc ids and query ids are unique;
- a query's text is not empty or whitespace only, when the query is judged (a system cannot search
  it); unjudged empty queries and empty documents are allowed, and counted by `Dataset.describe`;
- a (query, doc) pair judged twice has one grade (the same grade twice is accepted);
- qrels name known queries (unless ``?qrels_without_queries=drop``) and, once `Dataset.docs` has
  read every document, known documents.

The file readers the loaders share are in `harness.data.formats`.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from array import array
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from harness.code import code_version
from harness.languages import language

if TYPE_CHECKING:
    import numpy as np

QRELS_WITHOUT_QUERIES = "qrels_without_queries"
"""The option of the loaders of real collections (see `Dataset.qrels`); its one value is ``drop``."""

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
class Judgement:
    """One qrels line: the relevance grade of a document for a query."""

    query_id: str
    doc_id: str
    relevance: int


@dataclass(frozen=True)
class Located:
    """A record with where it was read from (``file:line`` or a position), for error messages."""

    item: Doc | Query | Judgement
    where: str


def valid_id(value: str) -> bool:
    """Whether ``value`` can be a doc or query id: non-empty, no whitespace anywhere."""
    return value.split() == [value]


def check_id(where: str, kind: str, value: str) -> str:
    """``value``, if `valid_id`; else a `DataError` naming ``where``."""
    if not valid_id(value):
        raise DataError(f"{where}: {kind} id {value!r} is empty or contains whitespace")
    return value


def blank(text: str) -> bool:
    """Empty or whitespace only."""
    return not text or text.isspace()


@dataclass
class Dataset(ABC):
    """A retrieval test collection.

    Subclasses implement the ``_read_*`` methods; the public methods add the checks every loader
    needs (see the module docstring).
    """

    dataset_id: str
    options: dict[str, str] = field(default_factory=dict)
    _doc_counts: tuple[int, int] | None = field(default=None, init=False, repr=False, compare=False)
    """(documents, empty documents), once `docs` has read every document."""

    @abstractmethod
    def _read_docs(self) -> Iterator[Located]: ...

    @abstractmethod
    def _read_queries(self) -> Iterable[Query | Located]:
        """Queries, each with where it was read (a bare `Query` is placed at the dataset id)."""

    @abstractmethod
    def _read_qrels(self) -> Qrels | Iterable[Located]:
        """Judgements, each with where it was read; or a `Qrels` mapping made in code or taken from
        another, already checked `Dataset` (passages, ...), which is not checked against the documents."""

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
        """Documents in collection order; a bad doc id is a `DataError`, and so, once every document
        is read, is a repeated one. Read through, they are counted and the qrels are checked against
        their ids. Ids are kept as 8-byte hashes (`_repeated_id`), so a reader of any shard of a
        collection holds 8 bytes per document, not the ids."""
        import numpy as np

        hashes = array("q")
        empty = 0
        for located in self._read_docs():
            doc = located.item
            check_id(located.where, "doc", doc.doc_id)
            hashes.append(hash(doc.doc_id))
            empty += blank(doc.text) and blank(doc.title)
            yield doc
        seen = np.sort(np.frombuffer(hashes, np.int64))
        del hashes
        if (repeats := seen[1:][seen[1:] == seen[:-1]]).size:
            self._repeated_id(set(repeats.tolist()))
        self._check_judged_docs(seen)
        self._doc_counts = (len(seen), empty)

    def _repeated_id(self, hashes: set[int]) -> None:
        """Read the documents again, comparing the ids whose hash is in ``hashes`` (repeated hashes):
        a `DataError` at the first repeated id; nothing when the hashes only collided."""
        seen: set[str] = set()
        for located in self._read_docs():
            doc_id = located.item.doc_id
            if hash(doc_id) in hashes:
                if doc_id in seen:
                    raise DataError(f"{located.where}: duplicate doc id {doc_id!r} in {self.dataset_id}")
                seen.add(doc_id)

    def _located(self, items: Iterable[Query | Located]) -> Iterator[Located]:
        for item in items:
            yield item if isinstance(item, Located) else Located(item, f"{self.dataset_id} query {item.query_id}")

    @cached_property
    def _checked_queries(self) -> tuple[list[Query], dict[str, str]]:
        """Every query, checked, and where each query with empty text was read."""
        queries: list[Query] = []
        seen: set[str] = set()
        empty: dict[str, str] = {}
        for located in self._located(self._read_queries()):
            query = located.item
            check_id(located.where, "query", query.query_id)
            if query.query_id in seen:
                raise DataError(f"{located.where}: duplicate query id {query.query_id!r} in {self.dataset_id}")
            seen.add(query.query_id)
            language(query.language)
            if blank(query.text):
                empty[query.query_id] = located.where
            queries.append(query)
        return queries, empty

    @property
    def _queries(self) -> list[Query]:
        return self._checked_queries[0]

    def queries(self) -> list[Query]:
        """Queries that have at least one judgement (as official evaluation does)."""
        judged = self.qrels()
        return [q for q in self._queries if q.query_id in judged]

    def _judgements(self) -> tuple[Iterable[Located], bool]:
        """The judgements as read, and whether they are to be checked against the documents."""
        raw = self._read_qrels()
        if isinstance(raw, Mapping):
            where = f"{self.dataset_id} qrels"
            return (Located(Judgement(q, d, r), where) for q, judged in raw.items() for d, r in judged.items()), False
        return raw, True

    @cached_property
    def _checked_qrels(self) -> tuple[Qrels, bool]:
        """The qrels, checked (ids, one grade per pair, known queries, searchable judged queries)."""
        judgements, against_docs = self._judgements()
        known = {q.query_id for q in self._queries}
        qrels: Qrels = {}
        unknown: dict[str, str] = {}
        for located in judgements:
            j = located.item
            check_id(located.where, "query", j.query_id)
            check_id(located.where, "doc", j.doc_id)
            if j.query_id not in known:
                unknown.setdefault(j.query_id, located.where)
            earlier = qrels.setdefault(j.query_id, {}).setdefault(j.doc_id, j.relevance)
            if earlier != j.relevance:
                raise DataError(f"{located.where}: query {j.query_id!r} judges doc {j.doc_id!r} {j.relevance}, "
                                f"but an earlier line judged it {earlier}")
        if unknown and self.options.get(QRELS_WITHOUT_QUERIES) != "drop":
            first = next(iter(unknown))
            raise DataError(
                f"{unknown[first]}: qrels mention {len(unknown)} queries that are not in the queries of "
                f"{self.dataset_id} (e.g. {list(unknown)[:3]}); ?qrels_without_queries=drop drops them"
            )
        qrels = {qid: judged for qid, judged in qrels.items() if qid in known}
        empty = self._checked_queries[1]
        for qid in qrels:
            if qid in empty:
                raise DataError(f"{empty[qid]}: query {qid!r} has empty text but is judged; a system cannot search it")
        return qrels, against_docs

    @property
    def _qrels(self) -> Qrels:
        return self._checked_qrels[0]

    def qrels(self) -> Qrels:
        return self._qrels

    def _check_judged_docs(self, hashes: np.ndarray) -> None:
        """Every judged document's id hash is among ``hashes`` (the sorted hashes of the documents'
        ids; a missing document whose hash collides with a present one's, at odds of about one in
        2^64 per document, goes unnoticed); else a `DataError` naming the first such qrels line."""
        import numpy as np

        qrels, against_docs = self._checked_qrels
        if not against_docs:
            return
        judged_ids = list({doc_id for judged in qrels.values() for doc_id in judged})
        wanted = np.array([hash(doc_id) for doc_id in judged_ids], np.int64)
        at = np.minimum(np.searchsorted(hashes, wanted), max(len(hashes) - 1, 0))
        found = (hashes[at] == wanted) if len(hashes) else np.zeros(len(wanted), bool)
        absent = {doc_id for doc_id, present in zip(judged_ids, found.tolist(), strict=True) if not present}
        missing = sum(doc_id in absent for judged in qrels.values() for doc_id in judged)
        if not missing:
            return
        qid, doc_id = next((qid, doc_id) for qid, judged in qrels.items() for doc_id in judged if doc_id in absent)
        judgements, _ = self._judgements()  # read again, only to say where
        where = next((located.where for located in judgements
                      if (located.item.query_id, located.item.doc_id) == (qid, doc_id)), f"{self.dataset_id} qrels")
        raise DataError(f"{where}: qrels judge doc {doc_id!r} (query {qid!r}), which is not among the documents "
                        f"of {self.dataset_id} ({missing} such judgements)")

    @cached_property
    def fingerprint(self) -> str:
        """Content hash (or pinned version) of this collection; enters every run identity."""
        h = hashlib.sha256(self.dataset_id.encode())
        h.update(code_version(type(self).__module__).encode())  # the loader's code shapes the content too
        for chunk in self._content_identity():
            h.update(chunk)
        return h.hexdigest()[:16]

    def describe(self) -> dict[str, object]:
        """Summary for records: judged queries, queries with empty text (never searched: unjudged),
        judgements and relevant ones (grade > 0), and documents and empty documents (empty or
        whitespace-only title and text) once `docs` has read them all in this process (None before).
        Published dataset statistics are compared with these (`STATISTICS`)."""
        docs, empty_docs = self._doc_counts or (None, None)
        qrels = self.qrels()
        return {
            "id": self.dataset_id,
            "fingerprint": self.fingerprint,
            "doc_languages": list(self.doc_languages),
            "queries": len(self.queries()),
            "empty_queries": len(self._checked_queries[1]),
            "judgements": sum(len(judged) for judged in qrels.values()),
            "relevant": sum(grade > 0 for judged in qrels.values() for grade in judged.values()),
            "docs": docs,
            "empty_docs": empty_docs,
        }


STATISTICS = ("queries", "docs", "judgements", "relevant", "relevant_per_query")
"""Dataset statistics a published table can state and `statistic` reads from a `Dataset.describe`."""


def statistic(described: Mapping[str, object], name: str) -> float | None:
    """One of `STATISTICS` from a `Dataset.describe` record (None where it lacks the counts: documents
    not read in that process, or a record made before judgements were counted)."""
    if name == "relevant_per_query":
        relevant, queries = described.get("relevant"), described.get("queries")
        return relevant / queries if isinstance(relevant, int) and isinstance(queries, int) and queries else None
    if name not in STATISTICS:
        raise ValueError(f"unknown dataset statistic {name!r}; known: {', '.join(STATISTICS)}")
    value = described.get(name)
    return value if isinstance(value, int) else None


def sha256_file(path, chunk: int = 1 << 20) -> bytes:
    """Digest of a file's bytes, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.digest()
