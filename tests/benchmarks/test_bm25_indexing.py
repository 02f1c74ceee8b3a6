"""BM25 indexing: the harness against Anserini's own ``IndexCollection -language`` on the same documents.

Interleaved pairs (the order alternates), the same threads, the same JVM; prints each pair's times
and the median of the per-pair ratios (harness / Anserini), and asserts that the two indexes are
equal. ``BENCH_DOCS`` (documents, default 2,000), ``BENCH_THREADS`` (2), ``BENCH_LANG`` (``de``; a
language Anserini's ``-language`` knows, or several, comma-separated: a mixed-language collection, the
documents taking the languages in turn; sets of either separated by ``;`` are separate benchmarks in one
run) scale it; Anserini reads the documents from ``BENCH_FILES``
JSON-lines files per language (default: one per thread, its best case; 1 is a collection shipped as one
file, which Anserini indexes on one thread), written before its clock starts. Anserini has no
mixed-language index: its side is one ``IndexCollection`` per language (the indexes merged after its
clock stops, for the comparison). Pairs are pytest-benchmark's rounds (``--benchmark-enable``,
``BENCH_PAIRS``, default 5), one pair under the default ``--benchmark-disable``.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import statistics
import time
from itertools import accumulate
from pathlib import Path

import pytest

from harness.languages import language
from harness.system import build_system
from systems.bm25.lucene import index_collection, merge_indexes
from tests.helpers import TextsDataset, lucene_index_summary, synthetic_text

DOCS = int(os.environ.get("BENCH_DOCS", "2000"))
THREADS = int(os.environ.get("BENCH_THREADS", "2"))
LANG_SETS = [langs.split(",") for langs in os.environ.get("BENCH_LANG", "de").split(";")]
PAIRS = int(os.environ.get("BENCH_PAIRS", "5"))
FILES = int(os.environ.get("BENCH_FILES", str(THREADS)))
GERMAN = (["der", "die", "das", "und", "in", "zu", "den", "von", "mit", "ist", "nicht", "auf"],
          ["", "", "e", "en", "er", "es", "s", "ung", "ungen", "lich", "heit", "ern"])


def collection(n: int, lang: str, seed: int = 0) -> tuple[tuple[str, str], ...]:
    """``n`` documents of 30–300 words drawn Zipf-like from 20,000 synthetic stems of ``lang``'s
    script (German ones with German endings and stopwords)."""
    rng = random.Random(seed)
    stems = synthetic_text(rng, language(lang).script, 20_000).split()
    stopwords, endings = GERMAN if lang == "de" else ([], [""])
    words = [s + e for s in stems for e in rng.sample(endings, min(3, len(endings)))] + stopwords * 50
    cum = list(accumulate(1 / (rank + 1) for rank in range(len(words))))
    return tuple((" ".join(rng.choices(words, cum_weights=cum, k=rng.randint(30, 300))), lang) for _ in range(n))


def mixed_collection(n: int, langs: list[str]) -> tuple[tuple[str, str], ...]:
    """``n`` documents taking the languages ``langs`` in turn, each language's drawn by `collection`."""
    parts = [iter(collection(len(range(i, n, len(langs))), lang, seed=i)) for i, lang in enumerate(langs)]
    return tuple(next(parts[i % len(langs)]) for i in range(n))


def anserini_input(texts: tuple[tuple[str, str], ...], langs: list[str], out: Path) -> Path:
    """The documents as a JSON collection per language, in `FILES` files each."""
    files: dict[str, list] = {}
    for lang in langs:
        (out / "in" / lang).mkdir(parents=True)
        files[lang] = [open(out / "in" / lang / f"part-{i}.jsonl", "w", encoding="utf-8") for i in range(FILES)]  # noqa: SIM115
    for i, (text, lang) in enumerate(texts):
        files[lang][i % FILES].write(json.dumps({"id": f"d{i}", "contents": text}) + "\n")
    for file in (f for parts in files.values() for f in parts):
        file.close()
    return out


def anserini(langs: list[str], out: Path) -> list[Path]:
    """Anserini's own indexing of each language's collection `anserini_input` wrote to ``out``."""
    for lang in langs:
        index_collection(["-collection", "JsonCollection", "-input", str(out / "in" / lang), "-index", str(out / lang),
                          "-threads", str(THREADS), "-language", lang, "-storeDocvectors", "-quiet"])
    return [out / lang for lang in langs]


def one_index(indexes: list[Path], out: Path) -> Path:
    """Anserini's index to compare: its one index, or its per-language indexes merged into ``out`` (untimed)."""
    if len(indexes) == 1:
        return indexes[0]
    merge_indexes(indexes, out)
    return out


@pytest.mark.parametrize("langs", LANG_SETS, ids=",".join)
def test_bm25_indexing_vs_anserini(benchmark, langs: list[str], tmp_path: Path) -> None:
    texts = mixed_collection(DOCS, langs)
    dataset = TextsDataset(f"synthetic:{'+'.join(langs)}", texts=texts)
    bm25 = build_system("bm25", {"threads": THREADS})
    times: dict[str, list[float]] = {"harness": [], "anserini": []}
    indexes: dict[str, Path | list[Path]] = {}

    def run(name: str, dataset: TextsDataset = dataset) -> None:
        out = tmp_path / name
        shutil.rmtree(out, ignore_errors=True)
        if name == "anserini":
            anserini_input(dataset.texts, langs, out)
        start = time.perf_counter()
        if name == "harness":
            bm25.index(dataset, out)
            indexes[name] = out / "lucene"
        else:
            indexes[name] = anserini(langs, out)
        times[name].append(time.perf_counter() - start)

    warm_up = TextsDataset("synthetic:warm-up", texts=mixed_collection(200 * len(langs), langs))
    for name, measured in times.items():  # untimed: the JVM loads and compiles the indexing code
        run(name, warm_up)
        measured.clear()

    def pair() -> None:
        order = ["harness", "anserini"] if len(times["harness"]) % 2 == 0 else ["anserini", "harness"]
        for name in order:
            run(name)

    benchmark.pedantic(pair, rounds=PAIRS, iterations=1)
    ratios = [h / a for h, a in zip(times["harness"], times["anserini"], strict=True)]
    for h, a, r in zip(times["harness"], times["anserini"], ratios, strict=True):
        print(f"harness {h:.2f} s ({DOCS / h:,.0f} docs/s)  anserini {a:.2f} s ({DOCS / a:,.0f} docs/s)  ratio {r:.3f}")
    print(f"{DOCS} {'+'.join(langs)} docs, {THREADS} threads, Anserini reading {FILES} files per language, "
          f"{len(ratios)} pairs: median ratio {statistics.median(ratios):.3f}")
    benchmark.extra_info.update(docs=DOCS, threads=THREADS, langs=langs, files=FILES, ratios=ratios)
    sample = min(DOCS, 500)
    harness, reference = (lucene_index_summary(path, docs=sample) for path in
                          (indexes["harness"], one_index(indexes["anserini"], tmp_path / "anserini-merged")))
    assert harness["stats"]["docs"] == DOCS and len(harness["vectors"]) == sample
    assert harness == reference
