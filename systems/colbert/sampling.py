"""Multilingual Translate-Distill's training entries: the pool of queries with teacher-ranked
candidates, passages sampled per step and their languages mixed (`systems.colbert.train`, ``mtd``)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from harness.data.base import DataError, Doc, Query
from harness.training import epochs

if TYPE_CHECKING:
    from harness.training import Example, TrainingData
    from systems.colbert.train import MTDRecipe

Mixing = Literal["mix-passages", "mix-entries", "round-robin"]
MIXINGS: tuple[str, ...] = ("mix-passages", "mix-entries", "round-robin")


@dataclass(frozen=True)
class Candidates:
    """One training entry before mixing: a query and its teacher-ranked candidate passages (ids) with scores."""

    query: Query
    doc_ids: tuple[str, ...]
    scores: tuple[float, ...]


@dataclass(frozen=True)
class Entry:
    """One query of a step: its passages as (doc id, language) and the teacher's score of each."""

    query: Query
    passages: tuple[tuple[str, str], ...]
    scores: tuple[float, ...]


def candidates(example: Example, sample_from: int) -> Candidates:
    """An example's first ``sample_from`` passages (positive, then negatives in teacher order) and scores."""
    docs = example.docs[:sample_from]
    return Candidates(example.query, tuple(d.doc_id for d in docs), tuple(example.scores[: len(docs)]))


def sample_passages(entry: Candidates, k: int, rng: random.Random) -> Candidates:
    """``k`` of the entry's candidates drawn uniformly without replacement (PLAID-X: shuffle, keep ``nway``)."""
    if k > len(entry.doc_ids):
        raise ValueError(f"query {entry.query.query_id}: {len(entry.doc_ids)} candidates, {k} asked for")
    picked = rng.sample(range(len(entry.doc_ids)), k)
    return Candidates(entry.query, tuple(entry.doc_ids[i] for i in picked), tuple(entry.scores[i] for i in picked))


def mix(entries: list[Candidates], languages: list[str], mixing: str, rng: random.Random) -> list[Entry]:
    """Give the passages of each entry their languages:

    - ``mix-passages``: each passage's language drawn independently (uniformly) from ``languages``;
    - ``mix-entries``: one language drawn per entry, shared by all its passages;
    - ``round-robin``: each entry repeated once per language, in ``languages`` order, consecutively.
    """
    if not languages:
        raise ValueError("no languages to mix")
    out = []
    for e in entries:
        if mixing == "mix-passages":
            out.append(Entry(e.query, tuple((d, rng.choice(languages)) for d in e.doc_ids), e.scores))
        elif mixing == "mix-entries":
            lang = rng.choice(languages)
            out.append(Entry(e.query, tuple((d, lang) for d in e.doc_ids), e.scores))
        elif mixing == "round-robin":
            out.extend(Entry(e.query, tuple((d, lang) for d in e.doc_ids), e.scores) for lang in languages)
        else:
            raise ValueError(f"unknown mixing {mixing!r}; one of {', '.join(MIXINGS)}")
    return out


def mtd_steps(pool: list[Candidates], settings: MTDRecipe, languages: list[str]) -> Iterator[list[Entry]]:
    """The entries of each step: ``queries_per_batch`` entries (reshuffled each epoch, no repeats within a
    step), ``passages_per_query`` passages sampled for each, languages assigned by ``settings.mixing``."""
    rng = random.Random(settings.seed)
    for batch in epochs(pool, settings.queries_per_batch, settings.steps, settings.seed):
        sampled = [sample_passages(e, settings.passages_per_query, rng) for e in batch]
        yield mix(sampled, languages, settings.mixing, rng)


def teacher_candidates(query: Query, ranking: list[tuple[str, float]], docs: dict[str, Doc],
                       sample_from: int) -> Candidates:
    """The teacher's top ``sample_from`` passages for ``query`` (those in the split), with its scores:
    what a PLAID-X distillation triple lists (relevant or not; the teacher's scores are the labels)."""
    top = [(d, s) for d, s in ranking if d in docs][:sample_from]
    return Candidates(query, tuple(d for d, _ in top), tuple(float(s) for _, s in top))


def mtd_pool(data: TrainingData, settings: MTDRecipe, languages: list[str]) -> tuple[list[Candidates], int]:
    """The entries MTD samples from, one per training query of the query language: with a teacher run,
    its top ``sample_from`` passages and scores (`teacher_candidates`, as PLAID-X's triples); without
    one, `TrainingData.examples` with ``sample_from - 1`` random negatives, relevance grades as scores.
    Entries with fewer than ``passages_per_query`` candidates are dropped (returned count). Every
    passage must exist in every mixed language (parallel collections)."""
    lang = settings.query_language
    if lang not in data.languages:
        raise DataError(f"no training split in the query language {lang!r}; have "
                        f"{', '.join(data.languages)} (set query_language)")
    teacher = data.teacher
    if teacher is not None:
        docs = data.docs(lang)
        queries = [q for q in data.queries(lang) if q.query_id in teacher]
        entries = [teacher_candidates(q, teacher[q.query_id], docs, settings.sample_from) for q in queries]
    else:
        entries = [candidates(e, settings.sample_from)
                   for e in data.examples(lang, settings.sample_from - 1, settings.seed)]
    pool = [c for c in entries if len(c.doc_ids) >= settings.passages_per_query]
    if not pool:
        raise DataError(f"no training query has {settings.passages_per_query} candidate passages"
                        f"{' in the teacher run' if teacher is not None else ''}")
    for other in languages:
        docs = data.docs(other)
        missing = sorted({d for c in pool for d in c.doc_ids if d not in docs})
        if missing:
            raise DataError(f"the {other!r} training split lacks {len(missing)} candidate passages (e.g. "
                            f"{', '.join(missing[:3])}); MTD needs parallel collections with shared ids")
    return pool, len(entries) - len(pool)

