"""TREC topic files (``<top>`` blocks) and TREC qrels (``topic iteration docno relevance`` lines).

Topics have a ``<num>`` and ``title``/``desc``/``narr`` fields, with or without a language prefix
of one to three letters (CLEF writes ``<EN-title>``, ``<FR-desc>``, and its 2000 files are said to
use ``<E-title>``); closing tags are optional. Topic numbers are normalised the same way in topics
and qrels (`normalize_topic_id`): ``C041``, ``41`` and ``10.2452/41-AH`` are all ``41``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from harness.data.base import DataError, Judgement, Located
from harness.data.formats.sgml import clean_markup
from harness.data.formats.text import read_chunks

TOPIC_FIELDS = ("title", "desc", "narr")
"""The fields a topic's query text can be made of."""

_TOPIC_NUMBER = re.compile(r"\d+")
_TOP = re.compile(r"<top>(.*?)</top>", re.IGNORECASE | re.DOTALL)
_NUM = re.compile(r"<num>([^<]*)", re.IGNORECASE)
_TOPIC_TAG = re.compile(rf"<\s*(/)?\s*(?:[A-Za-z]{{1,3}}-)?({'|'.join(TOPIC_FIELDS)})\s*>$", re.IGNORECASE)


class Topic(NamedTuple):
    """One ``<top>`` block: the line it opens on, its normalised number, and its query text."""

    line: int
    topic_id: str
    text: str


def normalize_topic_id(raw: str) -> str | None:
    """The bare topic number, as the qrels write it: ``C141``, ``141``, ``10.2452/141-AH`` → ``141``.

    The part after the last ``/`` (a DOI prefix) is dropped, then the first run of digits is the
    number, without leading zeros (``C041`` → ``41``). ``None`` where there is no number.
    """
    match = _TOPIC_NUMBER.search(raw.strip().rsplit("/", 1)[-1])
    return str(int(match.group())) if match else None


def read_topics(path: Path, encoding: str, fields: tuple[str, ...], encoding_hint: str = "") -> list[Topic]:
    """Every topic of a file; a topic's text joins its ``fields`` (of `TOPIC_FIELDS`) with spaces.

    ``encoding_hint`` follows the message of a byte that is not in ``encoding``.
    """
    text = "".join(read_chunks(path, encoding, encoding_hint))
    topics = []
    for block in _TOP.finditer(text):
        line = text.count("\n", 0, block.start()) + 1
        num = _NUM.search(block.group(1))
        qid = normalize_topic_id(num.group(1)) if num else None
        if qid is None:
            raise DataError(f"{path}:{line}: topic without a <num> topic number")
        parts: dict[str, list[str]] = {}
        current = None
        for piece in re.split(r"(<[^>]*>)", block.group(1)):
            if piece.startswith("<"):
                tag = _TOPIC_TAG.match(piece)
                current = tag.group(2).lower() if tag and not tag.group(1) else None
            elif current is not None:
                parts.setdefault(current, []).append(piece)
        values = []
        for field in fields:
            value = clean_markup("".join(parts.get(field, [])))
            if not value:
                raise DataError(f"{path}:{line}: topic {qid} has no <{field}> text (fields={','.join(fields)})")
            values.append(value)
        topics.append(Topic(line, qid, " ".join(values)))
    if not topics:
        raise DataError(f"{path}: no <top> topics found")
    return topics


def read_qrels(path: Path) -> Iterator[Located]:
    """The judgements of a TREC qrels file (latin-1), topic numbers normalised, each at its line."""
    for lineno, line in enumerate("".join(read_chunks(path, "latin-1")).split("\n"), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 4:
            raise DataError(
                f"{path}:{lineno}: expected 4 columns 'topic iteration docno relevance', got {len(parts)}: {line.strip()!r}"
            )
        qid = normalize_topic_id(parts[0])
        if qid is None:
            raise DataError(f"{path}:{lineno}: no topic number in {parts[0]!r}")
        try:
            rel = int(parts[3])
        except ValueError:
            raise DataError(f"{path}:{lineno}: relevance must be an integer, got {parts[3]!r}") from None
        yield Located(Judgement(qid, parts[2], rel), f"{path}:{lineno}")
