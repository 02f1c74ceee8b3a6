"""Deterministic synthetic multilingual collections, for the demo suite and for scale tests.

``synthetic:LANG?docs=N&queries=Q&train=T&seed=S`` yields N documents written in an invented
vocabulary in LANG's script (Latin with the language's diacritics, Cyrillic, Greek, Arabic,
Devanagari, Thai and CJK without spaces, Hangul, ...). Every language with the same seed gets the
*same* collection — same topics, same word ids — only the surface forms differ, so collections
are parallel like mMARCO's. Documents mix words of a primary topic, a secondary topic and a
Zipfian background; a query draws words from one topic; a document is relevant with grade 2 when
the query's topic is its primary topic and grade 1 when it is its secondary one. A disjoint set of
topics gives the training queries. Documents are generated in blocks, so a million-document
collection streams in bounded memory.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from harness.data.base import DataError, Dataset, Doc, Located, Qrels, Query
from harness.data.registry import check_options, loader
from harness.languages import language

GENERATOR_VERSION = "1"
BLOCK = 1024
KEYWORDS_PER_TOPIC = 6


def _letters(first: int, last: int) -> list[str]:
    return [chr(c) for c in range(first, last + 1)]


# Syllable inventories per script: onsets × nuclei give a language-looking vocabulary.
_SCRIPTS: dict[str, tuple[list[str], list[str]]] = {
    "Latn": (list("bcdfghjklmnprstvwz"), list("aeiou")),
    "Cyrl": (list("бвгдзклмнпрстфхцчш"), list("аеиоуыя")),
    "Grek": (list("βγδζθκλμνξπρστφχ"), list("αεηιουω")),
    "Arab": (list("بتثجحخدذرزسشصضطعغفقكلمنه"), ["", "ا", "و", "ي"]),
    "Deva": (_letters(0x0915, 0x0939), ["", "ा", "ि", "ी", "ु", "े", "ो"]),
    "Beng": (_letters(0x0995, 0x09B9), ["", "া", "ি", "ী", "ু", "ে"]),
    "Telu": (_letters(0x0C15, 0x0C39), ["", "ా", "ి", "ీ", "ు", "ె"]),
    "Thai": (_letters(0x0E01, 0x0E2E), ["", "า", "ิ", "ี", "ุ", "ู"]),
    "Hang": ([chr(c) for c in range(0xAC00, 0xAC00 + 11172, 28)], [""]),  # open syllables
    "Hans": (_letters(0x4E00, 0x4E00 + 2999), [""]),
    "Jpan": (_letters(0x30A2, 0x30F3), [""]),
}
_LATIN_EXTRA = {
    "de": "äöü", "fr": "éèàç", "es": "ñáé", "pt": "ãçé", "it": "àè", "tr": "çğış", "ro": "ăâș",
    "vi": "ăâđêôơư", "fi": "äö", "sv": "åäö", "da": "æøå", "no": "æøå", "hu": "áéöő", "nl": "ij",
}
_SENTENCE_END = {"Hans": "。", "Jpan": "。", "Deva": "।", "Thai": "ฯ"}


@dataclass(frozen=True)
class Vocabulary:
    """Word id → surface form in one language.

    Ids are scrambled by a multiplicative bijection and written as bijective base-S numerals of a
    fixed number of syllables, so distinct ids never collide and frequent words look unrelated.
    """

    lang: str
    size: int

    @cached_property
    def syllables(self) -> list[str]:
        row = language(self.lang)
        onsets, nuclei = _SCRIPTS[row.script]
        if row.script == "Latn":
            nuclei = nuclei + list(_LATIN_EXTRA.get(row.iso, ""))
        return [o + n for o in onsets for n in nuclei]

    @cached_property
    def layout(self) -> tuple[int, int, int]:
        """(syllables per word, modulus, multiplier coprime to it)."""
        base, n = len(self.syllables), 2
        while base**n < self.size:
            n += 1
        modulus, multiplier = base**n, 1_000_003
        while math.gcd(modulus, multiplier) != 1:
            multiplier += 2
        return n, modulus, multiplier

    def word(self, word_id: int) -> str:
        base = len(self.syllables)
        n, modulus, multiplier = self.layout
        k = sum(base**i for i in range(1, n)) + 1 + (word_id * multiplier) % modulus
        parts = []
        while k > 0:
            k, r = divmod(k - 1, base)
            parts.append(self.syllables[r])
        return "".join(reversed(parts))


@dataclass
class SyntheticCollection(Dataset):
    """See the module docstring. Parameters come from the dataset id's options."""

    lang: str = "en"
    n_docs: int = 1000
    n_queries: int = 50
    n_train: int = 200
    seed: int = 0
    split: str = "test"
    vocab: Vocabulary = field(init=False)

    def __post_init__(self) -> None:
        language(self.lang)
        if self.n_docs < 20:
            raise DataError(f"{self.dataset_id}: docs must be at least 20, got {self.n_docs}")
        self.vocab = Vocabulary(self.lang, self.vocab_size)

    # -- structure shared by all languages -------------------------------------------------
    @property
    def n_topics(self) -> int:
        return max(5, self.n_docs // 8)

    @property
    def vocab_size(self) -> int:
        return max(4000, self.n_docs // 2)

    def _rng(self, *key: int | str) -> np.random.Generator:
        words = [int.from_bytes(hashlib.sha256(str(k).encode()).digest()[:4], "little") for k in key]
        return np.random.Generator(np.random.PCG64(np.random.SeedSequence([self.seed, *words])))

    @cached_property
    def topic_keywords(self) -> np.ndarray:
        """(n_topics, KEYWORDS_PER_TOPIC) word ids from a pool about twice the number of topics, away
        from the most frequent words, so each keyword is shared by a few topics (queries are ambiguous)."""
        pool = min(self.vocab_size - 100, 2 * self.n_topics + KEYWORDS_PER_TOPIC)
        return 100 + self._rng("keywords").integers(0, pool, (self.n_topics, KEYWORDS_PER_TOPIC))

    @cached_property
    def background(self) -> np.ndarray:
        p = 1.0 / (np.arange(self.vocab_size) + 2.7)
        return p / p.sum()

    def _block_topics(self, block: int) -> tuple[np.ndarray, np.ndarray]:
        size = min(BLOCK, self.n_docs - block * BLOCK)
        rng = self._rng("topics", block)
        primary = rng.integers(0, self.n_topics, size)
        secondary = (primary + rng.integers(1, self.n_topics, size)) % self.n_topics
        return primary, secondary

    @cached_property
    def doc_topics(self) -> tuple[np.ndarray, np.ndarray]:
        blocks = [self._block_topics(b) for b in range(-(-self.n_docs // BLOCK))]
        return np.concatenate([b[0] for b in blocks]), np.concatenate([b[1] for b in blocks])

    @cached_property
    def query_topics(self) -> dict[str, np.ndarray]:
        """Topics that have at least one primary document, split into test and training topics."""
        with_docs = np.unique(self.doc_topics[0])
        order = self._rng("query-topics").permutation(with_docs)
        if len(order) < self.n_queries + self.n_train:
            raise DataError(
                f"{self.dataset_id}: {self.n_docs} docs give {len(order)} usable topics, fewer than "
                f"queries+train={self.n_queries + self.n_train}"
            )
        return {"test": order[: self.n_queries], "train": order[self.n_queries : self.n_queries + self.n_train]}

    # -- text ---------------------------------------------------------------------------------
    def _text(self, word_ids: np.ndarray) -> str:
        script = language(self.lang).script
        joiner = " " if language(self.lang).spaced else ""
        end = _SENTENCE_END.get(script, ".")
        words = [self.vocab.word(int(w)) for w in word_ids]
        sentences = [joiner.join(words[i : i + 12]) for i in range(0, len(words), 12)]
        return (end + joiner).join(sentences) + end

    def _block_docs(self, block: int) -> Iterator[Doc]:
        primary, secondary = self._block_topics(block)
        rng = self._rng("text", block)
        for offset, (p, s) in enumerate(zip(primary, secondary, strict=True)):
            length = int(rng.integers(30, 90))
            kinds = rng.choice(3, size=length, p=[0.15, 0.1, 0.75])
            words = rng.choice(self.vocab_size, size=length, p=self.background)
            words[kinds == 0] = rng.choice(self.topic_keywords[p], size=int((kinds == 0).sum()))
            words[kinds == 1] = rng.choice(self.topic_keywords[s], size=int((kinds == 1).sum()))
            yield Doc(f"d{block * BLOCK + offset}", self._text(words), self.lang)

    def _read_docs(self) -> Iterator[Located]:
        for block in range(-(-self.n_docs // BLOCK)):
            for doc in self._block_docs(block):
                yield Located(doc, f"{self.dataset_id} #{doc.doc_id}")

    def _read_queries(self) -> list[Query]:
        prefix = "q" if self.split == "test" else "t"
        rng = self._rng("queries", self.split)
        queries = []
        for j, topic in enumerate(self.query_topics[self.split]):
            n = int(rng.integers(2, 5))
            words = rng.choice(self.topic_keywords[topic], size=n, replace=False)
            if rng.random() < 0.5:
                words = np.append(words, rng.choice(self.vocab_size, p=self.background))
            joiner = " " if language(self.lang).spaced else ""
            queries.append(Query(f"{prefix}{j}", joiner.join(self.vocab.word(int(w)) for w in words), self.lang))
        return queries

    def _read_qrels(self) -> Qrels:
        primary, secondary = self.doc_topics
        prefix = "q" if self.split == "test" else "t"
        qrels: Qrels = {}
        for j, topic in enumerate(self.query_topics[self.split]):
            judged = {f"d{i}": 1 for i in np.flatnonzero(secondary == topic)}
            judged.update({f"d{i}": 2 for i in np.flatnonzero(primary == topic)})
            qrels[f"{prefix}{j}"] = judged
        return qrels

    def _content_identity(self):
        yield f"synthetic-v{GENERATOR_VERSION}-numpy{np.__version__.split('.')[0]}".encode()
        yield repr((self.lang, self.n_docs, self.n_queries, self.n_train, self.seed, self.split)).encode()
        for doc, _ in zip(self.docs(), range(64)):
            yield doc.text.encode()
        for q in self.queries():
            yield q.text.encode()

    @property
    def doc_languages(self) -> tuple[str, ...]:
        return (self.lang,)

    def training(self) -> SyntheticCollection:
        return SyntheticCollection(
            f"{self.dataset_id}#train", dict(self.options), lang=self.lang, n_docs=self.n_docs,
            n_queries=self.n_queries, n_train=self.n_train, seed=self.seed, split="train",
        )


OPTIONS = {"docs": (1000, 20), "queries": (50, 1), "train": (200, 0), "seed": (0, 0)}
"""Option → (default, least value)."""


def _int_option(dataset_id: str, options: dict[str, str], key: str) -> int:
    default, least = OPTIONS[key]
    try:
        value = int(options.get(key, default))
    except ValueError:
        raise DataError(f"{dataset_id}: option {key} must be an integer, got {options[key]!r}") from None
    if value < least:
        raise DataError(f"{dataset_id}: {key} must be at least {least}, got {value}")
    return value


def synthetic_settings(dataset_id: str, path: str, options: dict[str, str]) -> dict[str, int | str]:
    """The collection's settings from its id (`SyntheticCollection` fields), checked without generating
    anything: known options, integers in range, a known language, and no more test and training
    queries than the collection has topics."""
    check_options(dataset_id, options, OPTIONS)
    lang = language(path).iso
    n_docs, n_queries, n_train, seed = (_int_option(dataset_id, options, key) for key in OPTIONS)
    topics = max(5, n_docs // 8)  # `SyntheticCollection.n_topics`: the most that can be usable
    if n_queries + n_train > topics:
        raise DataError(f"{dataset_id}: queries+train={n_queries + n_train}, but {n_docs} docs give at most "
                        f"{topics} usable topics (docs/8)")
    return {"lang": lang, "n_docs": n_docs, "n_queries": n_queries, "n_train": n_train, "seed": seed}


@loader("synthetic", "synthetic:LANG?docs=N&queries=Q&train=T&seed=S  deterministic invented-language collection",
        check=synthetic_settings)
def load_synthetic(dataset_id: str, path: str, options: dict[str, str]) -> SyntheticCollection:
    return SyntheticCollection(dataset_id, options, **synthetic_settings(dataset_id, path, options))
