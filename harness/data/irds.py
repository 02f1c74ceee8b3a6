"""Any ir_datasets id: ``irds:mmarco/v2/dt/dev/small`` (optionally ``?lang=nl&query_lang=en``,
``?fields=title,description``).

The real ir_datasets loader does the work (downloads, checksums, caching under
``$IR_DATASETS_HOME``). Languages come from the dataset's own ``docs_lang``/``queries_lang``
through the languages table (so mMARCO's ``dt`` is Dutch); ``?lang=`` overrides. The fingerprint
pins the ir_datasets version and hashes the queries and qrels, which ir_datasets checksums on
download along with the documents.

A query's text is ir_datasets' ``default_text()``, or, with ``?fields=a,b``, those fields of the
query record joined by a space (empty ones left out); the fields are checked against the query
class ir_datasets declares, before anything is downloaded.

Where ir_datasets is wrong or silent for a dataset, a row in one of four tables below says what
to do instead, and why; the loader has no per-collection code:

- `QUERY_SOURCES`: take the queries from another ir_datasets id (kept to the query ids judged in
  this dataset's own qrels), e.g. NeuCLIR's per-language ``trec-2023`` ids, which yield no queries.
- `QUERY_LANGUAGES`: the query language where ir_datasets declares none (NeuCLIR: English).
- `QUERY_FIELDS`: the topic fields a reference used, where they are not ``default_text()``
  (NeuCLIR: title and description, as MTD); ``?fields=`` overrides (``?fields=title``: titles only).
- `DOC_PARTS`: a collection that ir_datasets builds by concatenating per-language collections
  without saying which document is in which language (``neuclir/1/multi``); its documents are read
  part by part, each with its part's language.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import NamedTuple

from harness.data.base import QRELS_WITHOUT_QUERIES, DataError, Dataset, Doc, Judgement, Located, Query
from harness.data.formats.text import read_lines
from harness.data.registry import check_options, loader
from harness.languages import language


class QuerySource(NamedTuple):
    pattern: str
    """Regular expression that the whole ir_datasets id must match."""
    source: str
    """ir_datasets id to take the queries from (a `re.Match.expand` template: ``\\1`` works)."""
    reason: str


class QueryLanguage(NamedTuple):
    pattern: str
    language: str
    reason: str


class QueryFields(NamedTuple):
    pattern: str
    fields: tuple[str, ...]
    reason: str


class DocParts(NamedTuple):
    pattern: str
    parts: tuple[str, ...]
    """ir_datasets ids whose documents, read in this order, are exactly this dataset's documents."""
    reason: str


QUERY_SOURCES: tuple[QuerySource, ...] = (
    QuerySource(
        r"neuclir/1/(fa|ru|zh)/trec-2023", "neuclir/1/multi/trec-2023",
        "ir_datasets issue #292: the per-language trec-2023 queries are filtered to the query ids of the "
        "trec-2022 qrels, so none survive; the multi trec-2023 topics are the same topics",
    ),
)

QUERY_LANGUAGES: tuple[QueryLanguage, ...] = (
    QueryLanguage(
        r"neuclir/1/.+", "en",
        "NeuCLIR queries' default_text() is the English topic title; ir_datasets declares no queries_lang()",
    ),
)

QUERY_FIELDS: tuple[QueryFields, ...] = (
    QueryFields(
        r"neuclir/1/.+", ("title", "description"),
        "MTD's runs (PLAID-X) search NeuCLIR with title + description queries, as HLTCOE's TREC 2023 NeuCLIR "
        "runs (arXiv 2404.08118, query type TD); ir_datasets' default_text() is the title alone",
    ),
)

DOC_PARTS: tuple[DocParts, ...] = (
    DocParts(
        r"neuclir/1/multi(/.+)?", ("neuclir/1/zh", "neuclir/1/fa", "neuclir/1/ru"),
        "ir_datasets reads neuclir/1/multi's documents as the zh, fa and ru files in that order, with no "
        "language per document (docs_lang() is None, doc ids are UUIDs); each part declares its language",
    ),
)


def _lookup(table, irds_id: str):
    """The first row of ``table`` whose pattern matches all of ``irds_id``, with its match."""
    for row in table:
        if m := re.fullmatch(row.pattern, irds_id):
            return row, m
    return None, None


def _irds():
    import ir_datasets

    return ir_datasets


def _title_and_text(doc) -> tuple[str, str]:
    """A document's title and its body without the title, from ir_datasets' ``default_text()``.

    Where the record has a ``text`` field and ``default_text()`` is the title, whitespace and that
    text (NeuCLIR: ``f"{title} {text}"``), the body is ``text`` itself; otherwise the body is
    ``default_text()`` with a leading title removed.
    """
    title = getattr(doc, "title", "") or ""
    full = doc.default_text()
    body = getattr(doc, "text", None)
    if isinstance(body, str) and len(title) + len(body) <= len(full):
        middle = full[len(title):len(full) - len(body)]
        if full.startswith(title) and full.endswith(body) and not middle.strip():
            return title, body
    if title and full.startswith(title):
        return title, full[len(title):].lstrip()
    return title, full


def _undecodable(handle, irds_id: str, read: int, error: UnicodeDecodeError) -> DataError:
    """The error for a documents file ir_datasets cannot decode: its file and line, where ir_datasets
    says which file it reads (ir_datasets decodes in blocks, so the record count is only a hint)."""
    try:
        path = Path(handle.docs_path(force=False))
    except (AttributeError, TypeError, OSError):
        path = None
    if path is not None and path.is_file():
        for _ in read_lines(path):  # raises the DataError that names the line
            pass
    return DataError(f"{irds_id}: ir_datasets could not decode its documents after {read} of them ({error}); "
                     f"re-download or re-stage the file")


@dataclass
class IrDataset(Dataset):
    irds_id: str = ""

    def _load(self, irds_id: str):
        try:
            return _irds().load(irds_id)
        except KeyError:
            raise DataError(f"{self.dataset_id}: ir_datasets has no dataset {irds_id!r}") from None

    @cached_property
    def handle(self):
        return self._load(self.irds_id)

    # --- the workaround tables, applied -------------------------------------------------------

    @cached_property
    def query_source(self) -> str:
        """The ir_datasets id the queries come from (this dataset's own id unless `QUERY_SOURCES` says)."""
        row, m = _lookup(QUERY_SOURCES, self.irds_id)
        return m.expand(row.source) if row else self.irds_id

    @cached_property
    def query_handle(self):
        return self.handle if self.query_source == self.irds_id else self._load(self.query_source)

    @cached_property
    def query_fields(self) -> tuple[str, ...]:
        """The query record's fields that make a query's text (empty: ``default_text()``)."""
        return query_fields(self.irds_id, self.options)

    @cached_property
    def doc_parts(self) -> tuple[str, ...]:
        """ir_datasets ids read in turn for the documents (empty: this dataset's own docs)."""
        row, _ = _lookup(DOC_PARTS, self.irds_id)
        return row.parts if row else ()

    @cached_property
    def _part_handles(self) -> list[tuple[str, object, str]]:
        """(id, handle, language) per part, checked against the whole collection ir_datasets builds."""
        self._require("docs")
        if "lang" in self.options:
            raise DataError(
                f"{self.dataset_id}: its documents carry their own languages (read from {', '.join(self.doc_parts)}); "
                f"?lang= would give them all one"
            )
        parts = []
        for part_id in self.doc_parts:
            handle = self._load(part_id)
            declared = handle.docs_lang() if handle.has_docs() else None
            if not declared:
                raise DataError(f"{self.dataset_id}: document part {part_id!r} declares no language in ir_datasets")
            parts.append((part_id, handle, language(declared).iso))
        whole = self.handle.docs_count()
        counts = [handle.docs_count() for _, handle, _ in parts]
        classes = {handle.docs_cls() for _, handle, _ in parts}
        if (whole is not None and None not in counts and sum(counts) != whole) or classes != {self.handle.docs_cls()}:
            raise DataError(
                f"{self.dataset_id}: ir_datasets {_irds().__version__} no longer builds {self.irds_id!r} from "
                f"{', '.join(self.doc_parts)} ({whole} documents vs {counts}); update DOC_PARTS in {__name__}"
            )
        return parts

    # --- languages ----------------------------------------------------------------------------

    def _lang(self, option: str, declared: str | None, why_missing: str) -> str:
        code = self.options.get(option) or declared
        if not code:
            raise DataError(f"{self.dataset_id}: {why_missing}; add ?{option}=<iso code>")
        return language(code).iso

    @property
    def doc_languages(self) -> tuple[str, ...]:
        if self.doc_parts:
            return tuple(dict.fromkeys(lang for _, _, lang in self._part_handles))
        declared = self.handle.docs_lang() if self.handle.has_docs() else None
        return (self._lang("lang", declared, (
            f"ir_datasets declares no document language for {self.irds_id!r} (docs_lang() is None: mixed or "
            f"unknown) and the harness knows no per-document language for it (DOC_PARTS in {__name__}); "
            f"if all its documents share one language"
        )),)

    @property
    def query_language(self) -> str:
        declared = self.query_handle.queries_lang() if self.query_handle.has_queries() else None
        row, _ = _lookup(QUERY_LANGUAGES, self.irds_id)
        known = declared or (row.language if row else None) or self.options.get("lang")
        return self._lang("query_lang", known, f"ir_datasets declares no query language for {self.query_source!r}")

    # --- reading ------------------------------------------------------------------------------

    def _require(self, what: str, handle=None, irds_id: str | None = None) -> None:
        if not getattr(handle or self.handle, f"has_{what}")():
            raise DataError(f"{self.dataset_id}: ir_datasets {irds_id or self.irds_id!r} provides no {what}")

    @contextmanager
    def _fetching(self) -> Iterator[None]:
        """Turn ir_datasets' download failures into a `DataError` that says what to do."""
        try:
            yield
        except OSError as e:  # requests' errors derive from OSError
            raise DataError(
                f"{self.dataset_id}: ir_datasets could not fetch a file for {self.irds_id!r} ({e}); with no network, "
                f"stage the files under $IR_DATASETS_HOME (now {_irds().util.home_path()})"
            ) from None

    def _read_docs(self) -> Iterator[Located]:
        if self.doc_parts:
            parts = self._part_handles
            with self._fetching():
                for part_id, handle, lang in parts:
                    yield from self._iter_docs(handle, part_id, lang)
            return
        self._require("docs")
        lang = self.doc_languages[0]
        with self._fetching():
            yield from self._iter_docs(self.handle, self.irds_id, lang)

    @staticmethod
    def _iter_docs(handle, irds_id: str, lang: str) -> Iterator[Located]:
        n = -1
        try:
            for n, doc in enumerate(handle.docs_iter()):
                title, text = _title_and_text(doc)
                yield Located(Doc(doc.doc_id, text, lang, title), f"{irds_id} doc #{n}")
        except UnicodeDecodeError as e:
            raise _undecodable(handle, irds_id, n + 1, e) from None

    def _read_queries(self) -> list[Located]:
        self._require("queries", self.query_handle, self.query_source)
        check_fields(self.dataset_id, self.query_handle, self.query_source, self.query_fields)
        lang = self.query_language
        with self._fetching():
            queries = [Located(Query(q.query_id, self._query_text(q), lang), f"{self.query_source} query #{n}")
                       for n, q in enumerate(self.query_handle.queries_iter())]
        if self.query_source != self.irds_id:
            judged = {located.item.query_id for located in self._read_qrels()}
            queries = [located for located in queries if located.item.query_id in judged]
        return queries

    def _query_text(self, query) -> str:
        if not self.query_fields:
            return query.default_text()
        return " ".join(text for name in self.query_fields if (text := (getattr(query, name) or "").strip()))

    def _read_qrels(self) -> Iterator[Located]:
        self._require("qrels")
        with self._fetching():
            for n, qrel in enumerate(self.handle.qrels_iter()):
                yield Located(Judgement(qrel.query_id, qrel.doc_id, int(qrel.relevance)), f"{self.irds_id} qrel #{n}")

    def _content_identity(self):
        yield f"ir_datasets=={_irds().__version__}".encode()
        if self.query_source != self.irds_id:
            yield f"queries from {self.query_source}".encode()
        if self.query_fields:
            yield f"query fields {','.join(self.query_fields)}".encode()
        if self.doc_parts:
            yield f"docs from {' + '.join(self.doc_parts)}".encode()
        h = hashlib.sha256()
        for q in self._queries:
            h.update(f"{q.query_id}\t{q.text}\n".encode())
        for qid in sorted(self._qrels):
            for did, rel in sorted(self._qrels[qid].items()):
                h.update(f"{qid}\t{did}\t{rel}\n".encode())
        yield h.digest()

    def describe(self) -> dict[str, object]:
        """The base description, plus where queries and documents come from when a table row applies."""
        out = super().describe()
        if self.query_source != self.irds_id:
            out["query_source"] = self.query_source
        if self.query_fields:
            out["query_fields"] = list(self.query_fields)
        if self.doc_parts:
            out["doc_sources"] = {part_id: lang for part_id, _, lang in self._part_handles}
        return out


OPTIONS = ("lang", "query_lang", "fields", QRELS_WITHOUT_QUERIES)
DEFAULT_TEXT = "default"
"""``?fields=default``: ir_datasets' ``default_text()`` even where `QUERY_FIELDS` has a row."""


def query_fields(irds_id: str, options: dict[str, str]) -> tuple[str, ...]:
    """``?fields=`` as a tuple, else the `QUERY_FIELDS` row's; empty means ``default_text()``."""
    if "fields" not in options:
        row, _ = _lookup(QUERY_FIELDS, irds_id)
        return row.fields if row else ()
    value = options["fields"]
    if value == DEFAULT_TEXT:
        return ()
    fields = tuple(value.split(","))
    if not all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", f) for f in fields) or len(set(fields)) != len(fields):
        raise DataError(f"fields={value!r}: expected distinct query field names separated by commas, or "
                        f"{DEFAULT_TEXT!r}")
    return fields


def irds_settings(dataset_id: str, path: str, options: dict[str, str]) -> str:
    """The ir_datasets id, with known options whose language codes the languages table knows."""
    check_options(dataset_id, options, OPTIONS)
    for key in ("lang", "query_lang"):
        if key in options:
            language(options[key])
    try:
        query_fields(path, options)
    except DataError as e:
        raise DataError(f"{dataset_id}: {e}") from None
    return path


def check_irds(dataset_id: str, path: str, options: dict[str, str]) -> None:
    """`irds_settings`, and ir_datasets knows the id and the query fields asked for (registry look-ups
    and the declared query class: nothing is downloaded)."""
    irds_id = irds_settings(dataset_id, path, options)
    try:
        handle = _irds().registry[irds_id]
    except KeyError:
        raise DataError(f"{dataset_id}: ir_datasets {_irds().__version__} has no dataset {irds_id!r}") from None
    fields = query_fields(irds_id, options)
    if not fields:
        return
    row, m = _lookup(QUERY_SOURCES, irds_id)
    source = m.expand(row.source) if row else irds_id
    handle = _irds().registry[source] if row else handle
    check_fields(dataset_id, handle, source, fields)


def check_fields(dataset_id: str, handle, source: str, fields: tuple[str, ...]) -> None:
    """Every field is a text field of the query class ``handle`` (ir_datasets id ``source``) declares."""
    declared = handle.queries_cls()._fields if handle.has_queries() else ()
    missing = [f for f in fields if f == "query_id" or f not in declared]
    if missing:
        raise DataError(f"{dataset_id}: ir_datasets' {source!r} queries have no text field {', '.join(missing)}; "
                        f"they have {', '.join(f for f in declared if f != 'query_id') or 'no queries'}")


@loader("irds", "irds:ID[?lang=L&query_lang=L&fields=F1,F2]  any ir_datasets id, via ir_datasets", check=check_irds)
def load_irds(dataset_id: str, path: str, options: dict[str, str]) -> IrDataset:
    return IrDataset(dataset_id, options, irds_id=irds_settings(dataset_id, path, options))
