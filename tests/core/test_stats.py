"""harness.stats against scipy/statsmodels and against brute force."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import ttost_paired

from harness import stats
from harness.evaluate import PerQuery

ALTERNATIVES = ["two-sided", "greater", "less"]


def as_dict(values: np.ndarray, prefix: str = "q") -> dict[str, float]:
    return {f"{prefix}{i:03d}": float(v) for i, v in enumerate(values)}


def pair(n: int = 40, shift: float = 0.03, noise: float = 0.1, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.uniform(0, 1, n)
    return a, np.clip(a - shift + rng.normal(0, noise, n), 0, 1)


@pytest.mark.parametrize("alternative", ALTERNATIVES)
def test_t_test_matches_scipy(alternative: str) -> None:
    x, y = pair()
    r = stats.t_test(as_dict(x), as_dict(y), alternative)
    ref = sps.ttest_rel(x, y, alternative=alternative)
    assert r.p_value == pytest.approx(ref.pvalue, rel=1e-12)
    assert r.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert (r.test, r.alternative, r.n) == ("t-test", alternative, 40)
    assert r.mean_difference == pytest.approx(np.mean(x - y))


def test_t_test_aligns_on_query_id_not_order() -> None:
    x, y = pair()
    b = as_dict(y)
    reversed_b = dict(reversed(list(b.items())))
    assert stats.t_test(as_dict(x), reversed_b).p_value == stats.t_test(as_dict(x), b).p_value


@pytest.mark.parametrize("alternative", ALTERNATIVES)
@pytest.mark.parametrize("rounded", [False, True])
def test_wilcoxon_matches_scipy(alternative: str, rounded: bool) -> None:
    x, y = pair(n=30)
    if rounded:  # ties and zero differences
        x, y = np.round(x, 1), np.round(y, 1)
        assert (x == y).any()
    r = stats.wilcoxon(as_dict(x), as_dict(y), alternative)
    ref = sps.wilcoxon(x, y, alternative=alternative)
    assert r.p_value == pytest.approx(ref.pvalue, rel=1e-12)
    assert r.statistic == pytest.approx(ref.statistic)


def brute_force_randomisation(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    d = x - y
    signs = np.array(list(itertools.product([1.0, -1.0], repeat=len(d))))
    null = (signs * d).mean(axis=1)
    observed = d.mean()
    tol = 1e-12
    return {
        "greater": float(np.mean(null >= observed - tol)),
        "less": float(np.mean(null <= observed + tol)),
        "two-sided": float(np.mean(np.abs(null) >= abs(observed) - tol)),
    }


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_randomisation_exact_matches_enumeration(seed: int) -> None:
    x, y = pair(n=8, shift=0.05, seed=seed)
    expected = brute_force_randomisation(x, y)
    for alternative in ALTERNATIVES:
        r = stats.randomisation(as_dict(x), as_dict(y), alternative)
        assert r.p_value == pytest.approx(expected[alternative], abs=1e-12), alternative
        assert r.statistic == pytest.approx(np.mean(x - y))
    # 2^8 = 256 flips: every p is a multiple of 1/256
    assert expected["greater"] * 256 == pytest.approx(round(expected["greater"] * 256))


def test_randomisation_sampled_is_seeded() -> None:
    x, y = pair(n=30, shift=0.02, seed=4)
    a, b = as_dict(x), as_dict(y)
    first = stats.randomisation(a, b, n_resamples=2000, seed=7).p_value
    assert stats.randomisation(a, b, n_resamples=2000, seed=7).p_value == first
    assert first == pytest.approx(stats.t_test(a, b).p_value, abs=0.05)


@pytest.mark.parametrize("shift", [0.0, 0.03, -0.04, 0.2])
def test_tost_matches_statsmodels_and_two_one_sided_t_tests(shift: float) -> None:
    margin = 0.05
    x, y = pair(n=50, shift=shift, noise=0.05, seed=5)
    r = stats.tost(as_dict(x), as_dict(y), margin=margin)
    p, (_, p1, _), (_, p2, _) = ttost_paired(x, y, -margin, margin)
    assert (r.p_value, r.p_lower, r.p_upper) == pytest.approx((p, p1, p2), rel=1e-10)
    # H0: mean(x - y) <= -margin  <=>  mean((x + margin) - y) <= 0, rejected for large values
    assert r.p_lower == pytest.approx(sps.ttest_rel(x + margin, y, alternative="greater").pvalue, rel=1e-9)
    # H0: mean(x - y) >= margin  <=>  mean((x - margin) - y) >= 0, rejected for small values
    assert r.p_upper == pytest.approx(sps.ttest_rel(x - margin, y, alternative="less").pvalue, rel=1e-9)
    assert r.p_value == max(r.p_lower, r.p_upper)
    assert r.margin == margin and r.alternative == "equivalence"
    assert r.mean_difference == pytest.approx(np.mean(x - y))


def test_tost_decides_equivalence() -> None:
    rng = np.random.default_rng(6)
    a = rng.uniform(0, 1, 50)
    near = a + rng.normal(0, 0.01, 50)
    far = a + 0.2 + rng.normal(0, 0.01, 50)
    assert stats.tost(as_dict(a), as_dict(near), margin=0.05).equivalent is True
    result = stats.tost(as_dict(a), as_dict(far), margin=0.05)
    assert result.equivalent is False and result.p_value > 0.5


def test_mismatched_queries_raise() -> None:
    a = {f"q{i}": 0.5 for i in range(5)}
    b = {f"q{i}": 0.5 for i in [0, 1, 2, 3, 9]}
    for test in stats.TESTS.values():
        with pytest.raises(ValueError, match=r"1 ids only in A \(e\.g\. \['q4'\]\), 1 only in B \(e\.g\. \['q9'\]\)"):
            test(a, b)
    with pytest.raises(ValueError, match="at least 2"):
        stats.t_test({"q": 1.0}, {"q": 0.0})


def test_all_equal_inputs_do_not_crash() -> None:
    a = as_dict(np.linspace(0, 1, 12))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for test in (stats.t_test, stats.wilcoxon, stats.randomisation):
            for alternative in ALTERNATIVES:
                r = test(a, dict(a), alternative)
                assert (r.p_value, r.statistic) == (1.0, 0.0)
        assert stats.tost(a, dict(a)).equivalent is True


@pytest.mark.parametrize("method", ["bonferroni", "holm", "fdr_bh"])
def test_correction_matches_statsmodels(method: str) -> None:
    p = np.random.default_rng(8).uniform(0, 0.2, 15)
    assert stats.correct(list(p), method) == pytest.approx(list(multipletests(p, method=method)[1]), rel=1e-12)


def test_correction_none_and_unknown() -> None:
    assert stats.correct([0.01, 0.5], "none") == [0.01, 0.5]
    assert stats.correct([], "holm") == []
    with pytest.raises(ValueError, match="unknown correction"):
        stats.correct([0.1], "sidak")


SYSTEMS = {"base": 0.0, "better": 0.08, "same": 0.002}
COLLECTIONS = ["clef/de", "neuclir/fa"]
MEASURES = ["nDCG@20", "AP"]


def suite_values(n: int = 30) -> dict[tuple[str, str], list[PerQuery]]:
    rng = np.random.default_rng(9)
    out = {}
    for collection, measure in itertools.product(COLLECTIONS, MEASURES):
        base = rng.uniform(0.1, 0.9, n)
        for system, shift in SYSTEMS.items():
            values = base + shift + rng.normal(0, 0.01, n)
            out.setdefault((system, collection), []).extend(
                PerQuery(f"{collection}-{i}", measure, float(v)) for i, v in enumerate(values)
            )
    return out


@pytest.mark.parametrize(
    ("baseline", "family", "size"),
    [
        (None, "all", 12), (None, "per-measure", 6), (None, "per-collection", 6),
        ("base", "all", 8), ("base", "per-measure", 4), ("base", "per-collection", 4),
    ],
)
def test_compare_families_and_bonferroni(baseline: str | None, family: str, size: int) -> None:
    comparisons = stats.compare(suite_values(), baseline=baseline, tests=["t-test", "tost"], family=family)
    assert len(comparisons) == 2 * size * (1 if family == "all" else 2)
    names = {c.family for c in comparisons}
    assert len(names) == (2 if family == "all" else 4)
    for name in names:
        members = [c for c in comparisons if c.family == name]
        assert len(members) == size and {c.family_size for c in members} == {size}
        assert len({c.test for c in members}) == 1
    for c in comparisons:
        assert c.p_adjusted == pytest.approx(min(1.0, c.result.p_value * size))
        assert c.rejected == (c.p_adjusted < 0.05)
    pairs = {(c.system_a, c.system_b) for c in comparisons}
    if baseline:
        assert pairs == {("better", "base"), ("same", "base")}
    else:
        assert pairs == {("base", "better"), ("base", "same"), ("better", "same")}


def test_compare_decisions_and_frame() -> None:
    comparisons = stats.compare(suite_values(), baseline="base", tests=["t-test", "tost"], correction="holm")
    by = {(c.system_a, c.test) for c in comparisons if c.rejected}
    assert ("better", "t-test") in by and ("same", "tost") in by and ("better", "tost") not in by
    tost = [c for c in comparisons if c.test == "tost"]
    assert all(c.result.equivalent == c.equivalent and c.significant is None for c in tost)
    holm = multipletests([c.result.p_value for c in tost], method="holm")[1]
    assert [c.p_adjusted for c in tost] == pytest.approx(list(holm))

    frame = stats.comparisons_frame(comparisons)
    assert list(frame.columns) == stats.COLUMNS and len(frame) == len(comparisons) == 16
    assert frame["p_adjusted"].tolist() == [c.p_adjusted for c in comparisons]
    assert set(frame["family"]) == {"t-test:all", "tost:all"} and set(frame["family_size"]) == {8}
    assert stats.comparisons_frame([]).columns.tolist() == stats.COLUMNS


def test_compare_correction_none_and_all_equal() -> None:
    values = suite_values()
    values[("clone", "clef/de")] = list(values[("base", "clef/de")])
    values[("clone", "neuclir/fa")] = list(values[("base", "neuclir/fa")])
    comparisons = stats.compare(
        values, baseline="base", tests=list(stats.TESTS), measures=["AP"], correction="none", family="per-collection"
    )
    assert all(c.p_adjusted == c.result.p_value for c in comparisons)
    clone = [c for c in comparisons if c.system_a == "clone"]
    p_values = {c.test: c.result.p_value for c in clone if c.test != "tost"}
    assert p_values == {"t-test": 1.0, "wilcoxon": 1.0, "randomisation": 1.0}
    assert all(c.equivalent for c in clone if c.test == "tost")


def test_compare_rejects_incomplete_input() -> None:
    values = suite_values()
    with pytest.raises(ValueError, match="baseline"):
        stats.compare(values, baseline="nope")
    with pytest.raises(ValueError, match="missing"):
        stats.compare({k: v for k, v in values.items() if k != ("same", "clef/de")})
    with pytest.raises(ValueError, match="missing"):
        stats.compare(values, measures=["R@1000"])
    broken = dict(values)
    broken[("same", "clef/de")] = values[("same", "clef/de")][1:]
    with pytest.raises(ValueError, match=r"base vs same on clef/de, nDCG@20: .*1 ids only in A"):
        stats.compare(broken)
    with pytest.raises(ValueError, match="unknown family"):
        stats.compare(values, family="per-system")
