"""BEIR-format folders: ``beir:/path/to/folder?lang=hi&split=test``.

A folder holds ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl`` (``_id``,
``text``) and ``qrels/<split>.tsv`` (header ``query-id corpus-id score``) or
``qrels/<split>.jsonl`` (objects with the same three keys), as Hindi-BEIR ships both.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from harness.data.base import DataError, Dataset, Doc, Located, Qrels, Query, sha256_file
from harness.data.registry import loader
from harness.languages import language

QRELS_COLUMNS = ("query-id", "corpus-id", "score")


def read_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-empty line; a bad line is a `DataError` naming it."""
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
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
    return str(obj[key])


def _score(path: Path, lineno: int, raw: object) -> int:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise DataError(f"{path}:{lineno}: relevance must be an integer, got {raw!r}") from None
    if value != int(value):
        raise DataError(f"{path}:{lineno}: relevance must be an integer, got {raw!r}")
    return int(value)


def read_qrels_tsv(path: Path) -> Qrels:
    qrels: Qrels = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.rstrip("\n").split("\t")
            if lineno == 1 and parts[0] == QRELS_COLUMNS[0]:
                continue
            if not line.strip():
                continue
            if len(parts) != 3:
                raise DataError(
                    f"{path}:{lineno}: expected 3 tab-separated columns {QRELS_COLUMNS}, got {len(parts)}: {line.strip()!r}"
                )
            qrels.setdefault(parts[0], {})[parts[1]] = _score(path, lineno, parts[2])
    return qrels


def read_qrels_jsonl(path: Path) -> Qrels:
    qrels: Qrels = {}
    for lineno, obj in read_jsonl(path):
        qid, did = (_field(path, lineno, obj, k) for k in QRELS_COLUMNS[:2])
        qrels.setdefault(qid, {})[did] = _score(path, lineno, obj.get("score"))
    return qrels


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
        for lineno, obj in read_jsonl(path):
            doc = Doc(_field(path, lineno, obj, "_id"), str(obj.get("text") or ""), self.lang, str(obj.get("title") or ""))
            yield Located(doc, f"{path}:{lineno}")

    def _read_queries(self) -> list[Query]:
        path = self._file("queries.jsonl")
        return [Query(_field(path, n, o, "_id"), _field(path, n, o, "text"), self.lang) for n, o in read_jsonl(path)]

    def _read_qrels(self) -> Qrels:
        path = self.qrels_path
        return read_qrels_tsv(path) if path.suffix == ".tsv" else read_qrels_jsonl(path)

    def _content_identity(self):
        for path in (self._file("corpus.jsonl"), self._file("queries.jsonl"), self.qrels_path):
            yield sha256_file(path)

    @property
    def doc_languages(self) -> tuple[str, ...]:
        return (self.lang,)


@loader("beir", "beir:/folder?lang=L&split=test  BEIR-format folder (qrels .tsv or .jsonl)")
def load_beir(dataset_id: str, path: str, options: dict[str, str]) -> BeirFolder:
    if "lang" not in options:
        raise DataError(f"{dataset_id}: BEIR folders carry no language; add ?lang=<iso code>")
    expanded = os.path.expandvars(path)
    if "$" in expanded:
        raise DataError(f"{dataset_id}: set the environment variable in {path!r} to the folder holding the data")
    folder = Path(expanded).expanduser()
    if not folder.is_dir():
        raise DataError(f"{dataset_id}: {folder} is not a directory")
    return BeirFolder(dataset_id, options, folder=folder, lang=language(options["lang"]).iso,
                      split=options.get("split", "test"))
