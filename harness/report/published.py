"""Published paper tables: the YAML schema (pydantic) and loading.

Each published results table is one YAML file in ``suites/published/`` (``./suites/published`` of
the working directory first, then the repository's, as for suites); `load_tables` reads them all,
`load_table` one. `harness.report.reproduce` compares them with what the harness measured.

Schema (pydantic, strict: an unknown key is an error that names the file)::

    id: colbert-xm-table1            # must equal the file name; unique
    paper: {title: "...", seed: 000_cae5adedbc3ae71a.txt, url: "..."}   # seed and/or url
    table: "Table 1"
    caption: "..."                   # as printed
    provenance: "..."                # where exactly the numbers were copied from
    reported_precision: 1            # decimals as printed
    scale: 100                       # 100: printed as percentages (18.4); 1: printed as .675
    tolerance: {value: 0.1, reason: "..."}   # optional; default: half a unit of the printed
                                             # precision of each cell (±0.05 at 1 decimal)
    suite: mmarco                    # harness suite whose results reproduce the table
    notes: "..."                     # optional
    columns:                         # key → column, in printed order
      en: {dataset: mmarco, lang: en, measure: RR@10}
    rows:
      - system: "BM25 (Pyserini)"    # as printed
        harness_system: bm25         # system label in the suite (not the registered system name), or null
        note: "..."                  # optional
        values: {en: 18.4}           # every column key; null where the paper prints no value

Extensions beyond a plain measure column:

* ``dataset`` and ``lang`` may be lists: the column is the macro average of the unit means over
  every (dataset, lang) pair, e.g. a paper's "Avg" column (``lang: [en, es, ...]``).
* a measure column may name its own ``suite`` (a table mixing CLEF and NeuCLIR collections).
* ``label`` (header as printed) and ``precision`` (decimals when a column differs from
  ``reported_precision``) are optional on every column.
* published-only columns: ``{quantity: "training time", unit: h, precision: 1}`` instead of
  dataset/lang/measure, for numbers the harness does not measure (energy, parameter counts).
  Their values may also be text as printed (``"12.8M"``, ``"32× V100"``, ``"yes"``).
* ``cell_precision: {column: decimals}`` on a row, for single cells printed with other decimals
  than their column (e.g. ``74.8`` in a column of ``74.80``-style values).
* dataset statistics: ``{statistic: docs, dataset: clef, label: "# D"}`` (one of
  `harness.data.base.STATISTICS`: queries, docs, judgements, relevant, relevant_per_query) for counts
  the paper gives of a collection, compared with the loader's own counts of the suite's unit
  (``dataset`` × the column's ``lang``, else the row's ``lang``: a table with a row per language
  gives each row ``lang: en`` and ``harness_system: null``). Never scaled; a count printed without
  decimals must match exactly (±0.5).
* ``unit_systems: {dataset/lang: label}`` on a row, where the paper's numbers for one collection
  came from other settings than the rest of the row (ColBERT-XM Table 1's English BM25 is k1 0.9 /
  b 0.4, its other languages 0.82 / 0.68): that unit is read from another system label of the
  suite, in its own column and in every average over it.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from harness.data.base import STATISTICS
from harness.evaluate import parse_measures
from harness.paths import repo_root
from harness.spec import LABEL, SuiteError

Number = StrictInt | StrictFloat
Value = StrictInt | StrictFloat | StrictStr | None


class PublishedTableError(SuiteError):
    """A published-table file that is missing, malformed or inconsistent."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Paper(Strict):
    title: str = Field(min_length=1)
    seed: str | None = Field(None, description="file name of the paper's text in shared/seeds/")
    url: str | None = None

    @model_validator(mode="after")
    def _somewhere(self) -> Paper:
        if not (self.seed or self.url):
            raise ValueError("paper needs a seed file or a url")
        return self


class Tolerance(Strict):
    value: float = Field(gt=0, description="± in the printed scale")
    reason: str = Field(min_length=1)


def _labels(value: str | list[str], what: str) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not items:
        raise ValueError(f"{what} list is empty")
    for item in items:
        if not re.match(LABEL, item):
            raise ValueError(f"{what} {item!r} must match {LABEL}")
    if len(set(items)) != len(items):
        raise ValueError(f"{what} list repeats an entry")
    return items


class MeasureColumn(Strict):
    """A number the harness measures: mean of one measure over one or more (dataset, lang) units."""

    dataset: str | list[str]
    lang: str | list[str] = Field(description="language key in the suite ('all' for unsplit), or a list")
    measure: str
    suite: str | None = Field(None, pattern=LABEL, description="overrides the table's suite")
    label: str | None = None
    precision: int | None = Field(None, ge=0)

    @field_validator("dataset")
    @classmethod
    def _datasets(cls, v: str | list[str]) -> str | list[str]:
        _labels(v, "dataset")
        return v

    @field_validator("lang")
    @classmethod
    def _langs(cls, v: str | list[str]) -> str | list[str]:
        _labels(v, "lang")
        return v

    @field_validator("measure")
    @classmethod
    def _measure(cls, v: str) -> str:
        parse_measures([v])
        return v

    def units(self) -> list[tuple[str, str]]:
        """(dataset, lang) pairs averaged into this column."""
        return list(itertools.product(_labels(self.dataset, "dataset"), _labels(self.lang, "lang")))


class QuantityColumn(Strict):
    """A number (or text) only the paper reports, e.g. training energy: shown, never compared."""

    quantity: str = Field(min_length=1)
    unit: str | None = None
    label: str | None = None
    precision: int | None = Field(None, ge=0)


class StatisticColumn(Strict):
    """A count of a collection (queries, documents, judgements, ...) that the paper states and the
    harness's loader counts too: compared with what the suite's index records describe."""

    statistic: str
    dataset: str = Field(pattern=LABEL)
    lang: str | None = Field(None, pattern=LABEL, description="language key in the suite; else the row's lang")
    suite: str | None = Field(None, pattern=LABEL, description="overrides the table's suite")
    label: str | None = None
    precision: int | None = Field(None, ge=0)

    @field_validator("statistic")
    @classmethod
    def _statistic(cls, v: str) -> str:
        if v not in STATISTICS:
            raise ValueError(f"unknown statistic {v!r}; known: {', '.join(STATISTICS)}")
        return v

    def unit(self, row: Row) -> tuple[str, str | None]:
        """The (dataset, lang) the cell of ``row`` describes (lang None: neither names one)."""
        return self.dataset, self.lang or row.lang


def _column_kind(value: Any) -> str:
    for key, kind in (("quantity", QuantityColumn), ("statistic", StatisticColumn)):
        if key in value if isinstance(value, dict) else isinstance(value, kind):
            return key
    return "measure"


Column = Annotated[
    Annotated[MeasureColumn, Tag("measure")] | Annotated[QuantityColumn, Tag("quantity")]
    | Annotated[StatisticColumn, Tag("statistic")],
    Discriminator(_column_kind),
]


class Row(Strict):
    system: str = Field(min_length=1, description="as printed")
    harness_system: str | None = Field(pattern=LABEL, description="system label in the suite, or null")
    lang: str | None = Field(None, pattern=LABEL, description="language key in the suite that the row's "
                                                              "statistic cells describe (a row per language)")
    note: str | None = None
    values: dict[str, Value]
    cell_precision: dict[str, Annotated[int, Field(ge=0)]] = Field(default_factory=dict)
    unit_systems: dict[str, Annotated[str, Field(pattern=LABEL)]] = Field(
        default_factory=dict, description="'dataset/lang' → system label measured for that unit instead of "
                                          "harness_system (a row whose paper numbers mix settings)")

    def system_for(self, dataset: str, lang: str) -> str | None:
        """The system label whose results stand for this row on (dataset, lang)."""
        return self.unit_systems.get(f"{dataset}/{lang}", self.harness_system)


class PublishedTable(Strict):
    id: str = Field(pattern=LABEL)
    paper: Paper
    table: str = Field(min_length=1)
    caption: str
    provenance: str = Field(min_length=1)
    reported_precision: int = Field(ge=0)
    scale: Literal[1, 100]
    tolerance: Tolerance | None = None
    suite: str = Field(pattern=LABEL)
    notes: str | None = None
    columns: dict[str, Column] = Field(min_length=1)
    rows: list[Row] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> PublishedTable:
        keys = set(self.columns)
        systems = [row.system for row in self.rows]
        if len(set(systems)) != len(systems):
            raise ValueError(f"row systems repeat: {sorted({s for s in systems if systems.count(s) > 1})}")
        for row in self.rows:
            missing, extra = keys - set(row.values), set(row.values) - keys
            if missing or extra:
                raise ValueError(f"row {row.system!r}: values must name every column exactly once "
                                 f"(missing {sorted(missing)}, unknown {sorted(extra)})")
            if set(row.cell_precision) - keys:
                raise ValueError(f"row {row.system!r}: cell_precision names unknown columns "
                                 f"{sorted(set(row.cell_precision) - keys)}")
            if row.unit_systems and row.harness_system is None:
                raise ValueError(f"row {row.system!r}: unit_systems needs a harness_system for the other units")
            units = {f"{d}/{lang}" for c in self.columns.values() if isinstance(c, MeasureColumn)
                     for d, lang in c.units()}
            if set(row.unit_systems) - units:
                raise ValueError(f"row {row.system!r}: unit_systems names units no column measures "
                                 f"{sorted(set(row.unit_systems) - units)} (keys are 'dataset/lang')")
            for key, value in row.values.items():
                column = self.columns[key]
                if isinstance(value, str) and isinstance(column, (MeasureColumn, StatisticColumn)):
                    raise ValueError(  # noqa: TRY004 (pydantic reports ValueErrors only)
                        f"row {row.system!r}, column {key!r}: a {'measure' if isinstance(column, MeasureColumn) else 'statistic'} "
                        f"column takes a number or null, not {value!r}")
                if isinstance(column, StatisticColumn) and value is not None and column.unit(row)[1] is None:
                    raise ValueError(f"row {row.system!r}, column {key!r}: a statistic needs a lang, on the column "
                                     f"or on the row")
        return self

    def precision(self, row: Row, column: str) -> int:
        """Decimals the paper printed for one cell."""
        if column in row.cell_precision:
            return row.cell_precision[column]
        own = self.columns[column].precision
        return self.reported_precision if own is None else own

    def tolerance_for(self, row: Row, column: str) -> float:
        """The explicit tolerance, else half a unit of the cell's printed precision."""
        if self.tolerance is not None:
            return self.tolerance.value
        return 0.5 * 10 ** -self.precision(row, column)


# --- loading ---------------------------------------------------------------------------------


def published_dirs() -> list[Path]:
    """Where tables are looked up: ``./suites/published`` first, then the repository's."""
    return list(dict.fromkeys([Path("suites/published").resolve(), repo_root() / "suites" / "published"]))


def load_table(path: Path) -> PublishedTable:
    """One table file, validated; every error names the file."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise PublishedTableError(f"{path}: cannot read ({e})") from None
    except yaml.YAMLError as e:
        raise PublishedTableError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(raw, dict):
        raise PublishedTableError(f"{path}: expected a mapping of table fields, got {type(raw).__name__}")
    try:
        table = PublishedTable(**raw)
    except ValidationError as e:
        raise PublishedTableError(f"{path}: {e}") from None
    if table.id != path.stem:
        raise PublishedTableError(f"{path}: id {table.id!r} must match the file name {path.stem!r}")
    return table


def load_tables(folders: list[Path] | None = None) -> dict[str, PublishedTable]:
    """Every ``*.yaml`` in the folders (default `published_dirs`), by id, sorted. An id in an
    earlier folder hides the same id in a later one; within one folder ids must be unique."""
    tables: dict[str, PublishedTable] = {}
    for folder in folders if folders is not None else published_dirs():
        seen: dict[str, Path] = {}
        for path in sorted(Path(folder).glob("*.yaml")):
            table = load_table(path)
            if table.id in seen:
                raise PublishedTableError(f"{path}: id {table.id!r} is also used by {seen[table.id]}")
            seen[table.id] = path
            tables.setdefault(table.id, table)
    return dict(sorted(tables.items()))
