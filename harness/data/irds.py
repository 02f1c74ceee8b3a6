"""Any ir_datasets id: ``irds:mmarco/v2/dt/dev/small`` (optionally ``?lang=nl&query_lang=en``).

The real ir_datasets loader does the work (downloads, checksums, caching under
``$IR_DATASETS_HOME``). Languages come from the dataset's own ``docs_lang``/``queries_lang``
through the languages table (so mMARCO's ``dt`` is Dutch); ``?lang=`` overrides. The fingerprint
pins the ir_datasets version and hashes the queries and qrels, which ir_datasets checksums on
download along with the documents.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property

from harness.data.base import DataError, Dataset, Doc, Located, Qrels, Query
from harness.data.registry import loader
from harness.languages import language


def _irds():
    import ir_datasets

    return ir_datasets


@dataclass
class IrDataset(Dataset):
    irds_id: str = ""

    @cached_property
    def handle(self):
        irds = _irds()
        try:
            return irds.load(self.irds_id)
        except KeyError:
            raise DataError(f"{self.dataset_id}: ir_datasets has no dataset {self.irds_id!r}") from None

    def _lang(self, option: str, declared: str | None) -> str:
        code = self.options.get(option) or declared
        if not code:
            raise DataError(f"{self.dataset_id}: ir_datasets declares no language; add ?{option}=<iso code>")
        return language(code).iso

    @property
    def doc_languages(self) -> tuple[str, ...]:
        return (self._lang("lang", self.handle.docs_lang() if self.handle.has_docs() else None),)

    @property
    def query_language(self) -> str:
        declared = self.handle.queries_lang() if self.handle.has_queries() else None
        return self._lang("query_lang", declared or self.options.get("lang"))

    def _require(self, what: str) -> None:
        if not getattr(self.handle, f"has_{what}")():
            raise DataError(f"{self.dataset_id}: ir_datasets {self.irds_id!r} provides no {what}")

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
        self._require("docs")
        lang = self.doc_languages[0]
        with self._fetching():
            yield from self._iter_docs(lang)

    def _iter_docs(self, lang: str) -> Iterator[Located]:
        for n, doc in enumerate(self.handle.docs_iter()):
            title = getattr(doc, "title", "") or ""
            text = doc.default_text()
            if title and text.startswith(title):
                text = text[len(title):].lstrip()
            yield Located(Doc(doc.doc_id, text, lang, title), f"{self.irds_id} doc #{n}")

    def _read_queries(self) -> list[Query]:
        self._require("queries")
        lang = self.query_language
        with self._fetching():
            return [Query(q.query_id, q.default_text(), lang) for q in self.handle.queries_iter()]

    def _read_qrels(self) -> Qrels:
        self._require("qrels")
        qrels: Qrels = {}
        with self._fetching():
            for qrel in self.handle.qrels_iter():
                qrels.setdefault(qrel.query_id, {})[qrel.doc_id] = int(qrel.relevance)
        return qrels

    def _content_identity(self):
        yield f"ir_datasets=={_irds().__version__}".encode()
        h = hashlib.sha256()
        for q in self._queries:
            h.update(f"{q.query_id}\t{q.text}\n".encode())
        for qid in sorted(self._qrels):
            for did, rel in sorted(self._qrels[qid].items()):
                h.update(f"{qid}\t{did}\t{rel}\n".encode())
        yield h.digest()


@loader("irds", "irds:ID[?lang=L&query_lang=L]  any ir_datasets id, via ir_datasets")
def load_irds(dataset_id: str, path: str, options: dict[str, str]) -> IrDataset:
    unknown = set(options) - {"lang", "query_lang", "qrels_without_queries"}
    if unknown:
        raise DataError(f"{dataset_id}: unknown options {sorted(unknown)}; expected lang, query_lang")
    return IrDataset(dataset_id, options, irds_id=path)
