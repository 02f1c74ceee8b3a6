"""A suite's tables — effectiveness, significance, equivalence, latency, carbon — from its published results."""

from __future__ import annotations

import json
from pathlib import Path

from harness import jobs, layout
from harness.evaluate import read_per_query
from harness.report import ReportError, significance
from harness.report import cost as cost_report
from harness.report.tables import Block, column_labels, effectiveness, write_tables
from harness.spec import Suite


def write_suite_tables(suite: Suite) -> list[Path]:
    """Write every table of ``suite`` (Markdown, CSV, LaTeX) into its tables folder; the files written.
    Results made with other settings or code than the suite's now are a `ReportError`."""
    if stale := jobs.stale_cells(suite):
        raise ReportError(jobs.describe_stale(suite, stale))
    out = layout.tables_dir(suite.name)
    cells = {(label, unit): read_per_query(layout.per_query_file(suite.name, label, unit))
             for label in suite.systems for unit in suite.units()}
    blocks = [Block(measure, frame) for measure, frame in effectiveness(cells, suite.measures).items()]
    labels = column_labels(suite.units())
    by_collection = {(label, labels[unit]): values for (label, unit), values in cells.items()}
    comparisons = significance.run_comparisons(by_collection, suite.statistics, suite.measures)
    if "t-test" in suite.statistics.tests:
        significance.mark_effectiveness(blocks, comparisons, suite.statistics.baseline)
    written = write_tables(blocks, out, "effectiveness")
    if comparisons:
        written += write_tables([significance.comparisons_block(comparisons)], out, "significance")
    if any(c.test == "tost" for c in comparisons):
        written += write_tables(significance.equivalence_blocks(comparisons, list(suite.systems),
                                                                suite.statistics.margin), out, "equivalence")
    if suite.cost is not None:
        costs = {(label, labels[unit]): json.loads(layout.path("cost", suite.name, label, unit).read_text())
                 for label in suite.systems for unit in suite.units()}
        written += write_tables([cost_report.latency_block(costs)], out, "latency")
        written += write_tables([cost_report.carbon_block(costs, suite.cost.tdp_watts)], out, "carbon")
    return written
