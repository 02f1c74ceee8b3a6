"""Retrieval collections in Hugging Face dataset repositories: ``hf:<org>/<name>?lang=L&...``.

A repository holds a collection in one of two layouts (``?layout=``):

- ``subsets`` (the default), as MTEB's repositories: the corpus, the queries and the qrels are subsets
  (the README's ``configs:``) read by ``datasets.load_dataset``. With ``?subset=en`` they are
  ``en-corpus``, ``en-queries`` and ``en-qrels``; without, ``corpus``, ``queries`` and ``default`` (or
  ``qrels``); ``?corpus=``, ``?queries=`` and ``?qrels=`` name them outright. The qrels are split
  ``?split=`` (default ``test``); the corpus and queries are ``?corpus_split=`` / ``?queries_split=``,
  else that same split where the subset has it, else the subset's only split (MTEB's rule). Columns:
  ``_id`` or ``id``, ``text`` and an optional ``title``; qrels ``query-id``, ``corpus-id``, ``score``.
- ``beir``: the repository holds a BEIR folder, ``corpus.jsonl``, ``queries.jsonl`` and
  ``qrels/<split>.tsv`` or ``.jsonl`` (Hindi-BEIR's ``AIhnIndicRag`` repositories), read by
  `harness.data.formats.beir` exactly as a local ``beir:`` folder is.

``?lang=`` is the collection's language; with ``?subset=`` naming a language it defaults to that one.

Files come through ``huggingface_hub`` into its cache (``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else
``~/.cache/huggingface/hub``), only those the collection needs: a subset of MIRACL is not the whole
repository. With ``HF_HUB_OFFLINE=1`` the cache alone is read, so a collection fetched once runs
offline. Rows of the subsets layout are read by ``datasets.load_dataset`` from the cached snapshot
(streamed, nothing converted): ``datasets`` 4 and later read data files only, no loading scripts.

The revision read is ``?revision=``, else the commit `PINS` records for the repository, else ``main``.
The fingerprint covers the commit resolved and every file read, each by the Hub's content hash (the
name of its blob in the cache: the SHA-256 of an LFS file, the git blob id of another), or the file's
own SHA-256 where the cache holds a copy rather than a link to a blob.
"""

from __future__ import annotations

import os
import re
from abc import abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import NamedTuple

from harness.data.base import QRELS_WITHOUT_QUERIES, DataError, Dataset, Doc, Judgement, Located, Query, sha256_file
from harness.data.formats.beir import qrels_file, read_corpus, read_qrels, read_queries
from harness.data.formats.jsonl import as_text
from harness.data.registry import check_options, loader
from harness.languages import UnsupportedLanguage, language


class Pin(NamedTuple):
    commit: str
    source: str
    """The public record of the commit."""


_MTEB = "mteb's task metadata ({}): the dataset path and revision its task reads"
_HUB_TREE = "the Hub's file tree at this commit (corpus.jsonl, queries.jsonl and qrels/ all present)"
PINS: dict[str, Pin] = {
    "mteb/MIRACLRetrieval": Pin("9c09abc13478308c27598f350e31d8f06b9b5481", _MTEB.format("MIRACLRetrieval")),
    "mteb/MultiLongDocRetrieval": Pin("837028901907a7d419b4ab906f28e011ce1cc824",
                                      _MTEB.format("MultiLongDocRetrieval")),
    "mteb/IndicQARetrieval": Pin("51e8b328988795d658f6f34acd34044e9346e2ee", _MTEB.format("IndicQARetrieval")),
    "mteb/WikipediaRetrievalMultilingual": Pin("5f6c91d21f2f5b9afb663858d19848fbd223c775",
                                               _MTEB.format("WikipediaRetrievalMultilingual")),
    "mteb/arguana": Pin("c22ab2a51041ffd869aaddef7af8d8215647e41a", _MTEB.format("ArguAna")),
    "mteb/fiqa": Pin("27a168819829fe9bcd655c2df245fb19452e8e06", _MTEB.format("FiQA2018")),
    "mteb/scifact": Pin("d56462d0e63a25450459c4f213e49ffdb866f7f9", _MTEB.format("SciFact")),
    "mteb/scidocs": Pin("f8c2fcf00f625baaa80f62ec5bd9e1fff3b8ae88", _MTEB.format("SCIDOCS")),
    "mteb/touche2020": Pin("a34f9a33db75fa0cbb21bb5cfc3dae8dc8bec93f", _MTEB.format("Touche2020")),
    "mteb/trec-covid": Pin("bb9466bac8153a0349341eb1b22e06409e78ef4e", _MTEB.format("TRECCOVID")),
    "AIhnIndicRag/Hindi_Arguana": Pin("5fb9bfcc42198e41ce11a41bf90baf27d954fdf6", _HUB_TREE),
    "AIhnIndicRag/Hindi_Climate_Fever": Pin("26099445f80257edc36944990a99254fe618ae65", _HUB_TREE),
    "AIhnIndicRag/mmarco_hindi": Pin("144761e60cbbc30f5d09b5618eead3593c85f9a5", _HUB_TREE),
}
"""Commits pinned where a public source records one. The other Hindi-BEIR repositories read ``main``:
no public record of a complete commit of theirs was found; the commit read enters their identity."""

LAYOUTS = ("subsets", "beir")
SUBSET_OPTIONS = ("subset", "corpus", "queries", "qrels", "corpus_split", "queries_split")
OPTIONS = ("lang", "layout", "revision", "split", *SUBSET_OPTIONS, QRELS_WITHOUT_QUERIES)
ID_COLUMNS = ("_id", "id")
QRELS_COLUMNS = ("query-id", "corpus-id", "score")
BATCH = 10_000
_REF = re.compile(r"[^\s?&=]+")


@dataclass(frozen=True)
class HfSettings:
    """What an ``hf:`` id asks for, checked (`hf_settings`)."""

    repo: str
    revision: str
    pinned: bool
    layout: str
    lang: str
    split: str
    subset: str | None = None
    corpus: str | None = None
    queries: str | None = None
    qrels: str | None = None
    corpus_split: str | None = None
    queries_split: str | None = None


def _repo(dataset_id: str, path: str) -> str:
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(path)
    except HFValidationError as e:
        raise DataError(f"{dataset_id}: {path!r} is not a Hugging Face repository id ({e})") from None
    return path


def hf_settings(dataset_id: str, path: str, options: dict[str, str]) -> HfSettings:
    """The settings of an id: known options with sensible values, a repository id, a known language."""
    check_options(dataset_id, options, OPTIONS)
    repo = _repo(dataset_id, path)
    layout = options.get("layout", "subsets")
    if layout not in LAYOUTS:
        raise DataError(f"{dataset_id}: layout= is one of {', '.join(LAYOUTS)}; got {layout!r}")
    if layout == "beir" and (given := [key for key in SUBSET_OPTIONS if key in options]):
        raise DataError(f"{dataset_id}: {', '.join(given)} apply to layout=subsets; a BEIR repository has "
                        f"corpus.jsonl, queries.jsonl and qrels/<split>.tsv")
    for key in ("revision", "split", *SUBSET_OPTIONS):
        if key in options and not _REF.fullmatch(options[key]):
            raise DataError(f"{dataset_id}: {key}= must be a non-empty name without spaces; got {options[key]!r}")
    subset = options.get("subset")
    code = options.get("lang")
    if code is None:
        try:
            code = language(subset).iso if subset else None
        except UnsupportedLanguage:
            code = None
        if code is None:
            raise DataError(f"{dataset_id}: the repository's language is not known from the id; add ?lang=<iso code>")
    pin = PINS.get(repo)
    revision = options.get("revision") or (pin.commit if pin else "main")
    return HfSettings(repo=repo, revision=revision, pinned=pin is not None and revision == pin.commit, layout=layout,
                      lang=language(code).iso, split=options.get("split", "test"), subset=subset,
                      **{key: options.get(key) for key in SUBSET_OPTIONS if key != "subset"})


def hub_cache() -> str | None:
    """Where ``huggingface_hub`` keeps repositories, read now (None: its default)."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    return os.path.join(os.environ["HF_HOME"], "hub") if os.environ.get("HF_HOME") else None


def content_hash(path: Path) -> str:
    """The Hub's content hash of a cached file (the blob its snapshot entry links to), else its SHA-256."""
    if path.is_symlink():
        target = Path(os.readlink(path))
        if target.parent.name == "blobs":
            return target.name
    return sha256_file(path).hex()


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")


@dataclass
class HubDataset(Dataset):
    """One collection of one repository at one commit; what is read and how is the layout's."""

    settings: HfSettings | None = None

    @property
    def s(self) -> HfSettings:
        assert self.settings is not None
        return self.settings

    def fetch(self, patterns: list[str], revision: str | None = None) -> Path:
        """The cached snapshot folder holding the files matching ``patterns`` (fetched when online)."""
        from huggingface_hub import snapshot_download

        try:
            folder = snapshot_download(self.s.repo, repo_type="dataset", revision=revision or self.s.revision,
                                       allow_patterns=patterns, cache_dir=hub_cache())
        except (OSError, ValueError) as e:
            offline = " (HF_HUB_OFFLINE is set: fetch it once online)" if os.environ.get("HF_HUB_OFFLINE") else ""
            raise DataError(f"{self.dataset_id}: cannot get {self.s.repo}@{revision or self.s.revision} from the "
                            f"Hub or its cache {hub_cache() or '~/.cache/huggingface/hub'}{offline}: "
                            f"{_one_line(e)}") from None
        return Path(folder)

    @property
    def where(self) -> str:
        return f"{self.s.repo}@{self.commit[:12]}"

    @property
    def commit(self) -> str:
        return self.folder.name  # a snapshot folder is named by its commit

    @property
    @abstractmethod
    def folder(self) -> Path:
        """The cached snapshot folder, holding every file this collection reads."""

    @abstractmethod
    def files(self) -> list[Path]:
        """Every file this collection reads, in the snapshot folder."""

    def _content_identity(self):
        yield f"{self.s.repo}@{self.commit}".encode()
        for path in sorted(self.files()):
            yield f"{path.relative_to(self.folder).as_posix()}\t{content_hash(path)}\n".encode()

    @property
    def doc_languages(self) -> tuple[str, ...]:
        return (self.s.lang,)

    def describe(self) -> dict[str, object]:
        """The base description, plus the repository, the revision asked for and the commit read."""
        return {**super().describe(), "source": {"repo": self.s.repo, "revision": self.s.revision,
                                                 "commit": self.commit, "pinned": self.s.pinned}}


@dataclass
class HfBeir(HubDataset):
    """A repository holding one BEIR folder at its root."""

    @cached_property
    def folder(self) -> Path:
        split = self.s.split
        return self.fetch(["corpus.jsonl", "queries.jsonl", f"qrels/{split}.tsv", f"qrels/{split}.jsonl"])

    def _file(self, name: str) -> Path:
        path = self.folder / name
        if not path.is_file():
            raise DataError(f"{self.dataset_id}: {self.where} has no {name} in {self.folder} (a BEIR repository holds "
                            f"corpus.jsonl, queries.jsonl and qrels/<split>.tsv; offline, only what was fetched)")
        return path

    @property
    def qrels_path(self) -> Path:
        path = qrels_file(self.folder, self.s.split)
        if path is None:
            return self._file(f"qrels/{self.s.split}.tsv")  # the error naming what is missing
        return path

    def files(self) -> list[Path]:
        return [self._file("corpus.jsonl"), self._file("queries.jsonl"), self.qrels_path]

    def _read_docs(self) -> Iterator[Located]:
        yield from read_corpus(self._file("corpus.jsonl"), self.s.lang)

    def _read_queries(self) -> Iterator[Located]:
        yield from read_queries(self._file("queries.jsonl"), self.s.lang)

    def _read_qrels(self) -> Iterator[Located]:
        return read_qrels(self.qrels_path)


class Part(NamedTuple):
    """One subset and split of a repository, with the patterns of its data files."""

    config: str
    split: str
    patterns: list[str]


def _grade(where: str, raw: object) -> int:
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise DataError(f"{where}: relevance must be an integer, got {raw!r}") from None
    if value != int(value):
        raise DataError(f"{where}: relevance must be an integer, got {raw!r}")
    return int(value)


@dataclass
class HfSubsets(HubDataset):
    """A repository whose corpus, queries and qrels are subsets declared in its README."""

    @cached_property
    def _card(self) -> tuple[Path, dict[str, dict]]:
        """The snapshot folder (README fetched) and the subsets its README declares."""
        from datasets.utils.metadata import MetadataConfigs
        from huggingface_hub import DatasetCard

        folder = self.fetch(["README.md"])
        readme = folder / "README.md"
        if not readme.is_file():
            raise DataError(f"{self.dataset_id}: {self.s.repo}@{folder.name[:12]} has no README.md, whose configs: "
                            f"declare the subsets; a repository of BEIR files takes ?layout=beir")
        configs = dict(MetadataConfigs.from_dataset_card_data(DatasetCard.load(readme).data))
        if not configs:
            raise DataError(f"{self.dataset_id}: the README.md of {self.s.repo}@{folder.name[:12]} declares no "
                            f"subsets (configs:); a repository of BEIR files takes ?layout=beir")
        return folder, configs

    def _part(self, role: str, chosen: str | None, default: str, split: str | None) -> Part:
        from datasets.data_files import sanitize_patterns

        folder, configs = self._card
        config = chosen or default
        if config not in configs:
            known = ", ".join(sorted(configs)[:24]) + (", ..." if len(configs) > 24 else "")
            raise DataError(f"{self.dataset_id}: {self.s.repo}@{folder.name[:12]} has no subset {config!r} for the "
                            f"{role} (?{role}= names it); its subsets: {known}")
        files = configs[config].get("data_files")
        if files is None:
            raise DataError(f"{self.dataset_id}: subset {config!r} of {self.s.repo} lists no data_files")
        splits = {name: [str(p) for p in patterns] for name, patterns in sanitize_patterns(files).items()}
        wanted = split or self.s.split
        if wanted in splits:
            return Part(config, wanted, splits[wanted])
        if split is None and len(splits) == 1:
            return Part(config, *next(iter(splits.items())))
        option = "split" if role == "qrels" else f"{role}_split"
        raise DataError(f"{self.dataset_id}: subset {config!r} of {self.s.repo} has no split {wanted!r} "
                        f"(?{option}=); its splits: {', '.join(splits)}")

    @cached_property
    def parts(self) -> dict[str, Part]:
        """The subset and split of the corpus, the queries and the qrels."""
        s = self.s
        _, configs = self._card
        prefix = f"{s.subset}-" if s.subset else ""
        qrels = f"{prefix}qrels" if s.subset else ("default" if "default" in configs else "qrels")
        return {"corpus": self._part("corpus", s.corpus, f"{prefix}corpus", s.corpus_split),
                "queries": self._part("queries", s.queries, f"{prefix}queries", s.queries_split),
                "qrels": self._part("qrels", s.qrels, qrels, s.split)}

    @cached_property
    def folder(self) -> Path:
        card_folder, _ = self._card
        patterns = ["README.md"] + [p for part in self.parts.values() for p in part.patterns]
        return self.fetch(patterns, revision=card_folder.name)

    @cached_property
    def _files(self) -> dict[str, list[Path]]:
        from datasets.data_files import DataFilesList

        found = {}
        for role, part in self.parts.items():
            try:
                files = DataFilesList.from_patterns(part.patterns, base_path=str(self.folder))
            except FileNotFoundError:
                files = []
            if not files:
                raise DataError(f"{self.dataset_id}: no file of subset {part.config!r} split {part.split!r} "
                                f"({', '.join(part.patterns)}) in {self.folder}; offline, only what was fetched")
            found[role] = [Path(f) for f in files]
        return found

    def files(self) -> list[Path]:
        return [self.folder / "README.md", *(f for files in self._files.values() for f in files)]

    def _content_identity(self):
        import datasets

        yield f"datasets=={datasets.__version__}".encode()  # the reader of the rows
        yield from super()._content_identity()

    def _rows(self, role: str) -> Iterator[tuple[str, dict]]:
        """(where, row) for each row of the role's subset and split, read by ``datasets.load_dataset``."""
        import datasets

        part = self.parts[role]
        _ = self._files  # a missing file is a DataError naming it, before datasets reports it
        rows = datasets.load_dataset(str(self.folder), name=part.config, data_files={part.split: part.patterns},
                                     split=part.split, streaming=True)
        n = 0
        for batch in rows.iter(batch_size=BATCH):
            columns = list(batch)
            for values in zip(*batch.values(), strict=True):
                yield f"{self.where} {part.config}/{part.split} row {n}", dict(zip(columns, values, strict=True))
                n += 1

    @staticmethod
    def _field(where: str, row: dict, *names: str) -> str:
        """The first of ``names`` that the row has, as text (a missing or null one is a `DataError`)."""
        for name in names:
            if name in row:
                return as_text(where, name, row[name])
        raise DataError(f"{where}: no column {' or '.join(map(repr, names))} (have {sorted(row)})")

    def _read_docs(self) -> Iterator[Located]:
        for where, row in self._rows("corpus"):
            title = "" if row.get("title") is None else as_text(where, "title", row["title"])
            doc = Doc(self._field(where, row, *ID_COLUMNS), self._field(where, row, "text"), self.s.lang, title)
            yield Located(doc, where)

    def _read_queries(self) -> Iterator[Located]:
        for where, row in self._rows("queries"):
            yield Located(Query(self._field(where, row, *ID_COLUMNS), self._field(where, row, "text"), self.s.lang),
                          where)

    def _read_qrels(self) -> Iterator[Located]:
        for where, row in self._rows("qrels"):
            qid, did = (self._field(where, row, name) for name in QRELS_COLUMNS[:2])
            if "score" not in row:
                raise DataError(f"{where}: no column 'score' (have {sorted(row)})")
            yield Located(Judgement(qid, did, _grade(where, row["score"])), where)


def check_hf(dataset_id: str, path: str, options: dict[str, str]) -> None:
    """`hf_settings`: the id alone (nothing is fetched: the data may come at job time)."""
    hf_settings(dataset_id, path, options)


@loader("hf", "hf:ORG/NAME?lang=L&subset=S&split=test[&layout=beir&revision=R]  Hugging Face dataset repository "
              "(MTEB-style subsets, or BEIR files)", check=check_hf)
def load_hf(dataset_id: str, path: str, options: dict[str, str]) -> HubDataset:
    settings = hf_settings(dataset_id, path, options)
    kind = HfBeir if settings.layout == "beir" else HfSubsets
    return kind(dataset_id, options, settings=settings)
