"""Regression checks against a committed baseline of a suite's effectiveness.

A baseline (``results/baselines/<suite>.json``) stores, per system, collection and measure, the
mean and the per-query values, and what produced them (commit, torch's CPU capability and threads,
package versions, hardware). `check` compares the suite's current results with it, cell by cell:

- **exact** cells (systems the suite does not train: BM25, inference-only models) are
  bit-deterministic across CPUs and thread counts; any per-query value that differs regresses;
- **trained** cells (systems the suite trains) legitimately move with the instruction set and
  the thread count (a different float summation order changes the training trajectory): such a
  cell regresses when its mean drops by more than ``tolerance`` **and** a one-sided paired t-test
  (current < baseline, over the queries), Holm-corrected over the trained cells checked, rejects
  at ``alpha``: a drop both large and consistent across queries, not a few queries reshuffled;
- a cell missing from the current results, or with another query set, regresses.

Only `write_baseline` (``harness baseline``) changes a baseline. An unusable baseline (missing,
malformed, empty, another suite or version) is a `BaselineError`; current results made with other
settings or code than the suite's now are refused (`StaleResults`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import jobs, layout
from harness.evaluate import PerQuery, means, read_per_query
from harness.files import atomic_write
from harness.report import ReportError
from harness.report.tables import column_labels
from harness.spec import Suite
from harness.stats import correct, t_test

BASELINE_VERSION = 2
EXACT = 1e-9
"""Largest per-query difference an exact cell tolerates (the eval files' decimal round trip)."""
ENVIRONMENT_PACKAGES = ("torch", "transformers", "sentence-transformers", "faiss-cpu", "faiss-gpu", "pyserini")


class BaselineError(ReportError):
    """A baseline that cannot be checked against: missing, malformed, empty, another suite or version."""


class StaleResults(ReportError):
    """Published results made with other suite settings or code than the current ones."""


@dataclass(frozen=True)
class CellCheck:
    system: str
    collection: str
    measure: str
    exact: bool
    baseline: float
    current: float | None
    p_value: float | None
    regressed: bool
    reason: str


def current_values(suite: Suite) -> dict[tuple[str, str, str], dict[str, float]]:
    """(system, collection, measure) → per-query values from the suite's published eval files.

    Raises `StaleResults` naming the eval files made with other settings or code than now."""
    if stale := jobs.stale_cells(suite):
        raise StaleResults(jobs.describe_stale(suite, stale))
    labels = column_labels(suite.units())
    found: dict[tuple[str, str, str], dict[str, float]] = {}
    for system in suite.systems:
        for unit in suite.units():
            if not layout.path("evaluate", suite.name, system, unit).is_file():
                continue
            for pq in read_per_query(layout.per_query_file(suite.name, system, unit)):
                found.setdefault((system, labels[unit], pq.measure), {})[pq.query_id] = pq.value
    return found


def environment(suite: Suite) -> dict[str, Any]:
    """What produced the suite's published results, from the records its pointer files name:
    commits, torch's CPU capabilities and thread counts, package versions and hardware."""
    pointers = [layout.path("train", suite.name, label) for label, spec in suite.systems.items() if spec.train]
    pointers += [layout.path("index", suite.name, label, unit) for label in suite.systems for unit in suite.units()]
    records = [layout.pointed(p) for p in pointers if p.is_file()]
    runtimes = [r.data.get("runtime") or {} for r in records]
    packages = {name: sorted({r.data["packages"][name] for r in records if name in r.data.get("packages", {})})
                for name in ENVIRONMENT_PACKAGES}
    return {
        "git_commit": sorted({str(r.data.get("git_commit")) for r in records}),
        "cpu_capability": sorted({rt["cpu_capability"] for rt in runtimes if "cpu_capability" in rt}),
        "threads": sorted({rt["threads"] for rt in runtimes if "threads" in rt}),
        "packages": {name: versions for name, versions in packages.items() if versions},
        "hardware": sorted({f"{r.data['hardware'].get('cpu')} ×{r.data['hardware'].get('cores')}" for r in records}),
    }


def write_baseline(suite: Suite, path: Path) -> int:
    """Snapshot the suite's current results as its baseline; returns the number of cells."""
    values = current_values(suite)
    expected = len(suite.systems) * len(suite.units()) * len(suite.measures)
    if len(values) != expected:
        raise FileNotFoundError(f"suite {suite.name!r} has {len(values)} of {expected} evaluated cells; run it first")
    cells = [
        {"system": s, "collection": c, "measure": m, "exact": suite.systems[s].train is None,
         "mean": means([PerQuery(q, m, v) for q, v in pq.items()])[m], "per_query": pq}
        for (s, c, m), pq in sorted(values.items())
    ]
    data = {"version": BASELINE_VERSION, "suite": suite.name, "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "produced_by": environment(suite), "cells": cells}
    with atomic_write(path, encoding="utf-8") as f:
        json.dump(data, f, indent=1, sort_keys=True)
    return len(cells)


CELL_FIELDS = {"system": str, "collection": str, "measure": str, "exact": bool, "mean": float, "per_query": dict}


def load_baseline(path: Path, suite: str | None = None) -> dict[str, Any]:
    """The baseline at ``path``, validated; `BaselineError` says in one line why it is unusable."""
    if not path.is_file():
        raise BaselineError(f"{path}: no baseline; create one with `harness baseline --suite <name>`")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BaselineError(f"{path}: not a baseline (malformed JSON: {e})") from None
    if not isinstance(data, dict):
        raise BaselineError(f"{path}: not a baseline (expected a JSON object)")
    if data.get("version") != BASELINE_VERSION:
        raise BaselineError(f"{path}: baseline version {data.get('version')!r}, expected {BASELINE_VERSION}; "
                            f"recreate it with `harness baseline`")
    if suite is not None and data.get("suite") != suite:
        raise BaselineError(f"{path}: baseline is for suite {data.get('suite')!r}, not {suite!r}")
    if not isinstance(data.get("suite"), str):
        raise BaselineError(f"{path}: baseline names no suite")
    cells = data.get("cells")
    if not isinstance(cells, list) or not cells:
        raise BaselineError(f"{path}: baseline has no cells")
    for i, cell in enumerate(cells):
        bad = [k for k, kind in CELL_FIELDS.items() if not isinstance(cell, dict) or not isinstance(
            cell.get(k), kind if kind is not float else (int, float))]
        if bad:
            raise BaselineError(f"{path}: cell {i} lacks or mistypes {', '.join(bad)}")
    return data


def _changed(new: dict[str, float], old: dict[str, float]) -> int:
    return sum(abs(new[q] - old[q]) > EXACT for q in old)


def check(suite: Suite, baseline: dict[str, Any], tolerance: float, alpha: float = 0.05) -> list[CellCheck]:
    """One `CellCheck` per baseline cell, by the rule in the module docstring."""
    if baseline["suite"] != suite.name:
        raise BaselineError(f"baseline is for suite {baseline['suite']!r}, not {suite.name!r}")
    current = current_values(suite)
    checks: list[CellCheck | None] = []
    tested: list[tuple[int, dict[str, Any], float, float]] = []  # (position, cell, current mean, p)
    for cell in baseline["cells"]:
        key = (cell["system"], cell["collection"], cell["measure"])
        old, exact = cell["per_query"], cell["exact"]
        new = current.get(key)
        if new is None:
            checks.append(CellCheck(*key, exact, cell["mean"], None, None, True, "missing from the current results"))
        elif set(new) != set(old):
            checks.append(CellCheck(*key, exact, cell["mean"], None, None, True,
                                    f"query set changed ({len(old)} → {len(new)} queries)"))
        elif exact:
            now, changed = sum(new.values()) / len(new), _changed(new, old)
            checks.append(CellCheck(*key, exact, cell["mean"], now, None, changed > 0,
                                    f"exact system changed on {changed} of {len(old)} queries" if changed else "ok"))
        else:
            now = sum(new.values()) / len(new)
            p = t_test(new, old, alternative="less").p_value if len(new) > 1 else 0.0
            tested.append((len(checks), cell, now, p))
            checks.append(None)
    adjusted = correct([p for *_, p in tested], "holm") if tested else []
    for (position, cell, now, _), p in zip(tested, adjusted, strict=True):
        key = (cell["system"], cell["collection"], cell["measure"])
        drop = cell["mean"] - now
        regressed = drop > tolerance and p < alpha
        reason = (f"mean dropped by {drop:.4f} > {tolerance} and the drop is significant (Holm p={p:.3g} < {alpha})"
                  if regressed else "ok")
        checks[position] = CellCheck(*key, False, cell["mean"], now, p, regressed, reason)
    return [c for c in checks if c is not None]


def describe_environment(env: dict[str, Any]) -> str:
    """One line: commits, CPU capability × threads, packages, hardware."""
    def joined(values: list[Any]) -> str:
        return "/".join(map(str, values)) or "?"

    packages = " ".join(f"{name} {joined(v)}" for name, v in sorted(env.get("packages", {}).items()))
    return (f"commit {joined([c[:12] for c in env.get('git_commit', [])])}, torch CPU {joined(env.get('cpu_capability', []))}"
            f" × {joined(env.get('threads', []))} threads, {packages}; {joined(env.get('hardware', []))}")


def render(checks: list[CellCheck], produced_by: dict[str, Any] | None = None, now: dict[str, Any] | None = None) -> str:
    lines = []
    if produced_by is not None:
        lines.append(f"baseline: {describe_environment(produced_by)}")
    if now is not None:
        lines.append(f"current:  {describe_environment(now)}")
    lines.append(f"{'system':<16} {'collection':<12} {'measure':<10} {'kind':<7} {'baseline':>9} {'current':>9}  status")
    for c in checks:
        current = "–" if c.current is None else f"{c.current:.4f}"
        status = f"REGRESSION: {c.reason}" if c.regressed else "ok"
        kind = "exact" if c.exact else "trained"
        lines.append(f"{c.system:<16} {c.collection:<12} {c.measure:<10} {kind:<7} {c.baseline:>9.4f} {current:>9}  {status}")
    failed = sum(c.regressed for c in checks)
    lines.append(f"{len(checks) - failed} cells ok, {failed} regressed")
    return "\n".join(lines)
