"""What several test modules use: the repository, running its workflow, writing suites, torch's CPU kernels,
a fake CLEF (ELRA E0008) tree, the reference implementations under .ref/, synthetic token vectors,
synthetic collections and what a Lucene index holds."""

from __future__ import annotations

import glob
import gzip
import json
import math
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.data.base import Dataset, Doc, Located

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--cores", "all"]
DEMO_THREADS = 2
"""Threads per job of the tests' demo run (Snakemake's default, and CI's own demo run, is one)."""


def snakemake(workdir: Path, *targets: str, env: dict[str, str] | None = None) -> str:
    """Run Snakemake on the repository's workflow in ``workdir`` (with extra ``env``); its log."""
    done = subprocess.run([*SNAKEMAKE, "--directory", str(workdir), *targets], capture_output=True, text=True,
                          check=False, timeout=1200, env={**os.environ, **(env or {})})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


def write_suite(workdir: Path, name: str, text: str) -> Path:
    """Suite ``name`` written to ``workdir/suites/``, where `load_suite` and Snakemake look."""
    path = workdir / "suites" / f"{name}.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def other_capability() -> str:
    """A torch CPU capability other than this machine's: AVX2 on an AVX-512 CPU, else no SIMD."""
    import torch

    return "avx2" if torch.backends.cpu.get_cpu_capability() == "AVX512" else "default"


# --- a fake CLEF 2000-2003 tree (harness.data.clef): every LAYOUT path gets a small file -----------

# Raw SGML (latin-1 on disk, with entities) and what the loader must make of it.
CLEF_TEXTS = {
    "en": ("Caf&eacute; society", "The café served naïve tourists &amp; locals.",
           "Café society", "The café served naïve tourists & locals."),
    "fr": ("L'été à Paris", "Les élèves ont mangé une crème brûlée &agrave; Noël &amp; après.",
           "L'été à Paris", "Les élèves ont mangé une crème brûlée à Noël & après."),
    "de": ("Straßenbau in München", "Die Brücke über die Isar ist schön &#252;brigens.",
           "Straßenbau in München", "Die Brücke über die Isar ist schön übrigens."),
    "es": ("El año en España", "El niño comió piñas en Logroño &lt;ayer&gt;.",
           "El año en España", "El niño comió piñas en Logroño <ayer>."),
    "it": ("La città più bella", "Perché è così? Università &amp; caffè.",
           "La città più bella", "Perché è così? Università & caffè."),
}
CLEF_TOPIC_IDS = {2000: (1, 2), 2001: (41, 42), 2002: (91, 92), 2003: (141, 142)}
CLEF_TOPIC_TITLES = {"en": "Letter bomb", "fr": "Lettre piégée", "de": "Briefbombe für Kiesbauer",
                "es": "Carta bomba en España", "it": "Lettera bomba perché"}
CLEF_PREFIX_2000 = {"en": "E", "fr": "F", "de": "G", "it": "I", "es": "SP"}


def instantiate_glob(pattern: str, stem: str) -> str:
    """A concrete file name that ``pattern`` matches: ``a/**/*`` → ``a/stem``, ``la[0-9]*`` → ``la0stem``."""
    concrete = re.sub(r"\[([^\]])[^\]]*\]", r"\1", pattern).replace("**/", "")
    return concrete.replace("*", stem)


CLEF_DOCNO_STEMS = {
    "latimes94": "LA010194-000", "glasgow95": "GH950102-00000", "lemonde94": "LEMONDE94-00000",
    "ats94": "ATS.940101.000", "ats95": "ATS.950101.000", "rundschau94": "FR940104-00000",
    "spiegel9495": "SPIEGEL9495-00000", "sda94": "SDA.940101.000", "sda95": "SDA.950101.000",
    "lastampa94": "LASTAMPA94-00000", "agz94": "AGZ.940101.000", "agz95": "AGZ.950101.000",
    "efe94": "EFE19940101-0000", "efe95": "EFE19950101-0000",
}
"""Per CLEF collection key, the start of its fixture doc ids (shaped like the real ones); ``stem + "1"``."""


def clef_docno(collection, i: int) -> str:
    """The fixture's ``i``-th doc id of a CLEF collection."""
    return f"{CLEF_DOCNO_STEMS[collection.key]}{i}"


def clef_collection_of(docno: str) -> str:
    """The key of the fixture collection a doc id belongs to."""
    return next(key for key, stem in CLEF_DOCNO_STEMS.items() if docno.startswith(stem))


def clef_sgml_doc(collection, docno: str, lang: str, style_doc: int) -> tuple[str, tuple[str, str]]:
    raw_title, raw_text, title, text = CLEF_TEXTS[lang]
    if "SDA" in collection.name:
        lead = f"Lead {style_doc} &quot;{lang}&quot;"
        sgml = (f"<DOC>\n<DOCNO>{docno}</DOCNO>\n<DOCID>{docno}</DOCID>\n<DAT>01.01.1994</DAT>\n"
                f"<TI>{raw_title}</TI>\n<LD>{lead}</LD>\n<TX>{raw_text}\n{style_doc}</TX>\n</DOC>\n")
        return sgml, (title, f'Lead {style_doc} "{lang}"\n{text} {style_doc}')
    if "Los Angeles" in collection.name:
        sgml = (f"<DOC>\n<DOCNO> {docno} </DOCNO>\n<DOCID> {1000 + style_doc} </DOCID>\n"
                f"<DATE>\n<P>\nJanuary 1, 1994, Saturday\n</P>\n</DATE>\n<SECTION><P>Metro</P></SECTION>\n"
                f"<HEADLINE>\n<P>\n{raw_title}\n</P>\n</HEADLINE>\n<TEXT>\n<P>\n{raw_text}\n</P>\n<P>{style_doc}</P>\n</TEXT>\n</DOC>\n")
        return sgml, (title, f"{text} {style_doc}")
    sgml = (f"<DOC>\n<DOCNO>{docno}</DOCNO>\n<DOCID>{docno}</DOCID>\n<DATE>19940101</DATE>\n"
            f"<TITLE>{raw_title}</TITLE>\n<TEXT>\n{raw_text}\n{style_doc}\n</TEXT>\n</DOC>\n")
    return sgml, (title, f"{text} {style_doc}")


def clef_topic_file(year: int, lang: str) -> str:
    blocks = []
    for n in CLEF_TOPIC_IDS[year]:
        title, desc, narr = f"{CLEF_TOPIC_TITLES[lang]} {n}", f"Description {n} &amp; plus ({lang})", f"Narrative {n}"
        if year == 2000:  # the older style: one-letter prefixes, no closing tags, text on the next line
            p = CLEF_PREFIX_2000[lang]
            blocks.append(f"<top>\n<num> C{n:03d}\n<{p}-title>\n{title}\n\n<{p}-desc>\n{desc}\n\n<{p}-narr>\n{narr}\n\n</top>\n")
        else:
            num = f"10.2452/{n}-AH" if (lang, n) == ("fr", 142) else f"C{n:03d}"
            p = lang.upper()
            blocks.append(f"<top>\n<num> {num} </num>\n<{p}-title> {title} </{p}-title>\n"
                          f"<{p}-desc> {desc} </{p}-desc>\n<{p}-narr> {narr} </{p}-narr>\n</top>\n\n")
    return "".join(blocks)


def build_clef_tree(root: Path) -> dict[str, tuple[str, str, str]]:
    """Write a small file for every CLEF LAYOUT path under ``root``; docno → (language, title, text) as the loader must read them."""
    docs: dict[str, tuple[str, str, str]] = {}
    written: set[str] = set()
    from harness.data.clef import LAYOUT

    for year, campaign in LAYOUT.items():
        for lang, collections in campaign.docs.items():
            for collection in collections:
                if collection.pattern in written:
                    continue
                written.add(collection.pattern)
                compressed = "Los Angeles" in collection.name
                path = root / (instantiate_glob(collection.pattern, "0101") + (".gz" if compressed else ""))
                path.parent.mkdir(parents=True, exist_ok=True)
                sgml = "<!-- CLEF test fixture -->\n"
                for i in (1, 2):
                    docno = clef_docno(collection, i)
                    text, (title, body) = clef_sgml_doc(collection, docno, lang, i)
                    sgml += text
                    docs[docno] = (lang, title, body)
                data = sgml.encode("latin-1")
                path.write_bytes(gzip.compress(data) if compressed else data)
                assert Path(path) in [Path(p) for p in glob.glob(os.path.join(glob.escape(str(root)), collection.pattern), recursive=True)]
        for lang, rel in campaign.topics.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(clef_topic_file(year, lang).encode("latin-1"))
        for lang, rel in campaign.qrels.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            lines = [f"{n} 0 {clef_docno(c, i)} {int(i == 1)}"
                     for n in CLEF_TOPIC_IDS[year] for c in campaign.docs[lang] for i in (1, 2)]
            path.write_text("\n".join(lines) + "\n", encoding="latin-1")
    return docs

REF = REPO / ".ref"
"""Where setup.sh installs the reference implementations (one folder each, apart from .venv)."""
REFERENCES = {"colbert-ai": ("colbert-ai", "hf4"), "plaid-x": ("plaid-x", "hf4")}
"""Each reference's folders under `REF`, first on its path: the package, then transformers 4 and the
few modules it imports that .venv lacks."""
REFERENCE_SCRIPT = REPO / "tests" / "systems" / "reference_colbert.py"


def reference_path(package: str) -> list[Path]:
    """``package``'s folders under `REF`; fails the test (never skips) when setup.sh has not installed them."""
    import pytest

    folders = [REF / name for name in REFERENCES[package]]
    missing = [str(f) for f in folders if not (f / ".installed").is_file()]
    if missing:
        where = "CI ran setup.sh, which should have" if os.environ.get("CI") else "run `bash setup.sh`: it"
        pytest.fail(f"the reference tests need {package} in {', '.join(missing)}; {where} installed it there",
                    pytrace=False)
    return folders


def run_reference(job: dict, workdir: Path, timeout: int = 900) -> dict:
    """Run `REFERENCE_SCRIPT` on ``job`` under its package's reference folders (transformers 4 ahead
    of .venv's); the arrays it wrote."""
    import json

    import numpy as np

    folders = reference_path(job["package"])
    (workdir / "job.json").write_text(json.dumps(job), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, folders)), "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "TORCH_EXTENSIONS_DIR": str(REF / "torch_extensions"),
           "PATH": os.pathsep.join([str(REF / "hf4" / "bin"), os.environ.get("PATH", "")])}
    done = subprocess.run([sys.executable, str(REFERENCE_SCRIPT), str(workdir / "job.json"), str(workdir / "out.npz")],
                          capture_output=True, text=True, check=False, timeout=timeout, env=env)
    assert done.returncode == 0, f"{job['package']} {job['task']} failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    with np.load(workdir / "out.npz") as arrays:
        return dict(arrays)


# -- synthetic ColBERT-like token vectors (PLAID tests) ----------------------------------------------


def clustered_corpus(n_docs: int, dim: int, seed: int, lengths: tuple[int, int] = (8, 40), topics: int = 256,
                     spread: float = 0.75, block: int = 20_000) -> tuple[np.ndarray, np.ndarray]:
    """Float16 unit token vectors [tokens, dim] and doclens (lengths drawn in ``[lo, hi]``)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((topics, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    doclens = rng.integers(lengths[0], lengths[1] + 1, n_docs)
    doc_topics = rng.integers(0, topics, (n_docs, 4))
    parts = []
    for start in range(0, n_docs, block):
        lens = doclens[start : start + block]
        owner = np.repeat(np.arange(start, start + len(lens)), lens)
        vectors = centres[doc_topics[owner, rng.integers(0, 4, len(owner))]]
        vectors += spread / math.sqrt(dim) * rng.standard_normal(vectors.shape, dtype=np.float32)
        parts.append((vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float16))
    return np.concatenate(parts), doclens


def clustered_queries(embeddings: np.ndarray, doclens: np.ndarray, n: int, length: int, seed: int,
                      noise: float = 0.5) -> list[np.ndarray]:
    """``n`` queries of ``length`` unit vectors: noisy copies of random tokens of random documents."""
    rng = np.random.default_rng(seed)
    starts = np.cumsum(doclens) - doclens
    queries = []
    for doc in rng.integers(0, len(doclens), n):
        rows = starts[doc] + rng.integers(0, doclens[doc], length)
        q = embeddings[rows].astype(np.float32)
        q += noise / math.sqrt(q.shape[1]) * rng.standard_normal(q.shape, dtype=np.float32)
        queries.append(q / np.linalg.norm(q, axis=1, keepdims=True))
    return queries


def overlap(a: np.ndarray, b: np.ndarray, k: int) -> float:
    return len(set(a[:k].tolist()) & set(b[:k].tolist())) / k


# --- Lucene indexes (systems.bm25): synthetic text per script, and what an index holds ----------

SCRIPT_LETTERS = {
    "Latn": "abcdefghijklmnopqrstuvwxyzäöüßéèàçñ", "Arab": "ابتثجحخدذرزسشصضطظعغفقكلمنهوي", "Beng": "অআইকখগঘচছজটঠডতথদধনপফবমযরলশসহািীু",
    "Cyrl": "абвгдежзийклмнопрстуфхцчшщыьэюя", "Deva": "अआइकखगघचछजटठडतथदधनपफबमयरलवशसहािीुे", "Grek": "αβγδεζηθικλμνξοπρστυφχψωάέή",
    "Gujr": "અઆઇકખગઘચછજટઠડતથદધનપફબમયરલવશસહાિીુે", "Guru": "ਅਆਇਕਖਗਘਚਛਜਟਠਡਤਥਦਧਨਪਫਬਮਯਰਲਵਸਹਾਿੀੁ", "Hang": "가나다라마바사아자차카타파하국어학교",
    "Hans": "我们你他的是在有人中国大学生工作上海北京天", "Jpan": "日本語のはにをがですますカタナひらがな東京", "Mlym": "അആഇകഖഗഘചജടഡതദനപബമയരലവശസഹാിീ",
    "Orya": "ଅଆଇକଖଗଘଚଜଟଡତଦନପବମଯରଲଶସହାିୀ", "Taml": "அஆஇஉஎகசடதநபமயரலவழளறனாிீுெ", "Telu": "అఆఇకఖగఘచజటడతదనపబమయరలవశసహాిీు",
    "Thai": "กขคงจฉชซญดตถทธนบปผพฟภมยรลวศษสหอฮะาิีุูเแโ",
}
"""Letters of each script the languages table uses, for synthetic words."""


def synthetic_text(rng, script: str, words: int) -> str:
    """``words`` random words of ``script``'s letters (a Zipf-like vocabulary: short words repeat)."""
    letters = SCRIPT_LETTERS[script]
    return " ".join("".join(rng.choice(letters) for _ in range(min(12, 1 + int(rng.paretovariate(1.2)))))
                    for _ in range(words))


@dataclass
class TextsDataset(Dataset):
    """A collection held in memory: ``texts`` are ``(text, language)`` pairs, ids ``d0, d1, …``; no queries."""

    texts: tuple[tuple[str, str], ...] = ()

    def _read_docs(self) -> Iterator[Located]:
        for i, (text, lang) in enumerate(self.texts):
            yield Located(Doc(f"d{i}", text, lang), f"{self.dataset_id} #{i}")

    def _read_queries(self) -> list:
        return []

    def _read_qrels(self) -> dict:
        return {}

    def _content_identity(self) -> Iterator[bytes]:
        yield json.dumps(self.texts).encode()

    @property
    def doc_languages(self) -> tuple[str, ...]:
        return tuple(sorted({lang for _, lang in self.texts}))


def lucene_index_summary(path: Path, docs: int | None = None) -> dict:
    """What BM25 reads from the Lucene index at ``path``: the ``contents`` field's statistics, each
    term's document and collection frequencies, and the term vector (term → frequency, which fixes
    the document's length) of every document, or of the first ``docs`` by id."""
    from systems.bm25.lucene import jclass

    utils = jclass("io.anserini.index.IndexReaderUtils")
    reader = utils.getReader(str(path.resolve()))
    try:
        terms = jclass("org.apache.lucene.index.MultiTerms").getTerms(reader, "contents")
        stats = {"docs": reader.numDocs(), "doc_count": terms.getDocCount(), "sum_ttf": terms.getSumTotalTermFreq(),
                 "sum_df": terms.getSumDocFreq()}
        freqs, it = {}, terms.iterator()
        while (term := it.next()) is not None:
            freqs[term.utf8ToString()] = (it.docFreq(), it.totalTermFreq())
        ids = sorted(utils.convertLuceneDocidToDocid(reader, i) for i in range(reader.maxDoc()))
        vectors = {}
        for doc_id in ids[:docs]:
            vector = utils.getDocumentVector(reader, doc_id)
            vectors[doc_id] = {e.getKey(): e.getValue() for e in vector.entrySet().toArray()} if vector else {}
        return {"stats": stats, "freqs": freqs, "ids": ids, "vectors": vectors}
    finally:
        reader.close()
