"""Text files: plain or gzip-compressed (named ``*.gz``), read line by line or in large pieces.

A byte that is not in the file's encoding is a `DataError` naming the file and line.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from pathlib import Path

from harness.data.base import DataError

CHUNK_SIZE = 1 << 22
"""Bytes `read_chunks` reads at a time (before cutting at the last line end)."""


def decode(data: bytes, path: Path | str, encoding: str = "utf-8-sig", first_line: int = 1) -> str:
    """``data`` (read from ``path``, starting at ``first_line``) as text; a bad byte names its line.

    The default, ``utf-8-sig``, is UTF-8 that drops a byte order mark at the start.
    """
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as e:
        line = first_line + data.count(b"\n", 0, e.start)
        name = "UTF-8" if encoding.lower().replace("_", "-") in ("utf-8", "utf-8-sig", "utf8") else encoding
        raise DataError(f"{path}:{line}: not valid {name} (bytes {data[e.start:e.end]!r})") from None


def read_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text without its line end) of a UTF-8 file (gzip-compressed if named ``*.gz``);
    a BOM at the start is dropped."""
    with (gzip.open if str(path).endswith(".gz") else open)(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            yield lineno, decode(raw, path, "utf-8-sig" if lineno == 1 else "utf-8", lineno).rstrip("\r\n")


def read_chunks(path: Path, encoding: str, encoding_hint: str = "") -> Iterator[str]:
    """A plain or gzip file's text in pieces of whole lines, for files of hundreds of megabytes.

    A byte not in ``encoding`` is a `DataError` naming its line and byte offset, followed by
    ``encoding_hint`` (what the user can do about it) where one is given. Each piece is decoded on
    its own, which is exact for ASCII-compatible encodings (a newline byte is never part of a
    multi-byte character in them).
    """
    compressed = path.name.endswith(".gz")
    offset, line, rest = 0, 1, b""
    try:
        with gzip.open(path, "rb") if compressed else open(path, "rb") as f:
            while True:
                block = f.read(CHUNK_SIZE)
                data = rest + block
                cut = data.rfind(b"\n") + 1 if block else len(data)
                if not cut:
                    if not data:
                        return
                    rest = data  # no line end yet: read on
                    continue
                data, rest = data[:cut], data[cut:]
                try:
                    text = data.decode(encoding)
                except UnicodeDecodeError as e:
                    where = "uncompressed byte offset" if compressed else "byte offset"
                    bad_line = line + data.count(b"\n", 0, e.start)
                    raise DataError(
                        f"{path}:{bad_line}: not valid {encoding} at {where} "
                        f"{offset + e.start} (bytes {data[e.start:e.end]!r})" + (f"; {encoding_hint}" if encoding_hint else "")
                    ) from None
                offset, line = offset + len(data), line + data.count(b"\n")
                yield text
                if not block:
                    return
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise DataError(f"{path}: not a readable gzip file ({e})") from None
