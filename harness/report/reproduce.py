"""Paper-table reproduction: published numbers kept as data, compared with what the harness measured.

Each published results table is one YAML file in ``suites/published/`` (``./suites/published`` of
the working directory first, then the repository's, as for suites). ``diff`` turns a table into
cells of published vs measured, ``render`` prints them, ``add_parser``/``run`` are the
``harness reproduce`` command.

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
* ``unit_systems: {dataset/lang: label}`` on a row, where the paper's numbers for one collection
  came from other settings than the rest of the row (ColBERT-XM Table 1's English BM25 is k1 0.9 /
  b 0.4, its other languages 0.82 / 0.68): that unit is read from another system label of the
  suite, in its own column and in every average over it.

Every cell that names a harness system must be producible by its suite: the suite exists, has the
row's system label, the column's (dataset, lang) units and its measure (`problems` lists what is
not; a test holds the shipped tables to it).

Statuses of a cell: ``ok`` / ``outside`` (measured vs published, within tolerance or not),
``not run`` (an eval file or measure is missing, or the suite cannot produce the cell: the detail
says which), ``stale`` (the eval file was made with other suite
settings or code than now: shown, not compared), ``no system`` (``harness_system`` is null),
``published only`` (a quantity column), and ``not published`` (the paper prints no value for a
row the harness can run; the measured value is still shown).
"""

from __future__ import annotations

import argparse
import itertools
import math
import re
import sys
from dataclasses import dataclass
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

from harness import jobs, layout
from harness.data.base import DataError
from harness.evaluate import means, parse_measures, read_per_query
from harness.paths import repo_root
from harness.spec import LABEL, Suite, SuiteError, Unit, load_suite

OK, OUTSIDE, NOT_RUN, STALE, NO_SYSTEM, PUBLISHED_ONLY, NOT_PUBLISHED = (
    "ok", "outside", "not run", "stale", "no system", "published only", "not published")
CANNOT = "cannot be run: "
"""How the detail of a ``not run`` cell starts when no run of its suite can produce it (`cell_problem`)."""
MARKS = {OK: "✓", OUTSIDE: "✗", NOT_RUN: "·", STALE: "!", NO_SYSTEM: "–", PUBLISHED_ONLY: "=", NOT_PUBLISHED: "?"}

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


def _column_kind(value: Any) -> str:
    has_quantity = "quantity" in value if isinstance(value, dict) else isinstance(value, QuantityColumn)
    return "quantity" if has_quantity else "measure"


Column = Annotated[
    Annotated[MeasureColumn, Tag("measure")] | Annotated[QuantityColumn, Tag("quantity")],
    Discriminator(_column_kind),
]


class Row(Strict):
    system: str = Field(min_length=1, description="as printed")
    harness_system: str | None = Field(pattern=LABEL, description="system label in the suite, or null")
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
                if isinstance(value, str) and isinstance(self.columns[key], MeasureColumn):
                    raise ValueError(  # noqa: TRY004 (pydantic reports ValueErrors only)
                        f"row {row.system!r}, column {key!r}: a measure column takes a number or null, not {value!r}")
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


# --- comparison ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One published number next to what the harness measured (both in the printed scale)."""

    row: str
    column: str
    published: float | int | str | None
    measured: float | None
    delta: float | None
    tolerance: float | None
    status: str
    precision: int
    harness_system: str | None = None
    detail: str = ""


Suites = dict[str, "Suite | str"]
"""Suites by name, each loaded once (without the planning check), or why it could not be."""


def _suite(name: str, suites: Suites) -> Suite | str:
    if name not in suites:
        try:
            suites[name] = load_suite(name, check=False)
        except SuiteError as e:
            suites[name] = (f"no suite {name!r} (no suites/{name}.yaml)" if "no suite file" in str(e)
                            else f"suite {name!r}: {e}")
    return suites[name]


def _canonical(measure: str) -> str:
    return str(parse_measures([measure])[0])


def column_problem(table: PublishedTable, column: MeasureColumn, suites: Suites) -> str | None:
    """Why the column's suite cannot produce it (the suite is missing or lacks one of its units or
    its measure), or None."""
    name = column.suite or table.suite
    suite = _suite(name, suites)
    if isinstance(suite, str):
        return suite
    have = {(u.dataset, u.lang) for u in suite.units()}
    missing = [f"{d}/{lang}" for d, lang in column.units() if (d, lang) not in have]
    if missing:
        return f"suite {name!r} has no {', '.join(missing)}"
    if _canonical(column.measure) not in {_canonical(m) for m in suite.measures}:
        return f"suite {name!r} does not measure {column.measure} (it measures {', '.join(suite.measures)})"
    return None


def cell_problem(table: PublishedTable, row: Row, column: MeasureColumn, suites: Suites) -> str | None:
    """Why no run of the suite can ever measure this cell of a row with a harness system, or None."""
    problem = column_problem(table, column, suites)
    if problem is not None:
        return problem
    name = column.suite or table.suite
    suite = _suite(name, suites)
    assert not isinstance(suite, str)
    labels = sorted({row.system_for(d, lang) for d, lang in column.units()} - set(suite.systems))
    if labels:
        return f"suite {name!r} has no system label {', '.join(map(repr, labels))} (it has {', '.join(suite.systems)})"
    return None


def problems(table: PublishedTable, suites: Suites | None = None) -> list[str]:
    """Every reason some cell of ``table`` can never be measured, whatever runs: a measure column
    whose suite is missing or does not produce its units or measure, and a row whose
    ``harness_system`` (or ``unit_systems`` label) is not a system label of a column's suite.
    Empty when each cell naming a harness system can be reproduced by running its suite."""
    suites = {} if suites is None else suites
    found: list[str] = []
    for key, column in table.columns.items():
        if isinstance(column, MeasureColumn) and (problem := column_problem(table, column, suites)):
            found.append(f"column {key!r}: {problem}")
    for row in table.rows:
        if row.harness_system is None:
            continue
        for key, column in table.columns.items():
            if isinstance(column, MeasureColumn) and column_problem(table, column, suites) is None:
                problem = cell_problem(table, row, column, suites)
                if problem and f"row {row.system!r}: {problem}" not in found:
                    found.append(f"row {row.system!r}: {problem}")
    return found


def _stale(suite: Suite, system: str, dataset: str, lang: str) -> bool:
    """Whether an existing eval file was made with other settings or code than the suite's now."""
    return not jobs.current(suite, system, suite.unit(dataset, lang))


def _measure(table: PublishedTable, column: MeasureColumn, labels: list[str], suites: Suites,
             cache: dict[Path, tuple[dict[str, float], bool]]) -> tuple[float | None, str, bool]:
    """Macro average of the column's unit means × scale (unit i read from system label ``labels[i]``),
    or (None, why not); and whether an eval file it reads is stale. ``cache`` keeps each eval file's
    means and staleness, read once."""
    name = column.suite or table.suite
    suite = _suite(name, suites)
    assert isinstance(suite, Suite), "diff checks cell_problem first"
    measure = _canonical(column.measure)
    values, stale = [], []
    for (dataset, lang), system in zip(column.units(), labels):
        unit = Unit(dataset, lang, "")
        path = layout.path("evaluate", name, system, unit)
        if path not in cache:
            if not path.is_file():
                return None, f"no {path}", False
            cache[path] = (means(read_per_query(layout.per_query_file(name, system, unit))),
                           _stale(suite, system, dataset, lang))
        found, is_stale = cache[path]
        if measure not in found:
            return None, f"{path} has no {measure}", False
        values.append(found[measure])
        if is_stale:
            stale.append(str(path))
    why = f"made with other settings or code than now: {', '.join(stale)}" if stale else ""
    return sum(values) / len(values) * table.scale, why, bool(stale)


def _shown_system(row: Row, column: MeasureColumn) -> str | None:
    """The system label(s) a cell reads: the row's, or where ``unit_systems`` replaces it for some
    of the column's units, those (``bm25-k1-0.9`` alone; ``bm25, mmarco/en: bm25-k1-0.9`` in an average)."""
    other = [(f"{d}/{lang}", row.system_for(d, lang)) for d, lang in column.units()
             if row.system_for(d, lang) != row.harness_system]
    if not other:
        return row.harness_system
    if len(other) == len(column.units()) and len({s for _, s in other}) == 1:
        return other[0][1]
    return f"{row.harness_system}, " + ", ".join(f"{unit}: {system}" for unit, system in other)


def diff(table: PublishedTable) -> list[Cell]:
    """Every cell of the table, row by row, with its status (see the module docstring). A cell its
    suite cannot produce (`cell_problem`) is ``not run`` with the reason as its detail."""
    cells = []
    cache: dict[Path, tuple[dict[str, float], bool]] = {}
    suites: Suites = {}
    for row in table.rows:
        for key, column in table.columns.items():
            published = row.values[key]
            precision = table.precision(row, key)
            base = {"row": row.system, "column": key, "published": published, "precision": precision,
                    "harness_system": row.harness_system}
            if isinstance(column, QuantityColumn):
                cells.append(Cell(**base, measured=None, delta=None, tolerance=None, status=PUBLISHED_ONLY))
                continue
            if row.harness_system is None:
                cells.append(Cell(**base, measured=None, delta=None, tolerance=None, status=NO_SYSTEM))
                continue
            base["harness_system"] = _shown_system(row, column)
            problem = cell_problem(table, row, column, suites)
            if problem is not None:
                measured, why, stale = None, CANNOT + problem, False
            else:
                labels = [row.system_for(d, lang) or "" for d, lang in column.units()]
                measured, why, stale = _measure(table, column, labels, suites, cache)
            tolerance = table.tolerance_for(row, key)
            if published is None:
                cells.append(Cell(**base, measured=measured, delta=None, tolerance=None,
                                  status=NOT_PUBLISHED, detail=why))
            elif stale:
                cells.append(Cell(**base, measured=measured, delta=None, tolerance=tolerance, status=STALE, detail=why))
            elif measured is None:
                cells.append(Cell(**base, measured=None, delta=None, tolerance=tolerance,
                                  status=NOT_RUN, detail=why))
            else:
                delta = measured - float(published)
                inside = abs(delta) <= tolerance * (1 + 1e-9) + 1e-12
                cells.append(Cell(**base, measured=measured, delta=delta, tolerance=tolerance,
                                  status=OK if inside else OUTSIDE))
    return cells


# --- rendering -------------------------------------------------------------------------------


def _fmt(value: Any, precision: int, signed: bool = False) -> str:
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return f"{value:+.{precision}f}" if signed else f"{value:.{precision}f}"


def _tolerance_text(table: PublishedTable) -> str:
    if table.tolerance is not None:
        return f"±{table.tolerance.value:g} ({table.tolerance.reason})"
    p = table.reported_precision
    return f"half a unit of the printed precision (±{0.5 * 10 ** -p:g} at {p} decimal{'s' if p != 1 else ''})"


def render(table: PublishedTable, cells: list[Cell]) -> str:
    """Markdown: a header, one line per cell of every row the harness can run (published,
    measured, delta, tolerance, status mark), the rows it cannot, and a status count."""
    source = table.paper.seed or table.paper.url
    lines = [
        f"## {table.id} — {table.paper.title}, {table.table}",
        "",
        f"{table.caption}",
        "",
        f"source: {source} · suite: {table.suite} · scale: ×{table.scale} · tolerance: {_tolerance_text(table)}",
        "",
        "| system | column | published | measured | Δ | ± | status |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    by_row: dict[str, list[Cell]] = {}
    for cell in cells:
        by_row.setdefault(cell.row, []).append(cell)
    no_system, published_only = [], []
    for row, row_cells in by_row.items():
        if all(c.status in (NO_SYSTEM, PUBLISHED_ONLY) for c in row_cells):
            (no_system if row_cells[0].harness_system is None else published_only).append(row)
            continue
        for c in row_cells:
            column = table.columns[c.column]
            name = c.column if column.label is None else f"{c.column} ({column.label})"
            extra = 2 if c.measured is not None else 0
            lines.append(
                f"| {row} [{c.harness_system}] | {name} | {_fmt(c.published, c.precision)} "
                f"| {_fmt(c.measured, c.precision + extra)} | {_fmt(c.delta, c.precision + 2, signed=True)} "
                f"| {_fmt(c.tolerance, c.precision + 1) if c.tolerance is not None else ''} "
                f"| {MARKS[c.status]} {c.status}{f' ({c.detail})' if c.detail and c.status != NOT_RUN else ''} |")
    if len(lines) == 8:
        lines.append("| (nothing in this table is measured by the harness) | | | | | | |")
    if no_system:
        lines += ["", f"Not compared, no harness system: {', '.join(no_system)}."]
    if published_only:
        lines += ["", f"Not compared, published-only columns: {', '.join(published_only)}."]
    counts = {status: sum(c.status == status for c in cells) for status in MARKS}
    lines += ["", " · ".join(f"{MARKS[s]} {s}: {n}" for s, n in counts.items() if n)]
    missing = sorted({c.detail for c in cells if c.status == NOT_RUN and c.detail})
    if missing:
        shown = missing[:5]
        more = f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""
        lines += ["", "Not run: " + "; ".join(shown) + more]
    return "\n".join(lines) + "\n"


# --- command line ----------------------------------------------------------------------------


def missing(cells: list[Cell]) -> list[Cell]:
    """Cells with a published number and a harness system that have no measurement."""
    return [c for c in cells if c.status == NOT_RUN]


def summary(results: dict[str, tuple[PublishedTable, list[Cell]]]) -> str:
    """Markdown: per table, how many cells reproduced (inside tolerance), fell outside, are stale
    and are not run, and of those how many its suites cannot produce whatever runs."""
    lines = ["| table | suite | reproduced | outside | stale | not run | of which no run can produce |",
             "|---|---|---:|---:|---:|---:|---:|"]
    totals = [0, 0, 0, 0, 0]
    for table_id, (table, cells) in results.items():
        counts = [sum(c.status == s for c in cells) for s in (OK, OUTSIDE, STALE, NOT_RUN)]
        counts.append(sum(c.detail.startswith(CANNOT) for c in missing(cells)))
        totals = [a + b for a, b in zip(totals, counts)]
        lines.append(f"| {table_id} | {table.suite} | " + " | ".join(map(str, counts)) + " |")
    lines.append("| all | | " + " | ".join(map(str, totals)) + " |")
    return "\n".join(lines) + "\n"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``reproduce [TABLE_ID] [--list] [--all] [--partial]``; its ``fn`` is `run`, which returns the exit code."""
    p = subparsers.add_parser("reproduce", help="compare a published paper table with the harness's results",
                              description="Compare a published table (suites/published/<id>.yaml) with "
                                          "measured results. Exit 1 if a measured cell is outside tolerance "
                                          "or stale, or a cell the harness should measure is not run "
                                          "(unless --partial).")
    p.add_argument("table_id", nargs="?", help="published table id (see --list)")
    p.add_argument("--list", action="store_true", help="list the published tables")
    p.add_argument("--all", action="store_true",
                   help="every table: per table, cells reproduced / outside tolerance / stale / not run")
    p.add_argument("--partial", action="store_true",
                   help="accept cells not run (a partial view): exit 0 unless a measured cell is outside or stale")
    p.set_defaults(fn=run)
    return p


def _verdict(results: dict[str, tuple[PublishedTable, list[Cell]]], partial: bool) -> int:
    cells = [c for _, table_cells in results.values() for c in table_cells]
    if any(c.status in (OUTSIDE, STALE) for c in cells):
        return 1
    absent = missing(cells)
    if absent and not partial:
        unrunnable = sum(c.detail.startswith(CANNOT) for c in absent)
        why = f", {unrunnable} of them in no suite's reach (see their details)" if unrunnable else ""
        print(f"harness reproduce: {len(absent)} cell{'s' if len(absent) != 1 else ''} not run{why}; "
              "run their suites (snakemake --cores all suites/<name>), or pass --partial to accept a partial "
              "view", file=sys.stderr)
        return 1
    return 0


def run(args: argparse.Namespace) -> int:
    """0: listed, or every cell the harness should measure measured inside tolerance (with
    ``--partial``: every measured one); 1: a cell outside, stale, or (without ``--partial``) not
    run; 2: an error."""
    try:
        tables = load_tables()
    except PublishedTableError as e:
        print(f"harness reproduce: error: {e}", file=sys.stderr)
        return 2
    if args.all:
        if args.table_id is not None:
            print("harness reproduce: error: --all takes no table id", file=sys.stderr)
            return 2
        try:
            results = {t.id: (t, diff(t)) for t in tables.values()}
        except DataError as e:
            print(f"harness reproduce: error: {e}", file=sys.stderr)
            return 2
        print(summary(results), end="")
        return _verdict(results, args.partial)
    if args.list or args.table_id is None:
        for t in tables.values():
            print(f"{t.id:<26} {t.paper.title} — {t.table}: {t.caption}")
        return 0
    if args.table_id not in tables:
        print(f"harness reproduce: error: unknown table {args.table_id!r}; known: {', '.join(tables)}",
              file=sys.stderr)
        return 2
    table = tables[args.table_id]
    try:
        cells = diff(table)
    except DataError as e:
        print(f"harness reproduce: error: {e}", file=sys.stderr)
        return 2
    print(render(table, cells), end="")
    return _verdict({table.id: (table, cells)}, args.partial)
