"""The languages table: ISO ↔ XMOD ↔ NLLB ↔ Lucene analyzer, aliases, and unsupported codes."""

from __future__ import annotations

import pytest

from harness.languages import (
    ALIASES,
    LANGUAGES,
    Language,
    UnsupportedLanguage,
    language,
    lucene_analyzer,
    nllb_code,
    xmod_code,
)

LUCENE = "org.apache.lucene.analysis"


@pytest.mark.parametrize(
    ("iso", "xmod", "nllb", "analyzer"),
    [
        ("fr", "fr_XX", "fra_Latn", f"{LUCENE}.fr.FrenchAnalyzer"),
        ("hi", "hi_IN", "hin_Deva", f"{LUCENE}.hi.HindiAnalyzer"),
        ("zh", "zh_CN", "zho_Hans", f"{LUCENE}.cjk.CJKAnalyzer"),
        ("ko", "ko_KR", "kor_Hang", f"{LUCENE}.cjk.CJKAnalyzer"),
        ("de", "de_DE", "deu_Latn", f"{LUCENE}.de.GermanAnalyzer"),
        ("ru", "ru_RU", "rus_Cyrl", f"{LUCENE}.ru.RussianAnalyzer"),
        ("ar", "ar_AR", "arb_Arab", f"{LUCENE}.ar.ArabicAnalyzer"),
        ("ja", "ja_XX", "jpn_Jpan", f"{LUCENE}.ja.JapaneseAnalyzer"),
        ("fa", "fa_IR", "pes_Arab", f"{LUCENE}.fa.PersianAnalyzer"),
        ("sw", "sw_KE", "swh_Latn", f"{LUCENE}.core.WhitespaceAnalyzer"),
        ("en", "en_XX", "eng_Latn", "io.anserini.analysis.DefaultEnglishAnalyzer"),
        ("vi", "vi_VN", "vie_Latn", f"{LUCENE}.standard.StandardAnalyzer"),
        ("ta", "ta_IN", "tam_Taml", f"{LUCENE}.ta.TamilAnalyzer"),
        ("mr", "mr_IN", "mar_Deva", f"{LUCENE}.standard.StandardAnalyzer"),
        ("or", "or_IN", "ory_Orya", f"{LUCENE}.standard.StandardAnalyzer"),
    ],
)
def test_lookups(iso, xmod, nllb, analyzer):
    assert xmod_code(iso) == xmod
    assert nllb_code(iso) == nllb
    assert lucene_analyzer(iso) == analyzer
    row = language(iso)
    assert isinstance(row, Language)
    assert row.iso == iso
    assert (row.xmod, row.nllb, row.lucene_analyzer) == (xmod, nllb, analyzer)


def test_assamese_has_no_xmod_adapter_but_an_nllb_code():
    with pytest.raises(UnsupportedLanguage, match="no XMOD adapter"):
        xmod_code("as")
    assert nllb_code("as") == "asm_Beng" and "no Assamese analyzer" in language("as").analyzer_note


def test_every_analyzer_is_in_anserinis_jar():
    """Each analyzer class of the table is in the Anserini jar Pyserini ships (read as a zip: no JVM)."""
    import importlib.util
    import zipfile
    from pathlib import Path

    package = Path(next(iter(importlib.util.find_spec("pyserini").submodule_search_locations)))
    jar = next((package / "resources" / "jars").glob("anserini-*-fatjar.jar"))
    with zipfile.ZipFile(jar) as archive:
        classes = set(archive.namelist())
    missing = {row.iso: row.lucene_analyzer for row in LANGUAGES.values()
               if row.lucene_analyzer.replace(".", "/") + ".class" not in classes}
    assert missing == {}


def test_xmod_uses_fr_XX_not_fr_FR():
    # REFERENCE.md: the ColBERT-XM checkpoint names French fr_XX.
    assert xmod_code("fr") == "fr_XX"
    assert xmod_code("fr") != "fr_FR"


def test_lookup_is_case_and_whitespace_insensitive():
    assert language(" FR ").iso == "fr"
    assert xmod_code("Hi") == "hi_IN"


def test_mmarco_dutch_alias():
    assert ALIASES["dt"] == "nl"
    row = language("dt")
    assert row.iso == "nl"
    assert row.name == "Dutch"
    assert xmod_code("dt") == "nl_XX"
    assert nllb_code("dt") == "nld_Latn"
    assert lucene_analyzer("dt") == f"{LUCENE}.nl.DutchAnalyzer"
    # the alias is an alias, not a row of its own
    assert "dt" not in LANGUAGES


def test_other_aliases_resolve_to_rows():
    for alias, iso in ALIASES.items():
        assert iso in LANGUAGES, f"alias {alias!r} points at {iso!r}, which has no row"
        assert language(alias) is LANGUAGES[iso]


@pytest.mark.parametrize("code", ["xx", "klingon", "", "fr_XX", "pl"])
def test_unsupported_language_raises(code):
    with pytest.raises(UnsupportedLanguage) as info:
        language(code)
    assert repr(code) in str(info.value)
    # UnsupportedLanguage is a ValueError, so callers that expect bad values can catch it
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("fn", [xmod_code, nllb_code, lucene_analyzer])
def test_unsupported_language_raises_from_every_lookup(fn):
    with pytest.raises(UnsupportedLanguage, match="'qq'"):
        fn("qq")


def test_unsupported_message_lists_known_codes():
    with pytest.raises(UnsupportedLanguage) as info:
        language("xx")
    message = str(info.value)
    assert "de" in message and "zh" in message
    assert "dt=nl" in message


def test_rows_are_consistent():
    rows = list(LANGUAGES.values())
    isos = [row.iso for row in rows]
    assert len(isos) == len(set(isos)), "duplicate iso codes"
    assert all(key == row.iso for key, row in LANGUAGES.items())
    for row in rows:
        assert len(row.iso) == 2 and row.iso.islower(), row
        assert row.name, row
        assert row.script, row
        analyzer = row.lucene_analyzer
        assert analyzer, f"{row.iso} has no Lucene analyzer"
        cls = analyzer.rsplit(".", 1)[-1]
        assert "." in analyzer and cls[:1].isupper() and cls.endswith("Analyzer"), (row.iso, analyzer)
        if row.xmod is not None:
            assert row.xmod.startswith(row.iso + "_"), (row.iso, row.xmod)
        if row.nllb is not None:
            assert row.nllb.endswith("_" + row.script) or row.iso in {"zh", "ja"}, (row.iso, row.nllb)


def test_xmod_and_nllb_codes_are_distinct_across_rows():
    xmods = [row.xmod for row in LANGUAGES.values() if row.xmod]
    nllbs = [row.nllb for row in LANGUAGES.values() if row.nllb]
    assert len(xmods) == len(set(xmods))
    assert len(nllbs) == len(set(nllbs))


def test_languages_needed_by_the_suites_are_present():
    # mMARCO (with dt), Mr. TyDi, NeuCLIR, XQuAD, CLEF, Hindi-BEIR, MIRACL, MLDR, IndicQA
    needed = {"ar", "zh", "dt", "fr", "de", "hi", "id", "it", "ja", "pt", "ru", "es", "vi", "en", "bn", "fi", "ko",
              "sw", "te", "th", "fa", "el", "ro", "tr", "nl", "sv", "as", "gu", "ml", "mr", "or", "pa", "ta"}
    for code in needed:
        language(code)
