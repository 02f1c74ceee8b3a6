"""BEIR-format folders: ``beir:/path/to/folder?lang=hi&split=test``.

A folder holds ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl`` (``_id``,
``text``) and ``qrels/<split>.tsv`` (header ``query-id corpus-id score``) or
``qrels/<split>.jsonl`` (objects with the same three keys), as Hindi-BEIR ships both.

Files are UTF-8, a BOM at the start allowed. ``_id`` and ``text`` are required; a null ``text``
(or id) is an error naming the line, while ``title`` is optional and a null title is no title.
Ids and text may be JSON numbers; the checks every loader shares are in `harness.data.base`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from harness.data.base import (
    QRELS_WITHOUT_QUERIES,
    DataError,
    Dataset,
    Doc,
    Judgement,
    Located,
    Query,
    as_text,
    read_lines,
    sha256_file,
)
from harness.data.registry import check_options, loader
from harness.languages import language

QRELS_COLUMNS = ("query-id", "corpus-id", "score")


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


def _field(path: Path, lineno: int, obj: dict, key: str) -> str:
    if key not in obj:
        raise DataError(f"{path}:{lineno}: missing field {key!r} (have {sorted(obj)})")
    return as_text(f"{path}:{lineno}", key, obj[key])


def _title(path: Path, lineno: int, obj: dict) -> str:
    """A document's title: optional, and a null title is no title."""
    return "" if obj.get("title") is None else _field(path, lineno, obj, "title")


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
        qid, did = (_field(path, lineno, obj, k) for k in QRELS_COLUMNS[:2])
        yield Located(Judgement(qid, did, _score(path, lineno, obj.get("score"))), f"{path}:{lineno}")


@dataclass
class BeirFolder(Dataset):
    folder: Path = Path(".")
    lang: str = "en"
    split: str = "test"

    def _file(self, name: str) -> Path:
        path = self.folder / name
        if not path.is_file():
            raise DataError(f"{self.dataset_id}: missing {path} (a BEIR folder needs corpus.jsonl, queries.jsonl, qrels/)")
        return path

    @property
    def qrels_path(self) -> Path:
        for suffix in ("tsv", "jsonl"):
            path = self.folder / "qrels" / f"{self.split}.{suffix}"
            if path.is_file():
                return path
        raise DataError(f"{self.dataset_id}: missing {self.folder}/qrels/{self.split}.tsv (or .jsonl)")

    def _read_docs(self) -> Iterator[Located]:
        path = self._file("corpus.jsonl")
        for n, obj in read_jsonl(path):
            doc = Doc(_field(path, n, obj, "_id"), _field(path, n, obj, "text"), self.lang, _title(path, n, obj))
            yield Located(doc, f"{path}:{n}")

    def _read_queries(self) -> Iterator[Located]:
        path = self._file("queries.jsonl")
        for n, obj in read_jsonl(path):
            yield Located(Query(_field(path, n, obj, "_id"), _field(path, n, obj, "text"), self.lang), f"{path}:{n}")

    def _read_qrels(self) -> Iterator[Located]:
        path = self.qrels_path
        return read_qrels_tsv(path) if path.suffix == ".tsv" else read_qrels_jsonl(path)

    def _content_identity(self):
        for path in (self._file("corpus.jsonl"), self._file("queries.jsonl"), self.qrels_path):
            yield sha256_file(path)

    @property
    def doc_languages(self) -> tuple[str, ...]:
        return (self.lang,)


OPTIONS = ("lang", "split", QRELS_WITHOUT_QUERIES)


def beir_settings(dataset_id: str, path: str, options: dict[str, str]) -> tuple[Path | None, str, str]:
    """(folder, language, split) of an id: known options, a known language, a non-empty split. The
    folder is None while the environment variable in its path is unset."""
    check_options(dataset_id, options, OPTIONS)
    if "lang" not in options:
        raise DataError(f"{dataset_id}: BEIR folders carry no language; add ?lang=<iso code>")
    lang = language(options["lang"]).iso
    split = options.get("split", "test")
    if not split:
        raise DataError(f"{dataset_id}: split= names the qrels file, qrels/<split>.tsv; it is empty")
    expanded = os.path.expandvars(path)
    return (None if "$" in expanded else Path(expanded).expanduser()), lang, split


def check_beir(dataset_id: str, path: str, options: dict[str, str]) -> None:
    """`beir_settings`, and a folder given (no unset variable) holds the corpus, queries and qrels."""
    folder, _, split = beir_settings(dataset_id, path, options)
    if folder is None:
        return
    if not folder.is_dir():
        raise DataError(f"{dataset_id}: {folder} is not a directory")
    missing = [name for name in ("corpus.jsonl", "queries.jsonl") if not (folder / name).is_file()]
    if not any((folder / "qrels" / f"{split}.{suffix}").is_file() for suffix in ("tsv", "jsonl")):
        missing.append(f"qrels/{split}.tsv (or .jsonl)")
    if missing:
        raise DataError(f"{dataset_id}: {folder} has no {', '.join(missing)} (a BEIR folder needs corpus.jsonl, "
                        f"queries.jsonl, qrels/)")


@loader("beir", "beir:/folder?lang=L&split=test  BEIR-format folder (qrels .tsv or .jsonl)", check=check_beir)
def load_beir(dataset_id: str, path: str, options: dict[str, str]) -> BeirFolder:
    folder, lang, split = beir_settings(dataset_id, path, options)
    if folder is None:
        raise DataError(f"{dataset_id}: set the environment variable in {path!r} to the folder holding the data")
    if not folder.is_dir():
        raise DataError(f"{dataset_id}: {folder} is not a directory")
    return BeirFolder(dataset_id, options, folder=folder, lang=lang, split=split)
