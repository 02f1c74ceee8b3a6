"""Effectiveness tables: systems × collections, one block per measure, with averages.

Logic (`effectiveness`) builds DataFrames of means; renderers (`write_tables`) turn them into
Markdown, CSV and LaTeX. The best value of each column is bold in Markdown and LaTeX.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd

from harness.evaluate import PerQuery, means
from harness.spec import Unit

AVERAGE = "Avg"


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


def _bold_best(frame: pd.DataFrame, bold: str) -> pd.DataFrame:
    text = frame.map(lambda v: f"{v:.4f}")
    for column in frame.columns:
        best = frame[column].max()
        text.loc[frame[column] == best, column] = bold.format(text.loc[frame[column] == best, column].iloc[0])
    return text


def render_markdown(tables: dict[str, pd.DataFrame]) -> str:
    blocks = [f"### {measure}\n\n{_bold_best(frame, '**{}**').to_markdown()}\n" for measure, frame in tables.items()]
    return "\n".join(blocks)


def render_csv(tables: dict[str, pd.DataFrame]) -> str:
    long = pd.concat({m: f for m, f in tables.items()}, names=["measure"]).reset_index()
    return long.to_csv(index=False, float_format="%.6f")


def render_latex(tables: dict[str, pd.DataFrame]) -> str:
    blocks = []
    for measure, frame in tables.items():
        text = _bold_best(frame, r"\textbf{{{}}}")
        text.columns = [str(c).replace("_", r"\_") for c in text.columns]
        body = text.to_latex(escape=False, column_format="l" + "r" * len(text.columns))
        blocks.append(f"% {measure}\n{body}")
    return "\n".join(blocks)


RENDERERS = {"md": render_markdown, "csv": render_csv, "tex": render_latex}


def write_tables(tables: dict[str, pd.DataFrame], folder: Path, stem: str) -> list[Path]:
    """Write ``stem.md``, ``stem.csv`` and ``stem.tex`` atomically into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for ext, render in RENDERERS.items():
        path = folder / f"{stem}.{ext}"
        with tempfile.NamedTemporaryFile("w", dir=folder, delete=False, encoding="utf-8") as f:
            f.write(render(tables))
        os.replace(f.name, path)
        written.append(path)
    return written
