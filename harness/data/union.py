"""One collection from several: ``union:ID1+ID2+...`` (e.g. NeuCLIR 2022 as one MLIR task).

Documents are concatenated, each keeping its own language, and must have distinct ids across the
parts; queries shared by several parts must have the same text; qrels are merged per query, and
a (query, doc) pair the parts grade differently is an error.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property

from harness.data.base import DataError, Dataset, Judgement, Located, Query
from harness.data.registry import check_dataset_id, load_dataset, loader

SEPARATOR = "+"


@dataclass
class Union(Dataset):
    part_ids: list[str] = field(default_factory=list)

    @cached_property
    def parts(self) -> list[Dataset]:
        return [load_dataset(part) for part in self.part_ids]

    def _read_docs(self) -> Iterator[Located]:
        for part in self.parts:
            for doc in part.docs():
                yield Located(doc, f"{part.dataset_id} doc {doc.doc_id}")

    def _read_queries(self) -> list[Query]:
        merged: dict[str, Query] = {}
        for part in self.parts:
            for query in part.queries():
                known = merged.setdefault(query.query_id, query)
                if known.text != query.text:
                    raise DataError(f"{self.dataset_id}: query {query.query_id!r} differs between parts "
                                    f"({known.text!r} vs {query.text!r} in {part.dataset_id})")
        return list(merged.values())

    def _read_qrels(self) -> Iterator[Located]:
        """The parts' checked qrels, so a pair the parts grade differently is an error, not a silent choice."""
        for part in self.parts:
            for qid, judged in part.qrels().items():
                for doc_id, grade in judged.items():
                    yield Located(Judgement(qid, doc_id, grade), f"{part.dataset_id} qrels")

    def _content_identity(self):
        for part in self.parts:
            yield part.fingerprint.encode()

    @property
    def doc_languages(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(lang for part in self.parts for lang in part.doc_languages))


def union_parts(dataset_id: str) -> list[str]:
    """The part ids of a union id."""
    parts = dataset_id.removeprefix("union:").split(SEPARATOR)
    if len(parts) < 2 or not all(parts):
        raise DataError(f"{dataset_id}: a union needs at least two dataset ids joined by {SEPARATOR!r}")
    return parts


def check_union(dataset_id: str, path: str, options: dict[str, str]) -> None:
    """Every part's own check."""
    for part in union_parts(dataset_id):
        check_dataset_id(part)


@loader("union", "union:ID1+ID2+...  several collections as one (documents keep their languages)", check=check_union)
def load_union(dataset_id: str, path: str, options: dict[str, str]) -> Union:
    return Union(dataset_id, {}, part_ids=union_parts(dataset_id))
