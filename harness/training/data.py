"""What the train step hands a system's recipe: training splits, examples, and batches of them.

`TrainingData` wraps the training splits of one or more parallel collections (one per language,
sharing query and document ids, as mMARCO's and the synthetic collections do). Recipes draw
`Example`s from it: a training query, a positive document and negatives — the top-ranked
non-relevant documents of a teacher run when one is given (hard negatives, with the teacher's
scores for distillation), else non-relevant documents drawn at random.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from harness.data.base import DataError, Dataset, Doc, Query


@dataclass(frozen=True)
class Example:
    """One training query with a positive and negatives; ``scores`` are the teacher's scores of
    ``[positive, *negatives]`` (relevance grades, 0 for negatives, when there is no teacher)."""

    query: Query
    positive: Doc
    negatives: tuple[Doc, ...]
    scores: tuple[float, ...]

    @property
    def docs(self) -> tuple[Doc, ...]:
        return (self.positive, *self.negatives)


class TrainingData:
    """Training splits by language. ``teacher`` is a TREC run over the training queries (shared by
    every language, since the collections are parallel)."""

    def __init__(self, splits: dict[str, Dataset], teacher: Path | None = None) -> None:
        if not splits:
            raise DataError("training data needs at least one training split")
        self.splits = splits
        self.teacher_path = teacher
        self._docs: dict[str, dict[str, Doc]] = {}

    @property
    def languages(self) -> list[str]:
        return list(self.splits)

    def docs(self, lang: str) -> dict[str, Doc]:
        """Every document of the ``lang`` split by id (loaded once)."""
        if lang not in self.splits:
            raise DataError(f"no training split in {lang!r}; have {', '.join(self.splits)}")
        if lang not in self._docs:
            self._docs[lang] = {doc.doc_id: doc for doc in self.splits[lang].docs()}
        return self._docs[lang]

    def queries(self, lang: str) -> list[Query]:
        return self.splits[lang].queries()

    @cached_property
    def teacher(self) -> dict[str, list[tuple[str, float]]] | None:
        """The teacher run's ranking per query (None without a teacher)."""
        if self.teacher_path is None:
            return None
        from harness.runs import read_trec

        return read_trec(self.teacher_path)

    def examples(self, lang: str, negatives: int, seed: int = 0) -> list[Example]:
        """One example per training query in ``lang`` (so a batch never holds a query twice and
        in-batch negatives are true negatives): a highest-graded positive drawn with ``seed``, and
        ``negatives`` negatives — the teacher's top non-relevant documents, else random ones."""
        docs = self.docs(lang)
        qrels = self.splits[lang].qrels()
        rng = random.Random(seed)
        ids = sorted(docs)
        out = []
        for query in self.queries(lang):
            judged = qrels[query.query_id]
            top = max(judged.values())
            positives = sorted(d for d, grade in judged.items() if grade == top and grade > 0 and d in docs)
            if not positives:
                continue
            positive = positives[rng.randrange(len(positives))]
            ranking = (self.teacher or {}).get(query.query_id)
            if ranking is not None:
                scored = dict(ranking)
                chosen = [d for d, _ in ranking if judged.get(d, 0) <= 0 and d in docs][:negatives]
                scores = [scored.get(positive, max(scored.values()))] + [scored[d] for d in chosen]
            else:
                chosen = []
                while len(chosen) < min(negatives, len(ids) - len(judged)):
                    d = ids[rng.randrange(len(ids))]
                    if judged.get(d, 0) <= 0 and d not in chosen:
                        chosen.append(d)
                scores = [float(top)] + [0.0] * len(chosen)
            out.append(Example(query, docs[positive], tuple(docs[d] for d in chosen), tuple(scores)))
        if not out:
            raise DataError(f"the {lang!r} training split has no query with a relevant document")
        return out

    def texts(self, lang: str | None = None, limit: int | None = None) -> list[str]:
        """Raw text (documents, then queries) of one language or of all, for tokenisers and MLM."""
        langs = [lang] if lang else self.languages
        texts = [doc.contents for code in langs for doc in self.docs(code).values()]
        texts += [q.text for code in langs for q in self.queries(code)]
        return texts[:limit] if limit is not None else texts

    def batches(self, examples: list[Example], batch_size: int, steps: int, seed: int = 0) -> Iterator[list[Example]]:
        """``steps`` batches of ``batch_size`` examples (see `epochs`)."""
        return epochs(examples, batch_size, steps, seed)


def epochs(items: list, size: int, steps: int, seed: int = 0) -> Iterator[list]:
    """``steps`` batches of ``size`` items, reshuffled each epoch (no repeats within a batch)."""
    if size > len(items):
        raise DataError(f"batch size {size} exceeds the {len(items)} training items")
    rng = random.Random(seed)
    order: list[int] = []
    for _ in range(steps):
        if len(order) < size:
            order = list(range(len(items)))
            rng.shuffle(order)
        yield [items[i] for i in order[:size]]
        del order[:size]
