"""The system catalogue: one row of data per system name, read without importing any model code.

A row names the class that implements the system (``"module:Class"``), says what it is, what its
jobs need (Snakemake resources), and the param defaults that make it this system rather than
another of its family (a preset is a row, not a class): the checkpoint, pooling, prompts,
truncation; and the pinned hub commit of each default checkpoint (``revisions``; sources in the
README's system table). ``train`` holds defaults of the family's training recipe. Planning a
suite (job resources, code identity) reads rows only; `harness.system.system_class` imports the
one module a row names. In the MTEB style: a model is a metadata record plus a shared loader.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

CPU_JOB = (("mem_mb", 4000),)
DENSE_JOB = (("mem_mb", 16000), ("gpu", 1))
COLBERT_JOB = (("mem_mb", 32000), ("gpu", 1))


@dataclass(frozen=True)
class Entry:
    """One system name. ``target`` is ``"module:Class"``; ``defaults`` override the class's param
    defaults (any can still be set in a suite); ``train`` overrides its recipe's defaults when the
    suite uses the row's recipe; ``job`` holds the Snakemake resources of its train, shard, index
    and retrieve jobs (``gpu: 1`` for systems that want one)."""

    target: str
    description: str
    job: tuple[tuple[str, int], ...] = CPU_JOB
    defaults: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    revisions: dict[str, str] = field(default_factory=dict)
    """Pinned hub commits of the default checkpoints: ``{hub id: commit}``. A param naming one of these
    ids (by default or set to it in a suite) loads that commit unless the suite sets its revision."""

    @property
    def resources(self) -> dict[str, int]:
        return dict(self.job)

    @property
    def module(self) -> str:
        return self.target.partition(":")[0]

    @property
    def class_name(self) -> str:
        return self.target.partition(":")[2]



BM25 = "systems.bm25.system:BM25System"
DENSE = "systems.dense.system:DenseSystem"
NLLB_E5 = "systems.nllb_e5.system:NllbE5System"
COLBERT = "systems.colbert.system:ColbertSystem"
MTD_SYSTEM = "systems.colbert.system:MTDSystem"

ARCTIC_M = {"model": "Snowflake/snowflake-arctic-embed-m-v2.0", "trust_remote_code": True, "pooling": "cls",
            "query_prompt": "query: ", "doc_prompt": ""}
ARCTIC_L = {"model": "Snowflake/snowflake-arctic-embed-l-v2.0", "trust_remote_code": False, "pooling": "cls",
            "query_prompt": "query: ", "doc_prompt": ""}
ARCTIC_M_COMMIT = {"Snowflake/snowflake-arctic-embed-m-v2.0": "f2a7d59d80dfda5b1d14f096f3ce88bb6bf9ebdc"}
ARCTIC_L_COMMIT = {"Snowflake/snowflake-arctic-embed-l-v2.0": "edc2df7b6c25794b340229ca082e7c78782e6374"}
NLLB_E5_COMMITS = {"facebook/nllb-200-distilled-600M": "f8d333a098d19b4fd9a8b18f94170487ad3f821d",
                   "facebook/nllb-200-distilled-1.3B": "7be3e24664b38ce1cac29b8aeed6911aa0cf0576",
                   "intfloat/e5-large-v2": "b322e09026e4ea05f42beadf4d661fb4e101d311"}
MTD = "MTD ColBERT-X{}: XLM-R large late interaction (PLAID-X checkpoint), PLAID index (nbits 1)"

SYSTEMS: dict[str, Entry] = {
    "bm25": Entry(BM25, "BM25 (Pyserini/Lucene), per-language analyzers"),
    "dpr-xm": Entry(DENSE, "DPR-XM (XMOD, 768-d, mean pooling, no prompts, max 128 tokens; each document and query "
                    "through its own language's adapter)", DENSE_JOB,
                    {"model": "antoinelouis/dpr-xm", "pooling": "mean", "query_prompt": "", "doc_prompt": "",
                     "max_length": 128, "normalize": True, "route_languages": True}),
    "arctic-embed-m": Entry(DENSE, "Arctic-Embed 2.0 M (GTE, 768-d, CLS, 'query: ' on queries)", DENSE_JOB, ARCTIC_M,
                            revisions=ARCTIC_M_COMMIT),
    "arctic-embed-m-256": Entry(DENSE, "Arctic-Embed 2.0 M truncated to 256-d (MRL)", DENSE_JOB,
                                {**ARCTIC_M, "dim": 256}, revisions=ARCTIC_M_COMMIT),
    "arctic-embed-l": Entry(DENSE, "Arctic-Embed 2.0 L (XLM-R, 1024-d, CLS, 'query: ' on queries)", DENSE_JOB,
                            ARCTIC_L, revisions=ARCTIC_L_COMMIT),
    "arctic-embed-l-256": Entry(DENSE, "Arctic-Embed 2.0 L truncated to 256-d (MRL)", DENSE_JOB,
                                {**ARCTIC_L, "dim": 256}, revisions=ARCTIC_L_COMMIT),
    "nllb-e5": Entry(NLLB_E5, "NLLB-E5: frozen NLLB encoder → projection → E5-large-v2 with LoRA, mean pooling; each "
                     "text encoded with its own language as NLLB src_lang; trained by MSE distillation from E5",
                     DENSE_JOB, revisions=NLLB_E5_COMMITS),
    "colbert-xm": Entry(COLBERT, "ColBERT-XM: XMOD late interaction, per-language adapters, PLAID index (nbits 2)",
                        COLBERT_JOB, {"model": "antoinelouis/colbert-xm"}, {"recipe": "colbert-xm"}),
    "mtd-colbertx": Entry(MTD_SYSTEM, MTD.format(""), COLBERT_JOB, {"mixing": "mix-passages"},
                          {"recipe": "mtd", "mixing": "mix-passages"}),
    **{f"mtd-colbertx-{mixing}": Entry(MTD_SYSTEM, MTD.format(f" ({mixing})"), COLBERT_JOB, {"mixing": mixing},
                                       {"recipe": "mtd", "mixing": mixing})
       for mixing in ("mix-passages", "mix-entries", "round-robin")},
}
"""Plain system names."""

PREFIXES: dict[str, Entry] = {
    "st": Entry(DENSE, "dense retrieval with any sentence-transformers model (faiss: flat, IVF, HNSW, PQ; int8/int4)",
                DENSE_JOB),
}
"""Prefixes of ``prefix:<model>`` names (``st:<model id or path>``): ``<model>`` becomes ``params.model``."""


def entry(name: str) -> Entry | None:
    """The row of a plain name or a ``prefix:<model>`` name; None when the catalogue has neither."""
    if name in SYSTEMS:
        return SYSTEMS[name]
    prefix, sep, model = name.partition(":")
    return PREFIXES.get(prefix) if sep and model else None


def names() -> list[str]:
    """Every system name, prefixes shown as ``prefix:<model>``."""
    return sorted([*SYSTEMS, *(f"{p}:<model>" for p in PREFIXES)])
