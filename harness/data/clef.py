"""CLEF 2000-2003 ad hoc test collections from local ELRA files: ``clef:YEAR/LANG?root=DIR``.

The collections are the licensed ELRA package E0008 ("The CLEF Test Suite for the CLEF 2000-2003
Campaigns"); the harness cannot download them, a user points ``root`` at their unpacked copy.

Ids::

    clef:2003/fr?root=/data/clef                          French topics, French documents
    clef:2003/fr?root=/data/clef&query_lang=en            English topics, French documents (CLIR)
    clef:2001-2003/es?root=$CLEF_HOME                     the three years' topics and qrels together
    clef:2000-2003/en?root=$CLEF_HOME&collections=latimes94
                                                          those topics over LA Times 1994 alone
    clef:2003/multi?root=/data/clef&query_lang=en&doc_langs=de,en,es,fr
                                                          MLIR: one collection of four languages

``YEAR`` is one campaign or an inclusive range (``2000-2003``); a range concatenates the years'
topics and qrels (topic numbers do not overlap between years) over the union of the years'
collections. ``LANG`` is a document language (``en fr de es it``) or ``multi``: documents of
several languages in one collection, each keeping its own language; ``doc_langs`` defaults to the
languages of that year's multilingual task and ``query_lang`` to English. A monolingual id's query
language defaults to its document language. ``root`` may hold ``~`` and ``$VARS``.

Options (all optional except ``root``):

- ``query_lang``, ``doc_langs`` (comma-separated, ``multi`` only): as above.
- ``fields=title,desc``: topic fields that make the query text (``title``, ``desc``, ``narr``;
  default ``title``), joined with a space.
- ``collections=latimes94[,...]``: keep only these of the years' collections (keys in `COLLECTIONS`,
  e.g. ``latimes94``, ``rundschau94,spiegel9495``), as papers that used part of a language's documents
  did; a language none of them belongs to keeps all its collections. Judgements of the documents
  left out are dropped (told apart by their doc ids, `Collection.docnos`), and with them topics that
  judge nothing else.
- ``docs=<glob>[,<glob>...]``: the document files, replacing the table's collections (one document
  language only); ``docs_<lang>=`` replaces one language's collections of a multilingual id.
  ``topics=<path>[,...]`` and ``qrels=<path>[,...]`` replace the table's topic and qrels files.
  Relative paths and globs are relative to ``root``; ``**`` matches folders recursively.
- ``encoding=``: the document files' encoding (default per collection, latin-1 throughout);
  ``topics_encoding=`` the topic files' (default latin-1). Encodings must be ASCII-compatible.
- ``text_fields=TI,LD,TX``: the SGML fields that make a document's text (default: every field but
  the metadata in `METADATA_FIELDS`); title-like fields (`TITLE_FIELDS`) become `Doc.title`.
- ``id_field=DOCID``: the field holding the document id (default ``DOCNO``).
- ``qrels_without_queries=drop``: as for every loader.

`LAYOUT` says, per campaign and language, which files make the collection. **Its file names are
not verified against the ELRA distribution** (nobody here has it): they follow public scripts that
others wrote against their copies of E0008 (``DocumentData/DataCollections/<Language>_data/...``,
``Topics/topics2003/Top-fr03.txt``, ``RelAssess/2003rels/qrels_FR``, the 2000 topics as
``TOP-E.txt`` ...), and the collection lists follow the CLEF overview papers as we remember them.
Where a copy differs, the options above point at its files, and a missing file is reported with
every other missing one in one error. The package ships some collections as ``.tgz`` archives:
extract them first; plain and gzip-compressed (``*.gz``) SGML files are read as they are, and
DTDs, archives and READMEs that a glob matches are skipped (`SKIPPED_FILES`).

Documents are SGML (``<DOC><DOCNO>id</DOCNO> ... </DOC>``), streamed by `harness.data.formats.sgml`;
topics are ``<top>`` blocks with language-prefixed fields (``<EN-title>``) and qrels are TREC
``topic iteration docno relevance`` lines, both read by `harness.data.formats.trec`, which normalises
topic numbers alike in both (``C041``, ``41`` and ``10.2452/41-AH`` are all ``41``).

There was no English monolingual task in 2000-2003: English documents were the target of the
bilingual tasks, and the English qrels here are those (``biling_qrels``, ``qrels_bilingual``,
``qrels_EN``). A multilingual id's qrels are the union of its document languages' qrels unless
``qrels=`` names the official multilingual file. Every judged document must be among the
collection's documents (checked once they are all read), so ``docs=`` or ``id_field=`` that change
the documents need a matching ``qrels=``.

The fingerprint hashes the names (relative to ``root``) and sizes of the document files plus the
full bytes of the topic and qrels files: hashing gigabytes of SGML on every load is too slow, so an
edit to a document file that keeps its size is not seen.
"""

from __future__ import annotations

import codecs
import fnmatch
import glob
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from harness.data.base import DataError, Dataset, Doc, Located, Query, sha256_file
from harness.data.formats.sgml import METADATA_FIELDS, TITLE_FIELDS, read_sgml_docs
from harness.data.formats.trec import TOPIC_FIELDS, read_qrels, read_topics
from harness.data.registry import check_qrels_option, loader
from harness.languages import UnsupportedLanguage, language

# --------------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Collection:
    """One newspaper or agency's documents: a glob relative to the root, and their encoding."""

    name: str
    pattern: str
    encoding: str = "latin-1"
    reported_docs: int | None = None
    """Document count as the CLEF overviews report it, from memory (unverified; not checked on load)."""
    key: str = ""
    """The short name ``collections=`` takes (`COLLECTIONS`)."""
    docnos: str = ""
    """A regular expression the start of each of its doc ids matches (from public scripts, unverified):
    how judgements of a collection that ``collections=`` leaves out are told apart without reading it."""


@dataclass(frozen=True)
class Campaign:
    """One CLEF year: topics per topic language, collections and qrels per document language."""

    topics: Mapping[str, str]
    docs: Mapping[str, tuple[Collection, ...]]
    qrels: Mapping[str, str]
    multilingual: tuple[str, ...]
    """Document languages of the year's multilingual task (the default ``doc_langs``)."""


_DATA = "DocumentData/DataCollections"


def _collection(key: str, name: str, folder: str, docs: int, docnos: str) -> Collection:
    return Collection(name, f"{_DATA}/{folder}", reported_docs=docs, key=key, docnos=docnos)


LA_TIMES_94 = _collection("latimes94", "Los Angeles Times 1994", "English_data/la[0-9]*", 113_005, r"LA\d{6}-")
GLASGOW_HERALD_95 = _collection("glasgow95", "Glasgow Herald 1995", "English_data/GlasgowHerald95/**/*", 56_472,
                                r"GH95\d{4}-")
LE_MONDE_94 = _collection("lemonde94", "Le Monde 1994", "French_data/new_docno/**/*", 44_013, r"LEMONDE94-")
SDA_FRENCH_94 = _collection("ats94", "SDA/ATS French 1994", "French_data/sda_french/**/*", 43_178, r"ATS\.94")
SDA_FRENCH_95 = _collection("ats95", "SDA/ATS French 1995", "French_data/ats95/**/*", 42_615, r"ATS\.95")
FRANKFURTER_RUNDSCHAU_94 = _collection("rundschau94", "Frankfurter Rundschau 1994", "German_data/fr_rundschau/**/*",
                                       139_715, r"FR94\d{4}-")
DER_SPIEGEL_94_95 = _collection("spiegel9495", "Der Spiegel 1994/1995", "German_data/der_spiegel/**/*", 13_979,
                                r"SPIEGEL9495-")
SDA_GERMAN_94 = _collection("sda94", "SDA German 1994", "German_data/sda_german/**/*", 71_677, r"SDA\.94")
SDA_GERMAN_95 = _collection("sda95", "SDA German 1995", "German_data/sda95/**/*", 69_438, r"SDA\.95")
LA_STAMPA_94 = _collection("lastampa94", "La Stampa 1994", "Italian_data/la_stampa/**/*", 58_051, r"LASTAMPA94-")
SDA_ITALIAN_94 = _collection("agz94", "SDA/AGZ Italian 1994", "Italian_data/sda_italian/**/*", 50_527, r"AGZ\.94")
SDA_ITALIAN_95 = _collection("agz95", "SDA/AGZ Italian 1995", "Italian_data/agz95/**/*", 48_980, r"AGZ\.95")
EFE_94 = _collection("efe94", "EFE 1994", "Spanish_data/efe/**/*", 215_738, r"EFE1994")
EFE_95 = _collection("efe95", "EFE 1995", "Spanish_data/efe95/**/*", 238_307, r"EFE1995")
# Le Monde 1995 belongs to the CLEF 2004+ collections, not to 2000-2003.

LAYOUT: dict[int, Campaign] = {
    # 2000: English, French, German, Italian documents (no SDA yet); topics also in Spanish.
    2000: Campaign(
        topics={"en": "Topics/topics2000/TOP-E.txt", "fr": "Topics/topics2000/TOP-F.txt",
                "de": "Topics/topics2000/TOP-G.txt", "it": "Topics/topics2000/TOP-I.txt",
                "es": "Topics/topics2000/TOP-SP.txt"},
        docs={"en": (LA_TIMES_94,), "fr": (LE_MONDE_94,),
              "de": (FRANKFURTER_RUNDSCHAU_94, DER_SPIEGEL_94_95), "it": (LA_STAMPA_94,)},
        qrels={"en": "RelAssess/2000rels/biling_qrels", "fr": "RelAssess/2000rels/french_qrels",
               "de": "RelAssess/2000rels/german_qrels", "it": "RelAssess/2000rels/italian_qrels"},
        multilingual=("de", "en", "fr", "it"),
    ),
    # 2001: SDA 1994 (French, German, Italian) and EFE 1994 (Spanish) added.
    2001: Campaign(
        topics={"en": "Topics/topics2001/Top-en01.txt", "fr": "Topics/topics2001/Top-fr01.txt",
                "de": "Topics/topics2001/Top-de01.txt", "it": "Topics/topics2001/Top-it01.txt",
                "es": "Topics/topics2001/Top-es01.txt"},
        docs={"en": (LA_TIMES_94,), "fr": (LE_MONDE_94, SDA_FRENCH_94),
              "de": (FRANKFURTER_RUNDSCHAU_94, DER_SPIEGEL_94_95, SDA_GERMAN_94),
              "it": (LA_STAMPA_94, SDA_ITALIAN_94), "es": (EFE_94,)},
        qrels={"en": "RelAssess/2001rels/qrels_bilingual", "fr": "RelAssess/2001rels/qrels_french",
               "de": "RelAssess/2001rels/qrels_german", "it": "RelAssess/2001rels/qrels_italian",
               "es": "RelAssess/2001rels/qrels_spanish"},
        multilingual=("de", "en", "es", "fr", "it"),
    ),
    # 2002: the 2001 collections.
    2002: Campaign(
        topics={"en": "Topics/topics2002/Top-en02.txt", "fr": "Topics/topics2002/Top-fr02.txt",
                "de": "Topics/topics2002/Top-de02.txt", "it": "Topics/topics2002/Top-it02.txt",
                "es": "Topics/topics2002/Top-es02.txt"},
        docs={"en": (LA_TIMES_94,), "fr": (LE_MONDE_94, SDA_FRENCH_94),
              "de": (FRANKFURTER_RUNDSCHAU_94, DER_SPIEGEL_94_95, SDA_GERMAN_94),
              "it": (LA_STAMPA_94, SDA_ITALIAN_94), "es": (EFE_94,)},
        qrels={"en": "RelAssess/2002rels/qrels_EN", "fr": "RelAssess/2002rels/qrels_FR",
               "de": "RelAssess/2002rels/qrels_DE", "it": "RelAssess/2002rels/qrels_IT",
               "es": "RelAssess/2002rels/qrels_ES"},
        multilingual=("de", "en", "es", "fr", "it"),
    ),
    # 2003: 1995 data added (Glasgow Herald, SDA 1995, EFE 1995); Multilingual-4 = de en es fr.
    2003: Campaign(
        topics={"en": "Topics/topics2003/Top-en03.txt", "fr": "Topics/topics2003/Top-fr03.txt",
                "de": "Topics/topics2003/Top-de03.txt", "it": "Topics/topics2003/Top-it03.txt",
                "es": "Topics/topics2003/Top-es03.txt"},
        docs={"en": (LA_TIMES_94, GLASGOW_HERALD_95), "fr": (LE_MONDE_94, SDA_FRENCH_94, SDA_FRENCH_95),
              "de": (FRANKFURTER_RUNDSCHAU_94, DER_SPIEGEL_94_95, SDA_GERMAN_94, SDA_GERMAN_95),
              "it": (LA_STAMPA_94, SDA_ITALIAN_94, SDA_ITALIAN_95), "es": (EFE_94, EFE_95)},
        qrels={"en": "RelAssess/2003rels/qrels_EN", "fr": "RelAssess/2003rels/qrels_FR",
               "de": "RelAssess/2003rels/qrels_DE", "it": "RelAssess/2003rels/qrels_IT",
               "es": "RelAssess/2003rels/qrels_ES"},
        multilingual=("de", "en", "es", "fr"),
    ),
}

COLLECTIONS: dict[str, tuple[str, Collection]] = {
    c.key: (lang, c) for campaign in LAYOUT.values() for lang, cs in campaign.docs.items() for c in cs}
"""``collections=`` key → (document language, collection)."""

SKIPPED_FILES = ("*.dtd", "*.tgz", "*.tar", "*.tar.gz", "*.zip", "README*", "readme*", ".*")
"""Names a collection glob may match that are not SGML documents (DTDs, archives, notes)."""

OPTIONS = frozenset({
    "root", "query_lang", "doc_langs", "fields", "docs", "topics", "qrels", "encoding", "topics_encoding",
    "text_fields", "id_field", "qrels_without_queries", "collections",
})

ENCODING_HINT = "if the file is in another encoding, say so with encoding=<codec> (topics_encoding= for topic files)"
"""What the readers add to a byte that is not in the file's declared encoding."""


# --------------------------------------------------------------------------------------------------
# The dataset
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    """One collection of the dataset with the files its glob matched."""

    lang: str
    collection: Collection
    files: tuple[Path, ...]


@dataclass
class ClefDataset(Dataset):
    """A CLEF collection: its parts' SGML documents, topics and qrels, as `load_clef` resolved them."""

    root: Path = Path(".")
    parts: tuple[Part, ...] = ()
    query_lang: str = "en"
    topic_files: tuple[Path, ...] = ()
    qrels_files: tuple[Path, ...] = ()
    fields: tuple[str, ...] = ("title",)
    topics_encoding: str = "latin-1"
    text_fields: frozenset[str] | None = None
    id_field: str = "DOCNO"
    left_out: tuple[str, ...] = ()
    """`Collection.docnos` of the collections ``collections=`` leaves out: their judgements are dropped."""

    def _read_docs(self) -> Iterator[Located]:
        for part in self.parts:
            found = 0
            for path in part.files:
                for doc in read_sgml_docs(path, part.collection.encoding, self.id_field, self.text_fields, ENCODING_HINT):
                    found += 1
                    yield Located(Doc(doc.doc_id, doc.text, part.lang, doc.title), f"{path}:{doc.line}")
            if not found:
                raise DataError(
                    f"{self.dataset_id}: {part.collection.name}: {len(part.files)} files match "
                    f"{part.collection.pattern} but none holds a <DOC>; point docs= at the SGML files"
                )

    def _read_queries(self) -> list[Located]:
        return [Located(Query(topic.topic_id, topic.text, self.query_lang), f"{path}:{topic.line}")
                for path in self.topic_files
                for topic in read_topics(path, self.topics_encoding, self.fields, ENCODING_HINT)]

    def _read_qrels(self) -> Iterator[Located]:
        dropped = re.compile("|".join(f"(?:{p})" for p in self.left_out)) if self.left_out else None
        for path in self.qrels_files:
            for located in read_qrels(path):
                if dropped is None or not dropped.match(located.item.doc_id):
                    yield located

    def _name(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix() if path.is_relative_to(self.root) else str(path)

    def _content_identity(self):
        settings = {
            "collections": [[p.lang, p.collection.name, p.collection.pattern, p.collection.encoding] for p in self.parts],
            "query_lang": self.query_lang, "fields": self.fields, "topics_encoding": self.topics_encoding,
            "text_fields": sorted(self.text_fields) if self.text_fields is not None else None,
            "id_field": self.id_field, "left_out": list(self.left_out), "metadata_fields": sorted(METADATA_FIELDS), "title_fields": sorted(TITLE_FIELDS),
        }
        yield json.dumps(settings, sort_keys=True).encode()
        for part in self.parts:
            for path in part.files:
                yield f"doc\t{self._name(path)}\t{path.stat().st_size}\n".encode()
        for kind, paths in (("topics", self.topic_files), ("qrels", self.qrels_files)):
            for path in paths:
                yield f"{kind}\t{self._name(path)}\n".encode()
                yield sha256_file(path)

    @property
    def doc_languages(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(part.lang for part in self.parts))


# --------------------------------------------------------------------------------------------------
# The loader
# --------------------------------------------------------------------------------------------------

_PATH = re.compile(r"(\d{4})(?:-(\d{4}))?/([A-Za-z-]+)")


def _expand(value: str) -> str:
    return os.path.expanduser(os.path.expandvars(value))


def _split(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _iso(dataset_id: str, code: str) -> str:
    try:
        return language(code).iso
    except UnsupportedLanguage as e:
        raise DataError(f"{dataset_id}: {e}") from None


def _check_encoding(dataset_id: str, option: str, encoding: str) -> str:
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise DataError(f"{dataset_id}: unknown encoding {option}={encoding!r}") from None
    if "<DOC>\n".encode(encoding, errors="replace") != b"<DOC>\n":
        raise DataError(f"{dataset_id}: {option}={encoding!r} is not ASCII-compatible; the SGML reader needs one that is")
    return encoding


def _matches(root: Path, pattern: str) -> tuple[Path, ...]:
    """Regular files the glob matches (relative to ``root`` unless absolute), sorted, non-documents skipped."""
    found = glob.glob(os.path.join(glob.escape(str(root)), _expand(pattern)), recursive=True)
    return tuple(sorted(
        Path(p) for p in found
        if os.path.isfile(p) and not any(fnmatch.fnmatchcase(os.path.basename(p), skip) for skip in SKIPPED_FILES)
    ))


def _years(dataset_id: str, first: str, last: str | None) -> list[int]:
    years = list(range(int(first), int(last or first) + 1))
    unknown = [y for y in years if y not in LAYOUT]
    if not years or unknown:
        raise DataError(f"{dataset_id}: CLEF years are {min(LAYOUT)}-{max(LAYOUT)}, got {first}{'-' + last if last else ''}")
    return years


def _languages(dataset_id: str, path: str, target: str, years: list[int],
               options: dict[str, str]) -> tuple[list[str], str]:
    """(document languages, query language) of an id."""
    if target != "multi":
        if "doc_langs" in options:
            raise DataError(f"{dataset_id}: doc_langs is for clef:{path.split('/')[0]}/multi; "
                            f"{target!r} names the one document language")
        doc_langs = [_iso(dataset_id, target)]
        return doc_langs, _iso(dataset_id, options.get("query_lang", doc_langs[0]))
    if "doc_langs" in options:
        doc_langs = list(dict.fromkeys(_iso(dataset_id, c) for c in _split(options["doc_langs"])))
    elif len(years) == 1:
        doc_langs = list(LAYOUT[years[0]].multilingual)
    else:
        raise DataError(f"{dataset_id}: a range of years has no one multilingual task; add &doc_langs=")
    if not doc_langs:
        raise DataError(f"{dataset_id}: doc_langs is empty")
    return doc_langs, _iso(dataset_id, options.get("query_lang", "en"))


def _docs_overrides(dataset_id: str, doc_langs: list[str], options: dict[str, str]) -> dict[str, str | None]:
    """Per document language, the ``docs=``/``docs_<lang>=`` globs that replace the table's, if any."""
    if options.get("docs") and len(doc_langs) > 1:
        raise DataError(f"{dataset_id}: docs= sets one language's files; use docs_<lang>= for {','.join(doc_langs)}")
    stray = sorted(k for k in options if k.startswith("docs_") and k[len("docs_"):] not in doc_langs)
    if stray:
        raise DataError(f"{dataset_id}: {', '.join(stray)} name languages that are not among the documents "
                        f"({','.join(doc_langs)})")
    return {lang: options.get(f"docs_{lang}") or (options.get("docs") if len(doc_langs) == 1 else None)
            for lang in doc_langs}


def _check_available(dataset_id: str, years: list[int], doc_langs: list[str], query_lang: str,
                     docs: dict[str, str | None], options: dict[str, str]) -> None:
    """The table has what the id asks for, in every year, unless an option names the files."""
    absent = []
    for year in years:
        campaign = LAYOUT[year]
        absent += [f"CLEF {year} has no {language(lang).name} documents (it has {' '.join(sorted(campaign.docs))})"
                   for lang in doc_langs if lang not in campaign.docs and not docs[lang]]
        absent += [f"CLEF {year} has no {language(lang).name} qrels" for lang in doc_langs
                   if lang not in campaign.qrels and not options.get("qrels") and (lang in campaign.docs or docs[lang])]
        if query_lang not in campaign.topics and not options.get("topics"):
            absent.append(f"CLEF {year} has no {language(query_lang).name} topics")
    if absent:
        raise DataError(f"{dataset_id}: {'; '.join(absent)}; choose other years or languages, or name the files")


def _table_collections(years: list[int], lang: str) -> list[Collection]:
    """The years' collections of one document language, in table order."""
    return list(dict.fromkeys(c for year in years for c in LAYOUT[year].docs.get(lang, ())))


def _chosen_collections(dataset_id: str, years: list[int], doc_langs: list[str], docs: dict[str, str | None],
                        options: dict[str, str]) -> dict[str, tuple[Collection, ...]]:
    """Per document language that ``collections=`` names, the named collections (checked: known keys,
    of the id's document languages, among the years' collections, not also chosen by ``docs=``)."""
    if "collections" not in options:
        return {}
    keys = _split(options["collections"])
    if not keys:
        raise DataError(f"{dataset_id}: collections= is empty; name some of {', '.join(COLLECTIONS)}")
    chosen: dict[str, list[Collection]] = {}
    for key in dict.fromkeys(keys):
        if key not in COLLECTIONS:
            raise DataError(f"{dataset_id}: unknown collection {key!r} in collections=; known: {', '.join(COLLECTIONS)}")
        lang, collection = COLLECTIONS[key]
        if lang not in doc_langs:
            raise DataError(f"{dataset_id}: collections={key} holds {language(lang).name} documents, which are not "
                            f"among the id's ({','.join(doc_langs)})")
        if docs[lang]:
            raise DataError(f"{dataset_id}: collections={key} and docs= both choose the {language(lang).name} "
                            f"documents; use one")
        offered = _table_collections(years, lang)
        if collection not in offered:
            span = f"{years[0]}-{years[-1]}" if len(years) > 1 else str(years[0])
            raise DataError(f"{dataset_id}: collections={key}: the CLEF {span} {language(lang).name} collections "
                            f"are {','.join(c.key for c in offered)}")
        chosen.setdefault(lang, []).append(collection)
    return {lang: tuple(cs) for lang, cs in chosen.items()}


def _expected(years: list[int], doc_langs: list[str], query_lang: str, docs: dict[str, str | None],
              chosen: dict[str, tuple[Collection, ...]], options: dict[str, str],
              ) -> tuple[list[tuple[str, Collection]], list[tuple[str, str]], list[tuple[str, str]]]:
    """(language, collection) pairs, and labelled topic and qrels paths, from the table or the options."""
    encoding = options.get("encoding")
    collections = []
    for lang in doc_langs:
        if docs[lang]:
            selected = [Collection(f"docs= for {lang}", pattern) for pattern in _split(docs[lang])]
        else:
            selected = list(chosen.get(lang) or _table_collections(years, lang))
        collections += [(lang, replace(c, encoding=encoding) if encoding else c) for c in selected]
    if options.get("topics"):
        topics = [("topics", p) for p in _split(options["topics"])]
    else:
        topics = [(f"topics {year} {query_lang}", LAYOUT[year].topics[query_lang]) for year in years]
    if options.get("qrels"):
        qrels = [("qrels", p) for p in _split(options["qrels"])]
    else:
        qrels = [(f"qrels {year} {lang}", LAYOUT[year].qrels[lang]) for year in years for lang in doc_langs]
    return collections, topics, qrels


@dataclass(frozen=True)
class ClefSettings:
    """What an id asks for, from its path and options alone (see `clef_settings`)."""

    years: list[int]
    root: Path
    doc_langs: list[str]
    query_lang: str
    docs: dict[str, str | None]
    collections: dict[str, tuple[Collection, ...]]
    topics_encoding: str
    fields: tuple[str, ...]
    text_fields: frozenset[str] | None
    id_field: str


def clef_settings(dataset_id: str, path: str, options: dict[str, str]) -> ClefSettings:
    """The id's settings, checked without touching the files: known options, years and languages the
    table has (or options naming the files), usable encodings, topic fields."""
    unknown = sorted(k for k in options if k not in OPTIONS and not re.fullmatch(r"docs_[a-z]{2}", k))
    if unknown:
        raise DataError(f"{dataset_id}: unknown option(s) {unknown}; known: {', '.join(sorted(OPTIONS))}, docs_<lang>")
    check_qrels_option(dataset_id, options)
    match = _PATH.fullmatch(path)
    if not match:
        raise DataError(f"{dataset_id}: expected clef:YEAR/LANG or clef:YEAR-YEAR/multi (e.g. clef:2003/fr), got {path!r}")
    years = _years(dataset_id, match.group(1), match.group(2))
    if not options.get("root"):
        raise DataError(f"{dataset_id}: CLEF files are local; add ?root=<folder of the unpacked ELRA E0008 package>")
    root = Path(_expand(options["root"]))
    doc_langs, query_lang = _languages(dataset_id, path, match.group(3).lower(), years, options)
    docs = _docs_overrides(dataset_id, doc_langs, options)
    _check_available(dataset_id, years, doc_langs, query_lang, docs, options)
    chosen = _chosen_collections(dataset_id, years, doc_langs, docs, options)
    if options.get("encoding"):
        _check_encoding(dataset_id, "encoding", options["encoding"])
    topics_encoding = _check_encoding(dataset_id, "topics_encoding", options.get("topics_encoding") or "latin-1")
    fields = tuple(f.strip().lower() for f in _split(options.get("fields", "title")))
    if not fields or any(f not in TOPIC_FIELDS for f in fields):
        raise DataError(f"{dataset_id}: fields= takes a comma-separated subset of {','.join(TOPIC_FIELDS)}, "
                        f"got {options.get('fields')!r}")
    text_fields = frozenset(f.upper() for f in _split(options["text_fields"])) if options.get("text_fields") else None
    return ClefSettings(years, root, doc_langs, query_lang, docs, chosen, topics_encoding, fields, text_fields,
                        options.get("id_field", "DOCNO").strip().upper() or "DOCNO")


def check_clef(dataset_id: str, path: str, options: dict[str, str]) -> None:
    """`clef_settings`, and a root given (no unset ``$VAR`` in it) is a folder. The files in it are
    looked for when the dataset is loaded: globbing gigabytes of SGML is not a planning-time check."""
    root = clef_settings(dataset_id, path, options).root
    if "$" not in str(root) and not root.is_dir():
        raise DataError(f"{dataset_id}: root {root} is not a directory")


@loader("clef", "clef:YEAR[-YEAR]/LANG|multi?root=DIR[&query_lang=L&doc_langs=de,en&fields=title,desc"
                "&collections=latimes94&docs=GLOB&topics=PATH&qrels=PATH&encoding=E]  CLEF 2000-2003 from local ELRA E0008 files",
        check=check_clef)
def load_clef(dataset_id: str, path: str, options: dict[str, str]) -> ClefDataset:
    settings = clef_settings(dataset_id, path, options)
    years, root, doc_langs, query_lang = settings.years, settings.root, settings.doc_langs, settings.query_lang

    # Every expected file is looked for before any is read, and all the missing ones are named at once.
    collections, topic_paths, qrels_paths = _expected(years, doc_langs, query_lang, settings.docs,
                                                      settings.collections, options)
    left_out = tuple(c.docnos for lang, cs in settings.collections.items()
                     for c in _table_collections(years, lang) if c not in cs)
    missing: list[str] = []
    parts = []
    for lang, collection in collections:
        files = _matches(root, collection.pattern) if root.is_dir() else ()
        if not files:
            missing.append(f"documents {collection.name} ({lang}): {root / _expand(collection.pattern)} matched no file")
        parts.append(Part(lang, collection, files))
    resolved: dict[str, list[Path]] = {"topics": [], "qrels": []}
    for kind, labelled in (("topics", topic_paths), ("qrels", qrels_paths)):
        for label, rel in labelled:
            file = root / _expand(rel)
            if not file.is_file():
                missing.append(f"{label}: {file} (no such file)")
            resolved[kind].append(file)
    if missing or not root.is_dir():
        span = f"CLEF {years[0]}" + (f"-{years[-1]}" if len(years) > 1 else "")
        what = (f"{span}, {'+'.join(language(lang).name for lang in doc_langs)} documents, "
                f"{language(query_lang).name} topics")
        head = f"root {root} is not a directory" if not root.is_dir() else f"{len(missing)} expected files are missing"
        raise DataError(
            f"{dataset_id}: {what}: {head}; expected:\n  " + "\n  ".join(missing)
            + "\nThe file names come from an unverified table (harness.data.clef.LAYOUT); point at your copy's files "
              "with docs=<glob> (docs_<lang>= in a multilingual id), topics=<path>, qrels=<path>."
        )
    return ClefDataset(
        dataset_id, options, root=root, parts=tuple(parts), query_lang=query_lang,
        topic_files=tuple(resolved["topics"]), qrels_files=tuple(resolved["qrels"]), fields=settings.fields,
        topics_encoding=settings.topics_encoding, text_fields=settings.text_fields, id_field=settings.id_field,
        left_out=left_out,
    )
