"""Paper-table reproduction: published tables (`harness.report.published`) compared with what the
harness measured.

``diff`` turns a table into cells of published vs measured, ``render`` prints them, ``summary``
counts them per table, ``add_parser``/``run`` are the ``harness reproduce`` command.

Every cell that names a harness system must be producible by its suite: the suite exists, has the
row's system label, the column's (dataset, lang) units and its measure (`problems` lists what is
not; a test holds the shipped tables to it).

A statistic cell (a collection's queries, documents, judgements) is compared with the counts the
loader recorded when the suite indexed that unit: the ``dataset`` description in the index record of
a system whose evaluation of the unit is current (`harness.data.base.statistic`).

Statuses of a cell: ``ok`` / ``outside`` (measured vs published, within tolerance or not),
``not run`` (an eval file or measure is missing, or the suite cannot produce the cell: the detail
says which), ``stale`` (the eval file was made with other suite
settings or code than now: shown, not compared), ``no system`` (``harness_system`` is null),
``published only`` (a quantity column), and ``not published`` (the paper prints no value for a
row the harness can run; the measured value is still shown).
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import jobs, layout
from harness.data.base import DataError, statistic
from harness.evaluate import means, parse_measures, read_per_query
from harness.report.published import (
    MeasureColumn,
    PublishedTable,
    PublishedTableError,
    QuantityColumn,
    Row,
    StatisticColumn,
    load_tables,
)
from harness.spec import Suite, SuiteError, Unit, load_suite

OK, OUTSIDE, NOT_RUN, STALE, NO_SYSTEM, PUBLISHED_ONLY, NOT_PUBLISHED = (
    "ok", "outside", "not run", "stale", "no system", "published only", "not published")
CANNOT = "cannot be run: "
"""How the detail of a ``not run`` cell starts when no run of its suite can produce it (`cell_problem`)."""
MARKS = {OK: "✓", OUTSIDE: "✗", NOT_RUN: "·", STALE: "!", NO_SYSTEM: "–", PUBLISHED_ONLY: "=", NOT_PUBLISHED: "?"}


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


def _units_problem(name: str, units: list[tuple[str, str]], suites: Suites) -> str | None:
    """Why suite ``name`` cannot hold ``units`` (it is missing, or lacks some), or None."""
    suite = _suite(name, suites)
    if isinstance(suite, str):
        return suite
    have = {(u.dataset, u.lang) for u in suite.units()}
    missing = [f"{d}/{lang}" for d, lang in units if (d, lang) not in have]
    return f"suite {name!r} has no {', '.join(missing)}" if missing else None


def statistic_problem(table: PublishedTable, row: Row, column: StatisticColumn, suites: Suites) -> str | None:
    """Why no run of the suite can ever count this statistic cell (no suite, or no such unit), or None."""
    dataset, lang = column.unit(row)
    return _units_problem(column.suite or table.suite, [(dataset, lang or "")], suites)


def column_problem(table: PublishedTable, column: MeasureColumn, suites: Suites) -> str | None:
    """Why the column's suite cannot produce it (the suite is missing or lacks one of its units or
    its measure), or None."""
    name = column.suite or table.suite
    if problem := _units_problem(name, column.units(), suites):
        return problem
    suite = _suite(name, suites)
    assert not isinstance(suite, str)
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
        for key, column in table.columns.items():
            if (isinstance(column, StatisticColumn) and row.values[key] is not None
                    and (problem := statistic_problem(table, row, column, suites))):
                found.append(f"row {row.system!r}, column {key!r}: {problem}")
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


def _statistic(table: PublishedTable, row: Row, column: StatisticColumn, suites: Suites) -> tuple[float | None, str, bool]:
    """The loader's count for the cell's unit, from the index record of the first system label whose
    evaluation of the unit is current; or (None, why not); and whether only stale ones exist."""
    name = column.suite or table.suite
    suite = _suite(name, suites)
    assert isinstance(suite, Suite), "diff checks statistic_problem first"
    dataset, lang = column.unit(row)
    unit = suite.unit(dataset, lang or "")
    stale, lacking = [], []
    for label in suite.systems:
        if not layout.path("evaluate", name, label, unit).is_file():
            continue
        pointer = layout.path("index", name, label, unit)
        if not jobs.current(suite, label, unit):
            stale.append(str(pointer))
            continue
        if not pointer.is_file():
            lacking.append(f"no {pointer}")
            continue
        value = statistic(layout.pointed(pointer).data.get("dataset") or {}, column.statistic)
        if value is not None:
            return value, "", False
        lacking.append(f"no count of {column.statistic} in {pointer}")
    if lacking:
        return None, "; ".join(lacking), False
    if stale:
        return None, f"made with other settings or code than now: {', '.join(stale)}", True
    return None, f"no current evaluation of {dataset}/{lang} in suite {name!r}: its index records hold the counts", False


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
            if isinstance(column, StatisticColumn):
                base["harness_system"] = "/".join(part for part in column.unit(row) if part)
                problem = statistic_problem(table, row, column, suites)
                measured, why, stale = ((None, CANNOT + problem, False) if problem is not None
                                        else _statistic(table, row, column, suites))
                cells.append(_compared(base, measured, why, stale, table.tolerance_for(row, key)))
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
            cells.append(_compared(base, measured, why, stale, table.tolerance_for(row, key)))
    return cells


def _compared(base: dict[str, Any], measured: float | None, why: str, stale: bool, tolerance: float) -> Cell:
    """The cell of a published number (``base``) and what was measured: its status by the tolerance."""
    published = base["published"]
    if published is None:
        return Cell(**base, measured=measured, delta=None, tolerance=None, status=NOT_PUBLISHED, detail=why)
    if stale:
        return Cell(**base, measured=measured, delta=None, tolerance=tolerance, status=STALE, detail=why)
    if measured is None:
        return Cell(**base, measured=None, delta=None, tolerance=tolerance, status=NOT_RUN, detail=why)
    delta = measured - float(published)
    inside = abs(delta) <= tolerance * (1 + 1e-9) + 1e-12
    return Cell(**base, measured=measured, delta=delta, tolerance=tolerance, status=OK if inside else OUTSIDE)


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
            extra = 2 if isinstance(c.measured, float) else 0  # counts are shown as they are
            lines.append(
                f"| {row} [{c.harness_system}] | {name} | {_fmt(c.published, c.precision)} "
                f"| {_fmt(c.measured, c.precision + extra)} | {_fmt(c.delta, c.precision + extra, signed=True)} "
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
