"""Regression checks against a committed baseline of a suite's effectiveness.

A baseline (``results/baselines/<suite>.json``) stores, per system, collection and measure, the
mean and the per-query values. `check` compares the current suite results with it: a cell
regresses when its mean drops by more than ``tolerance``, or when it dropped at all and a paired
TOST cannot show the per-query values equivalent within ``margin``; a cell that is missing from the
current results regresses too. Only `write_baseline` (``harness baseline``) changes a baseline.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness import registry
from harness.evaluate import PerQuery, means, read_per_query
from harness.files import atomic_write
from harness.report.tables import column_labels
from harness.spec import Suite
from harness.stats import tost
from harness.steps import suite_file

BASELINE_VERSION = 1


@dataclass(frozen=True)
class CellCheck:
    system: str
    collection: str
    measure: str
    baseline: float
    current: float | None
    tost_p: float | None
    regressed: bool
    reason: str


def current_values(suite: Suite) -> dict[tuple[str, str, str], dict[str, float]]:
    """(system, collection, measure) → per-query values from the suite's published eval files."""
    labels = column_labels(suite.units())
    found: dict[tuple[str, str, str], dict[str, float]] = {}
    for system in suite.systems:
        for unit in suite.units():
            path = suite_file(suite.name, "eval", system, unit)
            if not path.is_file():
                continue
            for pq in read_per_query(path):
                found.setdefault((system, labels[unit], pq.measure), {})[pq.query_id] = pq.value
    return found


def write_baseline(suite: Suite, path: Path) -> int:
    """Snapshot the suite's current results as its baseline; returns the number of cells."""
    values = current_values(suite)
    expected = len(suite.systems) * len(suite.units()) * len(suite.measures)
    if len(values) != expected:
        raise FileNotFoundError(f"suite {suite.name!r} has {len(values)} of {expected} evaluated cells; run it first")
    cells = [
        {"system": s, "collection": c, "measure": m, "mean": means([PerQuery(q, m, v) for q, v in pq.items()])[m],
         "per_query": pq}
        for (s, c, m), pq in sorted(values.items())
    ]
    data = {"version": BASELINE_VERSION, "suite": suite.name, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "git_commit": registry.git_commit(), "cells": cells}
    with atomic_write(path, encoding="utf-8") as f:
        json.dump(data, f, indent=1, sort_keys=True)
    return len(cells)


def load_baseline(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no baseline; create one with `harness baseline --suite <name>`")
    data = json.loads(path.read_text())
    if data.get("version") != BASELINE_VERSION:
        raise ValueError(f"{path}: baseline version {data.get('version')!r}, expected {BASELINE_VERSION}")
    return data


def check(suite: Suite, baseline: dict[str, Any], tolerance: float, margin: float, alpha: float = 0.05) -> list[CellCheck]:
    """One `CellCheck` per baseline cell."""
    if baseline["suite"] != suite.name:
        raise ValueError(f"baseline is for suite {baseline['suite']!r}, not {suite.name!r}")
    current = current_values(suite)
    checks = []
    for cell in baseline["cells"]:
        key = (cell["system"], cell["collection"], cell["measure"])
        old = cell["per_query"]
        if key not in current:
            checks.append(CellCheck(*key, cell["mean"], None, None, True, "missing from the current results"))
            continue
        new = current[key]
        if set(new) != set(old):
            checks.append(CellCheck(*key, cell["mean"], None, None, True,
                                    f"query set changed ({len(old)} → {len(new)} queries)"))
            continue
        now = sum(new.values()) / len(new)
        drop = cell["mean"] - now
        p = tost(new, old, margin=margin, alpha=alpha).p_value if len(new) > 1 else None
        if drop > tolerance:
            checks.append(CellCheck(*key, cell["mean"], now, p, True, f"mean dropped by {drop:.4f} > tolerance {tolerance}"))
        elif drop > 0 and p is not None and p >= alpha:
            checks.append(CellCheck(*key, cell["mean"], now, p, True,
                                    f"mean dropped by {drop:.4f} and TOST cannot show equivalence within ±{margin} (p={p:.3g})"))
        else:
            checks.append(CellCheck(*key, cell["mean"], now, p, False, "ok"))
    return checks


def render(checks: list[CellCheck]) -> str:
    lines = [f"{'system':<16} {'collection':<12} {'measure':<10} {'baseline':>9} {'current':>9}  status"]
    for c in checks:
        current = "–" if c.current is None else f"{c.current:.4f}"
        status = f"REGRESSION: {c.reason}" if c.regressed else "ok"
        lines.append(f"{c.system:<16} {c.collection:<12} {c.measure:<10} {c.baseline:>9.4f} {current:>9}  {status}")
    failed = sum(c.regressed for c in checks)
    lines.append(f"{len(checks) - failed} cells ok, {failed} regressed")
    return "\n".join(lines)
