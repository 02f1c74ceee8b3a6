"""Leaderboard across suites: ``results/leaderboard.md`` and a static ``results/leaderboard.html``.

For every suite that has produced its tables: the effectiveness table per measure, a statistical
rank per system (1 + the number of systems significantly better on the suite's first measure,
paired t-test over all its queries, Bonferroni over all pairs — equal ranks are statistically
indistinguishable), per-language bars, and effectiveness against latency and against energy per
query. The HTML is one self-contained file: inline SVG plots and a few lines of JavaScript that
make the tables sortable.
"""

from __future__ import annotations

import html
import io
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from harness import jobs, layout, registry
from harness.evaluate import read_per_query
from harness.files import atomic_write
from harness.measure import JOULES_PER_KWH
from harness.report.tables import AVERAGE, column_labels, effectiveness
from harness.spec import Suite, SuiteError, load_suite
from harness.stats import correct, t_test


@dataclass
class SuiteBoard:
    suite: Suite
    tables: dict[str, pd.DataFrame]
    ranks: dict[str, int]
    latency_ms: dict[str, float] = field(default_factory=dict)
    joules_per_query: dict[str, float] = field(default_factory=dict)
    stale: str = ""
    """Non-empty when some of the suite's eval files were made with other settings or code than now."""

    @property
    def primary(self) -> str:
        return self.suite.measures[0]

    def summary_column(self) -> str:
        frame = self.tables[self.primary]
        return AVERAGE if AVERAGE in frame.columns else frame.columns[0]


def statistical_ranks(pooled: dict[str, dict[str, float]], alpha: float = 0.05) -> dict[str, int]:
    """1 + the number of systems significantly better (two-sided paired t-test, Bonferroni)."""
    systems = list(pooled)
    pairs = list(itertools.combinations(systems, 2))
    if not pairs:
        return {s: 1 for s in systems}
    results = [t_test(pooled[a], pooled[b]) for a, b in pairs]
    adjusted = correct([r.p_value for r in results], "bonferroni")
    better = {s: 0 for s in systems}
    for (a, b), result, p in zip(pairs, results, adjusted, strict=True):
        if p < alpha and result.mean_difference != 0:
            better[b if result.mean_difference > 0 else a] += 1
    return {s: 1 + better[s] for s in systems}


def load_board(suite: Suite) -> SuiteBoard:
    """The leaderboard entry of a suite whose evaluation files exist."""
    labels = column_labels(suite.units())
    cells = {(s, u): read_per_query(layout.per_query_file(suite.name, s, u))
             for s in suite.systems for u in suite.units()}
    pooled = {s: {f"{labels[u]}/{pq.query_id}": pq.value for (t, u), values in cells.items() if t == s
                  for pq in values if pq.measure == suite.measures[0]} for s in suite.systems}
    board = SuiteBoard(suite, effectiveness(cells, suite.measures), statistical_ranks(pooled))
    if stale := jobs.stale_cells(suite):
        board.stale = f"STALE: {jobs.describe_stale(suite, stale)}"
    if suite.cost is not None:
        for system in suite.systems:
            costs = [json.loads(layout.path("cost", suite.name, system, u).read_text()) for u in suite.units()]
            board.latency_ms[system] = sum(c["latency"]["total"]["p50_ms"] for c in costs) / len(costs)
            board.joules_per_query[system] = (sum(c["energy"]["retrieve"]["kwh"] for c in costs) * JOULES_PER_KWH
                                              / sum(c["queries"] for c in costs))
    return board


def finished_suites(results: Path) -> list[str]:
    return sorted(p.parent.parent.name for p in results.glob("*/tables/manifest.json"))


def collect(results: Path) -> list[SuiteBoard]:
    boards = []
    for name in finished_suites(results):
        try:
            boards.append(load_board(load_suite(name, check=False)))
        except (SuiteError, FileNotFoundError, registry.RegistryError) as e:
            raise SuiteError(f"cannot put suite {name!r} on the leaderboard: {e}") from None
    return boards


def _ranked(board: SuiteBoard, measure: str) -> pd.DataFrame:
    frame = board.tables[measure].copy()
    frame.insert(0, "rank", [str(board.ranks[s]) for s in frame.index])
    if board.latency_ms:
        frame["p50 ms"] = [board.latency_ms[s] for s in frame.index]
        frame["J/query"] = [board.joules_per_query[s] for s in frame.index]
    return frame.sort_values(["rank", board.summary_column()], ascending=[True, False], key=lambda c: c.astype(float))


def render_markdown(boards: list[SuiteBoard]) -> str:
    parts = ["# Leaderboard", "",
             ("Rank = 1 + the number of systems significantly better on the suite's first measure "
              "(paired t-test over all queries, Bonferroni); equal ranks are statistically indistinguishable."), ""]
    for board in boards:
        parts += [f"## {board.suite.name}", "", *([f"**{board.stale}**", ""] if board.stale else []),
                  board.suite.description.strip(), ""]
        for measure in board.suite.measures:
            parts += [f"### {measure}", "", _ranked(board, measure).to_markdown(floatfmt=".4f"), ""]
    return "\n".join(parts)


def _svg(figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def plots(board: SuiteBoard) -> list[tuple[str, str]]:
    """(title, inline SVG) for the suite's per-language bars and cost trade-offs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = board.tables[board.primary].drop(columns=[AVERAGE], errors="ignore")
    out = []
    fig, ax = plt.subplots(figsize=(max(5, 0.6 * frame.shape[1] * max(1, len(frame))), 3))
    frame.T.plot.bar(ax=ax, rot=0, width=0.8)
    ax.set_ylabel(board.primary)
    ax.legend(fontsize="small", loc="lower right")
    out.append((f"{board.primary} per collection", _svg(fig)))
    plt.close(fig)
    summary = board.tables[board.primary][board.summary_column()]
    for costs, label in ((board.latency_ms, "latency p50, ms per query"), (board.joules_per_query, "energy, J per query")):
        if not costs:
            continue
        fig, ax = plt.subplots(figsize=(4.5, 3))
        for system, value in summary.items():
            ax.scatter(costs[system], value)
            ax.annotate(system, (costs[system], value), fontsize="small", xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel(label)
        ax.set_ylabel(f"{board.primary} ({board.summary_column()})")
        out.append((f"{board.primary} vs {label}", _svg(fig)))
        plt.close(fig)
    return out


SCRIPT = """
window.harnessErrors = [];
window.addEventListener('error', e => { window.harnessErrors.push(String(e.message)); document.body.dataset.errors = window.harnessErrors.join(' | '); });
function sortTable(table, column, descending) {
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  const key = r => { const t = r.cells[column].dataset.value ?? r.cells[column].textContent; const n = parseFloat(t); return isNaN(n) ? t : n; };
  rows.sort((a, b) => { const x = key(a), y = key(b); const c = x < y ? -1 : x > y ? 1 : 0; return descending ? -c : c; });
  rows.forEach(r => body.appendChild(r));
}
document.addEventListener('DOMContentLoaded', () => {
  document.querySelectorAll('table.sortable').forEach(table => {
    Array.from(table.tHead.rows[0].cells).forEach((th, column) => {
      th.addEventListener('click', () => { const d = th.dataset.sorted !== 'desc'; sortTable(table, column, d); th.dataset.sorted = d ? 'desc' : 'asc'; });
    });
  });
  if (location.hash === '#selftest') {
    const table = document.querySelector('table.sortable');
    const last = table.tHead.rows[0].cells.length - 1;
    table.tHead.rows[0].cells[last].click();
    document.body.dataset.selftest = Array.from(table.tBodies[0].rows).map(r => r.cells[last].dataset.value).join(',');
  }
  document.body.dataset.tables = document.querySelectorAll('table.sortable').length;
  document.body.dataset.plots = document.querySelectorAll('svg').length;
  document.body.dataset.rendered = 'ok';
});
"""


def _html_table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in [frame.index.name or "system", *frame.columns])
    rows = []
    for index, row in frame.iterrows():
        cells = [f'<td data-value="{html.escape(str(index))}">{html.escape(str(index))}</td>']
        for value in row:
            shown = f"{value:.4f}" if isinstance(value, float) else str(value)
            cells.append(f'<td data-value="{value}">{html.escape(shown)}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def render_html(boards: list[SuiteBoard]) -> str:
    sections = []
    for board in boards:
        tables = "".join(f"<h3>{html.escape(m)}</h3>{_html_table(_ranked(board, m))}" for m in board.suite.measures)
        figures = "".join(f"<figure>{svg}<figcaption>{html.escape(title)}</figcaption></figure>"
                          for title, svg in plots(board))
        stale = f"<p class='stale'><strong>{html.escape(board.stale)}</strong></p>" if board.stale else ""
        sections.append(f"<section><h2>{html.escape(board.suite.name)}</h2>{stale}"
                        f"<p>{html.escape(board.suite.description)}</p>{tables}<div class='plots'>{figures}</div></section>")
    style = ("body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin:.5em 0}"
             "th,td{border:1px solid #ccc;padding:.2em .5em;text-align:right}th{cursor:pointer;background:#f3f3f3}"
             ".stale{color:#b00020}"
             ".plots{display:flex;flex-wrap:wrap;gap:1em}figure{margin:0}svg{max-width:100%;height:auto}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Leaderboard</title><style>{style}</style>"
            f"<script>{SCRIPT}</script></head><body><h1>Leaderboard</h1>"
            "<p>Click a column header to sort. Rank = 1 + the number of systems significantly better on the suite's "
            "first measure (paired t-test, Bonferroni); equal ranks are statistically indistinguishable.</p>"
            f"{''.join(sections)}</body></html>")


def write_leaderboard(results: Path) -> list[Path]:
    boards = collect(results)
    if not boards:
        raise FileNotFoundError(f"no suite under {results} has produced its tables yet")
    written = []
    for name, text in (("leaderboard.md", render_markdown(boards)), ("leaderboard.html", render_html(boards))):
        with atomic_write(results / name, encoding="utf-8") as f:
            f.write(text)
        written.append(results / name)
    return written
