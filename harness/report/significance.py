"""Significance marks, the full comparison table, and TOST equivalence groups for a suite."""

from __future__ import annotations

import pandas as pd

from harness.evaluate import PerQuery
from harness.report.tables import AVERAGE, Block
from harness.spec import StatsSpec
from harness.stats import Comparison, compare, comparisons_frame

SIGNIFICANT = "†"


def run_comparisons(cells: dict[tuple[str, str], list[PerQuery]], spec: StatsSpec, measures: list[str]) -> list[Comparison]:
    """Every comparison the suite's statistics settings declare, corrected within its family."""
    if len({system for system, _ in cells}) < 2:
        return []
    return compare(cells, baseline=spec.baseline, tests=spec.tests, measures=measures, correction=spec.correction,
                   alpha=spec.alpha, margin=spec.margin, family=spec.family, alternative=spec.alternative)


def significance_marks(comparisons: list[Comparison], frame: pd.DataFrame, measure: str, baseline: str | None) -> pd.DataFrame:
    """``†`` on each cell whose system differs significantly from the baseline (after correction)."""
    marks = pd.DataFrame("", index=frame.index, columns=frame.columns)
    if baseline is None:
        return marks
    for c in comparisons:
        if c.measure == measure and c.system_b == baseline and c.significant and c.collection in marks.columns:
            marks.loc[c.system_a, c.collection] = SIGNIFICANT
    return marks


def comparisons_block(comparisons: list[Comparison]) -> Block:
    frame = comparisons_frame(comparisons).set_index(["measure", "collection", "system_a", "system_b", "test"])
    families = sorted({f"{c.family} (n={c.family_size}, {c.correction})" for c in comparisons})
    return Block("Paired tests", frame, fmt="{:.4g}", best=None, note="Families: " + "; ".join(families) + ".")


def equivalence_blocks(comparisons: list[Comparison], systems: list[str], margin: float) -> list[Block]:
    """Per measure: for each system and collection, the systems TOST finds it equivalent to."""
    tost = [c for c in comparisons if c.test == "tost"]
    blocks = []
    for measure in dict.fromkeys(c.measure for c in tost):
        collections = list(dict.fromkeys(c.collection for c in tost if c.measure == measure))
        frame = pd.DataFrame("", index=pd.Index(systems, name="system"), columns=collections, dtype=object)
        for c in tost:
            if c.measure == measure and c.equivalent:
                for this, other in ((c.system_a, c.system_b), (c.system_b, c.system_a)):
                    current = frame.loc[this, c.collection]
                    frame.loc[this, c.collection] = ", ".join(filter(None, [current, other]))
        frame = frame.replace("", "–")
        family = next(c for c in tost if c.measure == measure)
        note = (f"Paired TOST, margin ±{margin} ({measure} scale), α={family.alpha}, {family.correction} over "
                f"{family.family} (n={family.family_size}); a cell lists the systems equivalent to the row's system.")
        blocks.append(Block(f"Equivalence (TOST) — {measure}", frame, best=None, note=note))
    return blocks


def mark_effectiveness(blocks: list[Block], comparisons: list[Comparison], baseline: str | None) -> None:
    """Attach significance marks to effectiveness blocks in place (not to the average column)."""
    for block in blocks:
        marks = significance_marks(comparisons, block.frame, block.title, baseline)
        if AVERAGE in marks.columns:
            marks[AVERAGE] = ""
        block.marks = marks
        if baseline is not None:
            block.note = f"{SIGNIFICANT}: differs from {baseline} (paired t-test, corrected; see significance tables)."
