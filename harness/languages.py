"""The one table of languages: ISO 639-1 code ↔ XMOD adapter ↔ NLLB code ↔ Lucene analyzer.

Every component that needs a language-specific setting reads it here. A code that is not in the
table is an error (`UnsupportedLanguage`), never a silent fallback to English.
"""

from __future__ import annotations

from dataclasses import dataclass

LUCENE = "org.apache.lucene.analysis"
SPACE_FREE_SCRIPTS = frozenset({"Hans", "Jpan", "Thai"})


class UnsupportedLanguage(ValueError):
    """A language code the harness has no entry (or no setting of the asked kind) for."""


@dataclass(frozen=True)
class Language:
    """One row of the table. ``None`` means the resource has no entry for the language."""

    iso: str
    name: str
    script: str
    xmod: str | None
    nllb: str | None
    lucene_analyzer: str
    analyzer_note: str = ""

    @property
    def spaced(self) -> bool:
        """Whether words are separated by spaces (not in Chinese, Japanese, Thai)."""
        return self.script not in SPACE_FREE_SCRIPTS


def _lucene(package: str, cls: str) -> str:
    return f"{LUCENE}.{package}.{cls}"


def _standard(name: str, more: str = "") -> tuple[str, str]:
    """Lucene's standard analyzer and the note saying why, for a language Lucene has no analyzer for."""
    note = f"Lucene has no {name} analyzer: standard tokenizer (UAX#29 keeps vowel signs with their letters), "
    return _lucene("standard", "StandardAnalyzer"), f"{note}no stemming or stopwords{more}"


# XMOD codes for ar de en es fr hi id it ja nl pt ru vi zh bn fi ko sw te th fa come from the
# ColBERT-XM checkpoint's language list (REFERENCE.md); the others follow the same X-MOD list
# and are checked against the checkpoint's `config.languages` whenever a model is loaded.
# Assamese is not among X-MOD's languages. The Indic languages Lucene has no analyzer for (as gu
# ml mr or pa) use its standard analyzer; Tamil has Lucene's TamilAnalyzer (in Anserini's jar).
_ROWS = [
    Language("ar", "Arabic", "Arab", "ar_AR", "arb_Arab", _lucene("ar", "ArabicAnalyzer")),
    Language("as", "Assamese", "Beng", None, "asm_Beng", *_standard("Assamese", "; X-MOD has no Assamese adapter")),
    Language("bn", "Bengali", "Beng", "bn_IN", "ben_Beng", _lucene("bn", "BengaliAnalyzer")),
    Language("da", "Danish", "Latn", "da_DK", "dan_Latn", _lucene("da", "DanishAnalyzer")),
    Language("de", "German", "Latn", "de_DE", "deu_Latn", _lucene("de", "GermanAnalyzer")),
    Language("el", "Greek", "Grek", "el_GR", "ell_Grek", _lucene("el", "GreekAnalyzer")),
    Language("en", "English", "Latn", "en_XX", "eng_Latn",
             "io.anserini.analysis.DefaultEnglishAnalyzer", "Anserini default: Porter stemmer, Lucene stopwords"),
    Language("es", "Spanish", "Latn", "es_XX", "spa_Latn", _lucene("es", "SpanishAnalyzer")),
    Language("fa", "Persian", "Arab", "fa_IR", "pes_Arab", _lucene("fa", "PersianAnalyzer")),
    Language("fi", "Finnish", "Latn", "fi_FI", "fin_Latn", _lucene("fi", "FinnishAnalyzer")),
    Language("fr", "French", "Latn", "fr_XX", "fra_Latn", _lucene("fr", "FrenchAnalyzer")),
    Language("gu", "Gujarati", "Gujr", "gu_IN", "guj_Gujr", *_standard("Gujarati")),
    Language("hi", "Hindi", "Deva", "hi_IN", "hin_Deva", _lucene("hi", "HindiAnalyzer")),
    Language("hu", "Hungarian", "Latn", "hu_HU", "hun_Latn", _lucene("hu", "HungarianAnalyzer")),
    Language("id", "Indonesian", "Latn", "id_ID", "ind_Latn", _lucene("id", "IndonesianAnalyzer")),
    Language("it", "Italian", "Latn", "it_IT", "ita_Latn", _lucene("it", "ItalianAnalyzer")),
    Language("ja", "Japanese", "Jpan", "ja_XX", "jpn_Jpan", _lucene("ja", "JapaneseAnalyzer")),
    Language("ko", "Korean", "Hang", "ko_KR", "kor_Hang", _lucene("cjk", "CJKAnalyzer"), "CJK bigrams, as Anserini"),
    Language("ml", "Malayalam", "Mlym", "ml_IN", "mal_Mlym", *_standard("Malayalam")),
    Language("mr", "Marathi", "Deva", "mr_IN", "mar_Deva", *_standard("Marathi", " (Hindi's would stem Marathi as Hindi)")),
    Language("nl", "Dutch", "Latn", "nl_XX", "nld_Latn", _lucene("nl", "DutchAnalyzer")),
    Language("no", "Norwegian", "Latn", "no_XX", "nob_Latn", _lucene("no", "NorwegianAnalyzer")),
    Language("or", "Odia", "Orya", "or_IN", "ory_Orya", *_standard("Odia")),
    Language("pa", "Punjabi", "Guru", "pa_IN", "pan_Guru", *_standard("Punjabi")),
    Language("pt", "Portuguese", "Latn", "pt_XX", "por_Latn", _lucene("pt", "PortugueseAnalyzer")),
    Language("ro", "Romanian", "Latn", "ro_RO", "ron_Latn", _lucene("ro", "RomanianAnalyzer"),
             "Lucene analyzer; Anserini has no -language ro"),
    Language("ru", "Russian", "Cyrl", "ru_RU", "rus_Cyrl", _lucene("ru", "RussianAnalyzer")),
    Language("sv", "Swedish", "Latn", "sv_SE", "swe_Latn", _lucene("sv", "SwedishAnalyzer")),
    Language("sw", "Swahili", "Latn", "sw_KE", "swh_Latn", _lucene("core", "WhitespaceAnalyzer"),
             "whitespace tokens, as Anserini for Mr. TyDi"),
    Language("ta", "Tamil", "Taml", "ta_IN", "tam_Taml", _lucene("ta", "TamilAnalyzer"),
             "Lucene's: Indic normalisation, stopwords, Snowball Tamil stemmer; Anserini has no -language ta"),
    Language("te", "Telugu", "Telu", "te_IN", "tel_Telu", _lucene("te", "TeluguAnalyzer")),
    Language("th", "Thai", "Thai", "th_TH", "tha_Thai", _lucene("th", "ThaiAnalyzer")),
    Language("tr", "Turkish", "Latn", "tr_TR", "tur_Latn", _lucene("tr", "TurkishAnalyzer")),
    Language("uk", "Ukrainian", "Cyrl", "uk_UA", "ukr_Cyrl", _lucene("uk", "UkrainianMorfologikAnalyzer")),
    Language("vi", "Vietnamese", "Latn", "vi_VN", "vie_Latn", _lucene("standard", "StandardAnalyzer"),
             "Lucene has no Vietnamese analyzer: standard tokenizer, lower-casing, no stemming"),
    Language("zh", "Chinese", "Hans", "zh_CN", "zho_Hans", _lucene("cjk", "CJKAnalyzer"), "CJK bigrams, as Anserini"),
]

LANGUAGES: dict[str, Language] = {row.iso: row for row in _ROWS}

# Codes used by data sets for a language the table knows under its ISO code.
ALIASES: dict[str, str] = {
    "dt": "nl",  # mMARCO (and ir_datasets) call Dutch "dt"
    "zh-cn": "zh",
    "nb": "no",
}


def language(code: str) -> Language:
    """The table row for ``code`` (ISO 639-1 or a known alias such as mMARCO's ``dt``)."""
    key = code.strip().lower()
    iso = ALIASES.get(key, key)
    if iso not in LANGUAGES:
        raise UnsupportedLanguage(
            f"unsupported language {code!r}; known: {', '.join(sorted(LANGUAGES))} "
            f"(aliases: {', '.join(f'{a}={b}' for a, b in sorted(ALIASES.items()))})"
        )
    return LANGUAGES[iso]


def xmod_code(code: str) -> str:
    """XMOD adapter name for a language, e.g. ``fr`` → ``fr_XX``."""
    row = language(code)
    if row.xmod is None:
        raise UnsupportedLanguage(f"language {code!r} has no XMOD adapter")
    return row.xmod


def nllb_code(code: str) -> str:
    """NLLB ``src_lang`` code for a language, e.g. ``hi`` → ``hin_Deva``."""
    row = language(code)
    if row.nllb is None:
        raise UnsupportedLanguage(f"language {code!r} has no NLLB code")
    return row.nllb


def lucene_analyzer(code: str) -> str:
    """Fully qualified Lucene analyzer class used to index and search text in ``code``."""
    return language(code).lucene_analyzer
