"""XQuAD as a retrieval task: ``xquad:LANG``.

Each question retrieves the paragraph that contains its answer; the 240 paragraphs (and the
1,190 questions) are the same content in 12 languages, so doc and query ids are shared across
languages. Files are read from ``$HARNESS_XQUAD_DIR``, else ``../shared/data/xquad`` beside the
repository, else the harness cache, where they are downloaded from `URL` on first use.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from harness.data.base import DataError, Dataset, Doc, Judgement, Located, Query, sha256_file
from harness.data.formats.jsonl import as_text
from harness.data.formats.text import decode
from harness.data.registry import loader
from harness.files import atomic_write
from harness.languages import language
from harness.paths import cache_dir, repo_root

LANGUAGES = ("ar", "de", "el", "en", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh")
URL = "https://github.com/google-deepmind/xquad/raw/master/xquad.{lang}.json"


def candidate_dirs() -> list[Path]:
    """Where an XQuAD file is looked for, in order."""
    dirs = [Path(p) for p in [os.environ.get("HARNESS_XQUAD_DIR")] if p]
    return dirs + [repo_root().parent / "shared" / "data" / "xquad", cache_dir() / "xquad"]


def xquad_file(lang: str) -> Path:
    """The local file for ``lang``, downloaded into the cache if no staged copy exists."""
    name = f"xquad.{lang}.json"
    for folder in candidate_dirs():
        if (folder / name).is_file():
            return folder / name
    target = cache_dir() / "xquad" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    url = URL.format(lang=lang)
    try:
        with atomic_write(target, "wb") as f, urllib.request.urlopen(url, timeout=60) as response:
            f.write(response.read())
    except OSError as e:
        raise DataError(
            f"xquad:{lang}: {name} is in none of {[str(d) for d in candidate_dirs()]} and downloading {url} failed ({e})"
        ) from None
    return target


@dataclass
class XQuAD(Dataset):
    lang: str = "en"

    @cached_property
    def path(self) -> Path:
        return xquad_file(self.lang)

    @cached_property
    def articles(self) -> list[dict]:
        try:
            data = json.loads(decode(self.path.read_bytes(), self.path))["data"]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise DataError(f"{self.path}: not a SQuAD-format file ({e})") from None
        return data

    def _paragraphs(self) -> Iterator[tuple[str, dict]]:
        for a, article in enumerate(self.articles):
            for p, paragraph in enumerate(article["paragraphs"]):
                yield f"p{a:02d}_{p:02d}", paragraph

    def _questions(self) -> Iterator[tuple[str, str, str, str]]:
        """(where, question id, question, id of its paragraph) for each question."""
        for doc_id, paragraph in self._paragraphs():
            for n, qa in enumerate(paragraph["qas"]):
                where = f"{self.path} paragraph {doc_id} question {n}"
                yield where, as_text(where, "id", qa.get("id")), as_text(where, "question", qa.get("question")), doc_id

    def _read_docs(self) -> Iterator[Located]:
        for doc_id, paragraph in self._paragraphs():
            where = f"{self.path} paragraph {doc_id}"
            yield Located(Doc(doc_id, as_text(where, "context", paragraph.get("context")), self.lang), where)

    def _read_queries(self) -> list[Located]:
        return [Located(Query(qid, text, self.lang), where) for where, qid, text, _ in self._questions()]

    def _read_qrels(self) -> list[Located]:
        return [Located(Judgement(qid, doc_id, 1), where) for where, qid, _, doc_id in self._questions()]

    def _content_identity(self):
        yield sha256_file(self.path)

    @property
    def doc_languages(self) -> tuple[str, ...]:
        return (self.lang,)


def xquad_language(dataset_id: str, path: str, options: dict[str, str]) -> str:
    """The id's language, one of XQuAD's; no options; ``$HARNESS_XQUAD_DIR``, where set, a folder
    (a wrong one would otherwise be passed over for the download)."""
    iso = language(path).iso
    if iso not in LANGUAGES:
        raise DataError(f"{dataset_id}: XQuAD has no {iso!r}; languages: {', '.join(LANGUAGES)}")
    if options:
        raise DataError(f"{dataset_id}: xquad takes no options")
    folder = os.environ.get("HARNESS_XQUAD_DIR")
    if folder and not Path(folder).is_dir():
        raise DataError(f"{dataset_id}: HARNESS_XQUAD_DIR={folder} is not a directory")
    return iso


@loader("xquad", "xquad:LANG  XQuAD questions → answer paragraphs (12 languages)", check=xquad_language)
def load_xquad(dataset_id: str, path: str, options: dict[str, str]) -> XQuAD:
    return XQuAD(dataset_id, options, lang=xquad_language(dataset_id, path, options))
