"""TREC-style SGML document files: ``<DOC><DOCNO>id</DOCNO> ... </DOC>``, streamed one document at a time.

Files run to hundreds of megabytes, so they are read in large pieces (`read_chunks`); text outside
``<DOC>`` elements is skipped. A document's fields are its top-level elements: nested markup
inside a field (``<P>``) is dropped, SGML/HTML entities are decoded, whitespace is collapsed.
Title-like fields (`TITLE_FIELDS`) make the title, and the other text fields the text.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from harness.data.base import DataError
from harness.data.formats.text import read_chunks

METADATA_FIELDS = frozenset({
    "DOCNO", "DOCID", "DATE", "DAT", "NO", "ED", "EDITION", "PG", "PAGE", "LENGTH", "RECORDNO",
    "SECTION", "TYPE", "ID", "NUM", "FILE", "DATELINE",
})
"""SGML fields that are not text: left out of a document's text unless the reader is told otherwise."""

TITLE_FIELDS = frozenset({"TITLE", "HEADLINE", "HEADER", "HL", "TI"})
"""Fields that become the title (the rest of the chosen fields become the text)."""


class SgmlDoc(NamedTuple):
    """One ``<DOC>`` element: the line it opens on, its id, title and text."""

    line: int
    doc_id: str
    title: str
    text: str


_DOC_OPEN = re.compile(r"<DOC(?:\s[^>]*)?>", re.IGNORECASE)
_DOC_CLOSE = re.compile(r"</DOC\s*>", re.IGNORECASE)
_FIELD_OPEN = re.compile(r"<([A-Za-z][\w.\-]*)(?:\s[^>]*)?>")
_CLOSE_TAGS: dict[str, re.Pattern[str]] = {}
_MARKUP = re.compile(r"<!--.*?-->|<[^>]*>", re.DOTALL)


def clean_markup(markup: str) -> str:
    """Text of an SGML fragment: inner tags dropped, entities decoded, whitespace collapsed."""
    return " ".join(html.unescape(_MARKUP.sub(" ", markup)).split())


def _close_tag(name: str) -> re.Pattern[str]:
    if name not in _CLOSE_TAGS:
        _CLOSE_TAGS[name] = re.compile(rf"</{re.escape(name)}\s*>", re.IGNORECASE)
    return _CLOSE_TAGS[name]


def _fields(body: str) -> list[tuple[str, str]]:
    """(upper-case name, raw content) of each top-level element; unclosed tags are skipped."""
    fields, pos = [], 0
    while match := _FIELD_OPEN.search(body, pos):
        close = _close_tag(match.group(1)).search(body, match.end())
        if close is None:
            pos = match.end()
            continue
        fields.append((match.group(1).upper(), body[match.end():close.start()]))
        pos = close.end()
    return fields


def read_sgml_docs(path: Path, encoding: str, id_field: str = "DOCNO", text_fields: frozenset[str] | None = None,
                   encoding_hint: str = "") -> Iterator[SgmlDoc]:
    """Each document of one SGML file, streamed.

    ``id_field`` holds the document id; ``text_fields`` (upper case) are the fields that make the
    title and text, by default every field but `METADATA_FIELDS`. ``encoding_hint`` follows the
    message of a byte that is not in ``encoding``.
    """
    buf, pos, line = "", 0, 1  # line: the line number at buf[pos]
    resume = 0  # where in buf the search for the current document's end goes on
    for chunk in read_chunks(path, encoding, encoding_hint):
        buf, pos = buf[pos:] + chunk, 0
        while opening := _DOC_OPEN.search(buf, pos):
            line += buf.count("\n", pos, opening.start())
            pos = opening.start()
            ahead = max(opening.end(), resume)
            nested = _DOC_OPEN.search(buf, ahead)
            closing = _DOC_CLOSE.search(buf, ahead, nested.start() if nested else len(buf))
            if closing is None:
                if nested:
                    inner = line + buf.count("\n", pos, nested.start())
                    raise DataError(f"{path}:{inner}: <DOC> inside the <DOC> opened at line {line} (missing </DOC>?)")
                resume = max(len(buf) - pos - 16, 0)  # the document goes on in the next piece
                break
            resume = 0
            yield _document(path, line, buf[opening.end():closing.start()], id_field, text_fields)
            line += buf.count("\n", pos, closing.end())
            pos = closing.end()
        else:
            line += buf.count("\n", pos)
            pos = len(buf)
    if pos < len(buf):
        raise DataError(f"{path}:{line}: <DOC> is never closed")


def _document(path: Path, line: int, body: str, id_field: str, text_fields: frozenset[str] | None) -> SgmlDoc:
    fields = _fields(body)
    doc_id = next((" ".join(value.split()) for name, value in fields if name == id_field), "")
    if not doc_id:
        raise DataError(f"{path}:{line}: <DOC> without a <{id_field}> (have {sorted({n for n, _ in fields})})")
    chosen = [(name, clean_markup(value)) for name, value in fields
              if (name in text_fields if text_fields is not None else name not in METADATA_FIELDS)]
    title = " ".join(text for name, text in chosen if name in TITLE_FIELDS and text)
    text = "\n".join(text for name, text in chosen if name not in TITLE_FIELDS and text)
    return SgmlDoc(line, doc_id, title, text)
