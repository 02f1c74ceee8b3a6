"""Report tables: titled blocks of numbers rendered to Markdown, CSV and LaTeX.

Logic builds `Block`s (a DataFrame plus how to show it); renderers are separate. The best value of
each column is bold in Markdown and LaTeX where a block says which direction is better, and
per-cell marks (significance, equivalence) are appended after the number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

from harness.evaluate import PerQuery, means
from harness.files import atomic_write
from harness.spec import Unit

AVERAGE = "Avg"


@dataclass
class Block:
    title: str
    frame: pd.DataFrame
    fmt: str = "{:.4f}"
    best: Literal["max", "min"] | None = "max"
    marks: pd.DataFrame | None = None
    note: str = ""

    def text(self, bold: str) -> pd.DataFrame:
        """The frame as strings: formatted numbers, the best per column bold, marks appended."""
        text = self.frame.map(lambda v: "–" if v is None or (isinstance(v, float) and math.isnan(v)) else
                              (self.fmt.format(v) if isinstance(v, (int, float)) else str(v)))
        for column in self.frame.columns:
            values = pd.to_numeric(self.frame[column], errors="coerce")
            if self.best and values.notna().sum() > 1:
                target = values.max() if self.best == "max" else values.min()
                for row in self.frame.index[values == target]:
                    text.loc[row, column] = bold.format(text.loc[row, column])
        if self.marks is not None:
            for (row, column), mark in self.marks.stack().items():
                if mark:
                    text.loc[row, column] = f"{text.loc[row, column]}{mark}"
        return text


def column_labels(units: list[Unit]) -> dict[Unit, str]:
    """Language codes when one dataset is split by language, dataset names when all share one
    language, ``dataset/lang`` otherwise."""
    if len({u.dataset for u in units}) == 1:
        return {u: u.lang for u in units}
    if len({u.lang for u in units}) == 1:
        return {u: u.dataset for u in units}
    return {u: f"{u.dataset}/{u.lang}" for u in units}


def effectiveness(cells: dict[tuple[str, Unit], list[PerQuery]], measures: list[str]) -> dict[str, pd.DataFrame]:
    """measure → DataFrame (rows: systems, columns: collections + Avg) of per-collection means."""
    systems = list(dict.fromkeys(label for label, _ in cells))
    units = list(dict.fromkeys(unit for _, unit in cells))
    labels = column_labels(units)
    tables = {}
    for measure in measures:
        frame = pd.DataFrame(index=pd.Index(systems, name="system"), columns=[labels[u] for u in units], dtype=float)
        for (label, unit), per_query in cells.items():
            frame.loc[label, labels[unit]] = means(per_query)[measure]
        if len(units) > 1:
            frame[AVERAGE] = frame.mean(axis=1)
        tables[measure] = frame
    return tables


def _row_labels_as_columns(text: pd.DataFrame) -> pd.DataFrame:
    """Each row-index level (system, collection, ...) as a leading column of its own, as in the CSV."""
    return text.rename_axis([name or "" for name in text.index.names]).reset_index()


def render_markdown(blocks: list[Block]) -> str:
    parts = []
    for block in blocks:
        note = f"\n{block.note}\n" if block.note else ""
        table = _row_labels_as_columns(block.text("**{}**")).to_markdown(index=False)
        parts.append(f"### {block.title}\n\n{table}\n{note}")
    return "\n".join(parts)


def render_csv(blocks: list[Block]) -> str:
    long = pd.concat({b.title: b.frame for b in blocks}, names=["block"]).reset_index()
    return long.to_csv(index=False, float_format="%.6g")


def _latex_escape(text: str) -> str:
    return str(text).replace("_", r"\_").replace("%", r"\%").replace("&", r"\&").replace("#", r"\#")


def render_latex(blocks: list[Block]) -> str:
    parts = []
    for block in blocks:
        text = _row_labels_as_columns(block.text(r"\textbf{{{}}}")).map(_latex_escape)
        text.columns = [_latex_escape(c) for c in text.columns]
        labels = block.frame.index.nlevels
        body = text.to_latex(escape=False, index=False, column_format="l" * labels + "r" * (len(text.columns) - labels))
        parts.append(f"% {block.title}\n{body}")
    return "\n".join(parts)


RENDERERS = {"md": render_markdown, "csv": render_csv, "tex": render_latex}


def write_tables(blocks: list[Block], folder: Path, stem: str) -> list[Path]:
    """Write ``stem.md``, ``stem.csv`` and ``stem.tex`` atomically into ``folder``."""
    written = []
    for ext, render in RENDERERS.items():
        with atomic_write(folder / f"{stem}.{ext}", encoding="utf-8") as f:
            f.write(render(blocks))
        written.append(folder / f"{stem}.{ext}")
    return written
