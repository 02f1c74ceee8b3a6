"""The files of a BEIR folder: ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv`` or ``.jsonl``.

Corpus lines are objects with ``_id``, ``text`` and an optional ``title`` (a null title is no
title); query lines have ``_id`` and ``text``. Qrels are ``query-id corpus-id score`` rows, tab
separated under an optional header, or JSON objects with those three keys. Files are UTF-8, a BOM
at the start allowed; ids and text may be JSON numbers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from harness.data.base import DataError, Doc, Judgement, Located, Query
from harness.data.formats.jsonl import read_jsonl, required_text
from harness.data.formats.text import read_lines

QRELS_COLUMNS = ("query-id", "corpus-id", "score")
QRELS_SUFFIXES = ("tsv", "jsonl")
"""The qrels file formats, in the order a folder's ``qrels/<split>.*`` is looked for."""


def read_corpus(path: Path, lang: str) -> Iterator[Located]:
    """The documents of a ``corpus.jsonl``, each in ``lang`` and at its line."""
    for n, obj in read_jsonl(path):
        doc_id, text = required_text(path, n, obj, "_id"), required_text(path, n, obj, "text")
        title = "" if obj.get("title") is None else required_text(path, n, obj, "title")
        yield Located(Doc(doc_id, text, lang, title), f"{path}:{n}")


def read_queries(path: Path, lang: str) -> Iterator[Located]:
    """The queries of a ``queries.jsonl``, each in ``lang`` and at its line."""
    for n, obj in read_jsonl(path):
        yield Located(Query(required_text(path, n, obj, "_id"), required_text(path, n, obj, "text"), lang),
                      f"{path}:{n}")


def _score(path: Path, lineno: int, raw: object) -> int:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise DataError(f"{path}:{lineno}: relevance must be an integer, got {raw!r}") from None
    if value != int(value):
        raise DataError(f"{path}:{lineno}: relevance must be an integer, got {raw!r}")
    return int(value)


def read_qrels_tsv(path: Path) -> Iterator[Located]:
    """The judgements of a ``query-id corpus-id score`` file (header optional), each at its line."""
    for lineno, line in read_lines(path):
        parts = line.split("\t")
        if lineno == 1 and parts[0] == QRELS_COLUMNS[0]:
            continue
        if not line.strip():
            continue
        if len(parts) != 3:
            raise DataError(
                f"{path}:{lineno}: expected 3 tab-separated columns {QRELS_COLUMNS}, got {len(parts)}: {line.strip()!r}"
            )
        yield Located(Judgement(parts[0], parts[1], _score(path, lineno, parts[2])), f"{path}:{lineno}")


def read_qrels_jsonl(path: Path) -> Iterator[Located]:
    """The judgements of a JSONL qrels file, each at its line."""
    for lineno, obj in read_jsonl(path):
        qid, did = (required_text(path, lineno, obj, k) for k in QRELS_COLUMNS[:2])
        yield Located(Judgement(qid, did, _score(path, lineno, obj.get("score"))), f"{path}:{lineno}")


def read_qrels(path: Path) -> Iterator[Located]:
    """The judgements of a ``.tsv`` or ``.jsonl`` qrels file (by its suffix), each at its line."""
    return read_qrels_tsv(path) if path.suffix == ".tsv" else read_qrels_jsonl(path)


def qrels_file(folder: Path, split: str) -> Path | None:
    """The qrels file of ``split`` in a BEIR folder (``qrels/<split>.tsv``, else ``.jsonl``), if any."""
    return next((path for suffix in QRELS_SUFFIXES if (path := folder / "qrels" / f"{split}.{suffix}").is_file()),
                None)
