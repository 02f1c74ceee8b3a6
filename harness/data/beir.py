"""BEIR-format folders: ``beir:/path/to/folder?lang=hi&split=test``.

A folder holds ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl`` (``_id``,
``text``) and ``qrels/<split>.tsv`` (header ``query-id corpus-id score``) or
``qrels/<split>.jsonl`` (objects with the same three keys), as Hindi-BEIR ships both.

Files are UTF-8, a BOM at the start allowed. ``_id`` and ``text`` are required; a null ``text``
(or id) is an error naming the line, while ``title`` is optional and a null title is no title.
Ids and text may be JSON numbers. The files are read by `harness.data.formats.beir`; the checks
every loader shares are in `harness.data.base`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from harness.data.base import QRELS_WITHOUT_QUERIES, DataError, Dataset, Located, sha256_file
from harness.data.formats.beir import qrels_file, read_corpus, read_qrels, read_queries
from harness.data.registry import check_options, loader
from harness.languages import language


@dataclass
class BeirFolder(Dataset):
    """One BEIR folder, in one language, with the qrels of one split."""

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
        path = qrels_file(self.folder, self.split)
        if path is None:
            raise DataError(f"{self.dataset_id}: missing {self.folder}/qrels/{self.split}.tsv (or .jsonl)")
        return path

    def _read_docs(self) -> Iterator[Located]:
        yield from read_corpus(self._file("corpus.jsonl"), self.lang)

    def _read_queries(self) -> Iterator[Located]:
        yield from read_queries(self._file("queries.jsonl"), self.lang)

    def _read_qrels(self) -> Iterator[Located]:
        return read_qrels(self.qrels_path)

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
    if qrels_file(folder, split) is None:
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
