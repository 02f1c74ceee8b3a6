"""Paired significance and equivalence tests on per-query values, with multiple-comparison correction.

Every test compares system A with system B on the same queries (per-query values keyed by query id);
differences are A − B, so ``alternative="greater"`` means "A scores higher than B". A family of
comparisons is declared explicitly (:func:`compare`) and each test kind is corrected within its own
family; the family name and size are written into every :class:`Comparison`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import ttost_paired

from harness.evaluate import PerQuery

Alternative = Literal["two-sided", "greater", "less"]
ALTERNATIVES = ("two-sided", "greater", "less")
CORRECTIONS = ("none", "bonferroni", "holm", "fdr_bh")
FAMILIES = ("all", "per-measure", "per-collection")


@dataclass(frozen=True)
class TestResult:
    """Outcome of one paired test; ``margin``, ``p_lower``, ``p_upper`` and ``equivalent`` are TOST only.

    For TOST, ``alternative`` is ``"equivalence"``, ``p_value`` is max(p_lower, p_upper) and
    ``statistic`` is the t statistic of the one-sided test with the larger p-value.
    """

    __test__ = False  # not a pytest test class

    test: str
    alternative: str
    statistic: float
    p_value: float
    mean_a: float
    mean_b: float
    n: int
    margin: float | None = None
    p_lower: float | None = None
    p_upper: float | None = None
    equivalent: bool | None = None

    @property
    def mean_difference(self) -> float:
        """Mean of A − B."""
        return self.mean_a - self.mean_b


def paired(a: dict[str, float], b: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """Values of A and B aligned on query id; the id sets must be equal and hold at least 2 queries."""
    only_a = sorted(a.keys() - b.keys())
    only_b = sorted(b.keys() - a.keys())
    if only_a or only_b:
        raise ValueError(
            f"systems are not evaluated on the same queries: {len(only_a)} ids only in A (e.g. {only_a[:3]}), "
            f"{len(only_b)} only in B (e.g. {only_b[:3]})"
        )
    if len(a) < 2:
        raise ValueError(f"a paired test needs at least 2 queries, got {len(a)}")
    ids = sorted(a)
    x = np.array([a[q] for q in ids], dtype=float)
    y = np.array([b[q] for q in ids], dtype=float)
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("per-query values must be finite numbers")
    return x, y


def _check_alternative(alternative: str) -> None:
    if alternative not in ALTERNATIVES:
        raise ValueError(f"unknown alternative {alternative!r}; use one of {', '.join(ALTERNATIVES)}")


def _result(test: str, alternative: str, statistic: float, p_value: float, x: np.ndarray, y: np.ndarray) -> TestResult:
    return TestResult(test, alternative, float(statistic), float(p_value), float(x.mean()), float(y.mean()), len(x))


def t_test(a: dict[str, float], b: dict[str, float], alternative: Alternative = "two-sided") -> TestResult:
    """Paired t-test (scipy.stats.ttest_rel); all differences zero gives statistic 0, p = 1."""
    _check_alternative(alternative)
    x, y = paired(a, b)
    if np.array_equal(x, y):
        return _result("t-test", alternative, 0.0, 1.0, x, y)
    r = stats.ttest_rel(x, y, alternative=alternative)
    return _result("t-test", alternative, r.statistic, r.pvalue, x, y)


def wilcoxon(a: dict[str, float], b: dict[str, float], alternative: Alternative = "two-sided") -> TestResult:
    """Wilcoxon signed-rank test (scipy.stats.wilcoxon, defaults ``zero_method="wilcox"``, ``method="auto"``).

    Zero differences are dropped before ranking (``n`` still counts every query); all differences
    zero gives statistic 0, p = 1.
    """
    _check_alternative(alternative)
    x, y = paired(a, b)
    if np.array_equal(x, y):
        return _result("wilcoxon", alternative, 0.0, 1.0, x, y)
    r = stats.wilcoxon(x, y, alternative=alternative)
    return _result("wilcoxon", alternative, r.statistic, r.pvalue, x, y)


def _mean_difference(x: np.ndarray, y: np.ndarray, axis: int) -> np.ndarray:
    return np.mean(x - y, axis=axis)


def randomisation(
    a: dict[str, float],
    b: dict[str, float],
    alternative: Alternative = "two-sided",
    n_resamples: int = 10000,
    seed: int = 0,
) -> TestResult:
    """Paired randomisation (sign-flip) test of the mean difference (scipy.stats.permutation_test).

    Exact over all 2^n sign flips when 2^n ≤ n_resamples, otherwise ``n_resamples`` random flips
    seeded by ``seed`` (scipy counts the observed statistic in, p = (k+1)/(n_resamples+1)). The
    two-sided p is twice the smaller one-sided p, capped at 1 (scipy's convention).
    """
    _check_alternative(alternative)
    x, y = paired(a, b)
    if np.array_equal(x, y):
        return _result("randomisation", alternative, 0.0, 1.0, x, y)
    r = stats.permutation_test(
        (x, y),
        _mean_difference,
        permutation_type="samples",
        vectorized=True,
        n_resamples=n_resamples,
        alternative=alternative,
        rng=seed,
    )
    return _result("randomisation", alternative, r.statistic, r.pvalue, x, y)


def tost(a: dict[str, float], b: dict[str, float], margin: float = 0.05, alpha: float = 0.05) -> TestResult:
    """Paired TOST (statsmodels ttost_paired): equivalent if the mean of A − B lies in (−margin, margin).

    ``margin`` is absolute, on the metric scale. ``p_lower`` tests H0: mean diff ≤ −margin, ``p_upper``
    H0: mean diff ≥ margin; ``equivalent`` is max(p_lower, p_upper) < alpha, uncorrected.
    """
    if margin <= 0:
        raise ValueError(f"TOST margin must be positive, got {margin}")
    x, y = paired(a, b)
    with np.errstate(divide="ignore", invalid="ignore"):  # zero variance: t = ±inf, a decisive answer
        p, (t_lower, p_lower, _), (t_upper, p_upper, _) = ttost_paired(x, y, -margin, margin)
    return replace(
        _result("tost", "equivalence", t_lower if p_lower >= p_upper else t_upper, p, x, y),
        margin=float(margin),
        p_lower=float(p_lower),
        p_upper=float(p_upper),
        equivalent=bool(p < alpha),
    )


TESTS: dict[str, Callable[..., TestResult]] = {
    "t-test": t_test,
    "wilcoxon": wilcoxon,
    "randomisation": randomisation,
    "tost": tost,
}


def correct(p_values: Sequence[float], method: str) -> list[float]:
    """Adjusted p-values of one family (statsmodels multipletests); ``"none"`` returns them unchanged."""
    if method not in CORRECTIONS:
        raise ValueError(f"unknown correction {method!r}; use one of {', '.join(CORRECTIONS)}")
    if method == "none" or len(p_values) == 0:
        return [float(p) for p in p_values]
    return [float(p) for p in multipletests(np.asarray(p_values, dtype=float), method=method)[1]]


@dataclass(frozen=True)
class Comparison:
    """One test of system A against B on one collection and measure, corrected within ``family``.

    ``rejected`` is p_adjusted < alpha: a significant difference, or for TOST equivalence (in which
    case ``result.equivalent`` is this corrected decision too).
    """

    system_a: str
    system_b: str
    collection: str
    measure: str
    test: str
    result: TestResult
    p_adjusted: float
    correction: str
    family: str
    family_size: int
    alpha: float
    rejected: bool

    @property
    def significant(self) -> bool | None:
        """Significant difference after correction; None for TOST."""
        return None if self.test == "tost" else self.rejected

    @property
    def equivalent(self) -> bool | None:
        """Equivalent within the margin after correction; None for difference tests."""
        return self.rejected if self.test == "tost" else None


def _values(records: list[PerQuery]) -> dict[str, dict[str, float]]:
    """measure → query id → value; a repeated (query, measure) is an error."""
    out: dict[str, dict[str, float]] = {}
    for pq in records:
        by_query = out.setdefault(pq.measure, {})
        if pq.query_id in by_query:
            raise ValueError(f"query {pq.query_id!r} has two values for {pq.measure}")
        by_query[pq.query_id] = pq.value
    return out


def _family_name(family: str, test: str, collection: str, measure: str) -> str:
    scope = {"all": "all", "per-measure": f"measure={measure}", "per-collection": f"collection={collection}"}[family]
    return f"{test}:{scope}"


def compare(
    per_query: dict[tuple[str, str], list[PerQuery]],
    baseline: str | None = None,
    tests: Sequence[str] = ("t-test",),
    measures: Sequence[str] | None = None,
    correction: str = "bonferroni",
    alpha: float = 0.05,
    margin: float = 0.05,
    family: str = "all",
    alternative: Alternative = "two-sided",
) -> list[Comparison]:
    """Test every system against ``baseline`` (or all unordered pairs), per collection, measure and test.

    ``per_query`` is keyed by (system label, collection label); every system needs every collection
    and measure (default: all measures found). Pairs are (other, baseline), or (earlier, later) in
    the key order of ``per_query``. A family is one test kind over all comparisons (``"all"``), or
    over one measure (``"per-measure"``) or one collection (``"per-collection"``). ``alternative``
    applies to difference tests, ``margin`` to TOST.
    """
    for name, value, allowed in (("family", family, FAMILIES), ("correction", correction, CORRECTIONS)):
        if value not in allowed:
            raise ValueError(f"unknown {name} {value!r}; use one of {', '.join(allowed)}")
    unknown = [t for t in tests if t not in TESTS]
    if unknown or not tests:
        raise ValueError(f"unknown or no tests {unknown}; use some of {', '.join(TESTS)}")
    _check_alternative(alternative)
    systems = list(dict.fromkeys(s for s, _ in per_query))
    collections = list(dict.fromkeys(c for _, c in per_query))
    if len(systems) < 2:
        raise ValueError(f"need at least 2 systems to compare, got {systems}")
    if baseline is not None and baseline not in systems:
        raise ValueError(f"baseline {baseline!r} is not among the systems {systems}")
    missing = [(s, c) for c in collections for s in systems if (s, c) not in per_query]
    if missing:
        raise ValueError(f"per-query values missing for (system, collection) {missing}")
    values = {key: _values(records) for key, records in per_query.items()}
    if measures is None:
        measures = list(dict.fromkeys(m for by_measure in values.values() for m in by_measure))
    lacking = [(s, c, m) for (s, c), by_measure in values.items() for m in measures if m not in by_measure]
    if lacking:
        raise ValueError(f"per-query values missing for (system, collection, measure) {lacking}")
    pairs = [(s, baseline) for s in systems if s != baseline] if baseline else list(itertools.combinations(systems, 2))

    rows = []
    for test, collection, measure, (sa, sb) in itertools.product(tests, collections, measures, pairs):
        a, b = values[(sa, collection)][measure], values[(sb, collection)][measure]
        kwargs = {"margin": margin, "alpha": alpha} if test == "tost" else {"alternative": alternative}
        try:
            result = TESTS[test](a, b, **kwargs)
        except ValueError as e:
            raise ValueError(f"{sa} vs {sb} on {collection}, {measure}: {e}") from None
        rows.append((sa, sb, collection, measure, test, result, _family_name(family, test, collection, measure)))

    families: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        families.setdefault(row[-1], []).append(i)
    adjusted: dict[int, float] = {}
    for members in families.values():
        adjusted.update(zip(members, correct([rows[i][5].p_value for i in members], correction)))

    comparisons = []
    for i, (sa, sb, collection, measure, test, result, name) in enumerate(rows):
        rejected = adjusted[i] < alpha
        if test == "tost":
            result = replace(result, equivalent=rejected)
        comparisons.append(
            Comparison(sa, sb, collection, measure, test, result, adjusted[i], correction, name,
                       len(families[name]), alpha, rejected)
        )
    return comparisons


COLUMNS = [
    "system_a", "system_b", "collection", "measure", "test", "alternative", "n", "mean_a", "mean_b",
    "mean_difference", "statistic", "p_value", "p_adjusted", "correction", "family", "family_size", "alpha",
    "significant", "equivalent", "margin", "p_lower", "p_upper",
]


def comparisons_frame(comparisons: Sequence[Comparison]) -> pd.DataFrame:
    """One flat row per comparison (columns ``COLUMNS``), for reports."""
    rows = []
    for c in comparisons:
        row = {k: v for k, v in asdict(c).items() if k not in {"result", "rejected"}}
        row.update({k: v for k, v in asdict(c.result).items() if k != "equivalent"})
        row.update(mean_difference=c.result.mean_difference, significant=c.significant, equivalent=c.equivalent)
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)
