"""JSON Lines files, and JSON values as text (so a null never becomes the text "None")."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from harness.data.base import DataError
from harness.data.formats.text import read_lines


def read_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-empty line; a bad line is a `DataError` naming it."""
    for lineno, line in read_lines(path):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{lineno}: invalid JSON ({e.msg})") from None
        if not isinstance(obj, dict):
            raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
        yield lineno, obj


def as_text(where: str, key: str, value: object) -> str:
    """A JSON field as text: a string, or a number written out; null, booleans, objects and arrays
    are a `DataError` naming ``where``."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    kind = "null" if value is None else type(value).__name__
    raise DataError(f"{where}: {key!r} must be a string, got {kind}")


def required_text(path: Path, lineno: int, obj: dict, key: str) -> str:
    """The field ``key`` of the object at ``path:lineno`` as text; a missing field is a `DataError`."""
    if key not in obj:
        raise DataError(f"{path}:{lineno}: missing field {key!r} (have {sorted(obj)})")
    return as_text(f"{path}:{lineno}", key, obj[key])
