"""Unit tests of harness.stats with answers known in advance."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from harness import stats

# ---- summarize -------------------------------------------------------------------


def test_summarize_known_values():
    """Median, quartiles, MAD, mean and CV of a small sample with a far outlier."""
    s = stats.summarize([1, 2, 3, 4, 100])
    assert s["n"] == 5
    assert (s["median"], s["q1"], s["q3"], s["iqr"], s["mad"]) == (3, 2, 3 + 1, 2, 1)
    assert (s["min"], s["max"], s["mean"]) == (1, 100, 22)
    assert s["cv"] == pytest.approx(np.std([1, 2, 3, 4, 100], ddof=1) / 22)


def test_summarize_interpolates_quartiles():
    """Quartiles of 1..4 are 1.75 and 3.25 (linear interpolation)."""
    s = stats.summarize(np.array([4.0, 1.0, 3.0, 2.0]))
    assert (s["q1"], s["median"], s["q3"]) == (1.75, 2.5, 3.25)


@pytest.mark.parametrize(("values", "n"), [([5.0], 1), ([0.0, 0.0], 2), ([-1.0, 1.0], 2)])
def test_summarize_cv_undefined(values, n):
    """CV is None for one value or a zero mean."""
    s = stats.summarize(values)
    assert s["n"] == n and s["cv"] is None


def test_summarize_empty_and_nan():
    """NaN is dropped; an empty sample has n=0 and nothing else."""
    assert stats.summarize([])["median"] is None
    assert stats.summarize([float("nan")]) == stats.summarize([])
    assert stats.summarize([1.0, float("nan"), 3.0])["median"] == 2.0
    assert stats.summarize(pd.Series([1.0, 2.0, None]))["n"] == 2


# ---- ratio_ci ------------------------------------------------------------------


def test_identical_samples_give_an_exact_ratio_and_a_degenerate_interval():
    """Byte-identical sizes: ratio 1 exactly, interval [1, 1], and no p-value (nothing varies)."""
    r = stats.ratio_ci([1000] * 5, [1000] * 5)
    assert (r["ratio"], r["low"], r["high"], r["p_value"]) == (1.0, 1.0, 1.0, None)
    assert stats.verdict(r["low"], r["high"], "lower") == "not supported"


def test_constant_but_different_groups():
    """Deterministic sizes 100 vs 60: ratio 0.6 exactly, interval [0.6, 0.6], supported, no p-value."""
    r = stats.ratio_ci([100] * 5, [60] * 5)
    assert (r["ratio"], r["low"], r["high"]) == (0.6, 0.6, 0.6)
    assert r["p_value"] is None
    assert stats.verdict(r["low"], r["high"], "lower") == "supported"
    assert stats.verdict(r["low"], r["high"], "higher") == "not supported"


def test_clearly_separated_samples_are_supported():
    """Candidate about half the baseline: the interval holds 0.5 and excludes 1."""
    rng = np.random.default_rng(7)
    base, cand = rng.normal(10, 0.2, 10), rng.normal(5, 0.1, 10)
    r = stats.ratio_ci(base, cand)
    assert r["ratio"] == pytest.approx(np.median(cand) / np.median(base))
    assert r["low"] < 0.5 < r["high"] < 0.6
    exact = sps.mannwhitneyu(cand, base, alternative="two-sided", method="exact").pvalue
    assert r["p_value"] == pytest.approx(exact)
    assert r["p_value"] < 0.001
    assert stats.verdict(r["low"], r["high"], "lower") == "supported"
    assert stats.verdict(r["low"], r["high"], "higher") == "not supported"


def test_overlapping_noise_is_inconclusive():
    """Two noisy samples around the same value: the interval crosses 1."""
    base = [10.0, 12.0, 9.0, 11.0, 13.0]
    cand = [11.0, 9.5, 12.5, 10.0, 12.0]
    r = stats.ratio_ci(base, cand)
    assert r["low"] < 1 < r["high"]
    assert r["p_value"] > 0.5
    assert stats.verdict(r["low"], r["high"], "lower") == "inconclusive"
    assert stats.verdict(r["low"], r["high"], "higher") == "inconclusive"


def test_interval_rarely_excludes_1_when_there_is_no_effect():
    """Under no effect, a 95 % interval excludes 1 in roughly 5 % of samples, not more than 10 %."""
    rng = np.random.default_rng(2024)
    reps = 300
    excluded = 0
    for k in range(reps):
        a, b = rng.lognormal(0, 0.3, 8), rng.lognormal(0, 0.3, 8)
        r = stats.ratio_ci(a, b, n_boot=500, seed=k)
        excluded += not (r["low"] <= 1 <= r["high"])
    assert excluded / reps <= 0.10


def test_interval_narrows_with_confidence():
    """An 80 % interval lies inside the 95 % one."""
    rng = np.random.default_rng(3)
    a, b = rng.normal(10, 1, 12), rng.normal(9, 1, 12)
    wide, narrow = stats.ratio_ci(a, b, conf=0.95), stats.ratio_ci(a, b, conf=0.80)
    assert wide["low"] <= narrow["low"] < narrow["high"] <= wide["high"]


def test_bootstrap_is_seeded():
    """The same seed gives the same interval; another seed a slightly different one."""
    rng = np.random.default_rng(11)
    a, b = rng.normal(10, 1, 10), rng.normal(9, 1, 10)
    assert stats.ratio_ci(a, b, seed=5) == stats.ratio_ci(a, b, seed=5)
    assert stats.ratio_ci(a, b, seed=5)["low"] != stats.ratio_ci(a, b, seed=6)["low"]


def test_zero_baseline_has_no_ratio():
    """A baseline median of 0 gives ratio None and says why."""
    r = stats.ratio_ci([0, 0, 1], [1, 2, 3])
    assert r["ratio"] is None and r["low"] is None and r["high"] is None
    assert "baseline" in r["reason"]
    assert stats.verdict(r["low"], r["high"], "lower") == "inconclusive"


def test_single_values_have_a_ratio_but_no_interval():
    """n=1 per group: the ratio, no interval and no p-value."""
    r = stats.ratio_ci([10.0], [5.0])
    assert r["ratio"] == 0.5
    assert (r["low"], r["high"], r["p_value"]) == (None, None, None)
    assert r["reason"]


def test_empty_group():
    """An empty group gives no ratio and names the group."""
    r = stats.ratio_ci([], [1.0, 2.0])
    assert r["ratio"] is None and "baseline" in r["reason"] and r["n_baseline"] == 0


def test_bad_confidence_level():
    """conf outside (0, 1) is a programming error."""
    with pytest.raises(ValueError):
        stats.ratio_ci([1, 2], [1, 2], conf=95)


# ---- verdict and check ----------------------------------------------------------


@pytest.mark.parametrize(
    ("low", "high", "expect", "expected"),
    [
        (0.8, 0.99, "lower", "supported"),
        (0.9, 1.1, "lower", "inconclusive"),
        (0.9, 1.0, "lower", "inconclusive"),
        (1.0, 1.2, "lower", "not supported"),
        (1.0, 1.0, "lower", "not supported"),
        (1.01, 1.2, "higher", "supported"),
        (1.0, 1.2, "higher", "inconclusive"),
        (0.8, 1.0, "higher", "not supported"),
        (1.0, 1.0, "higher", "not supported"),
        (None, None, "lower", "inconclusive"),
        (math.nan, 1.0, "higher", "inconclusive"),
    ],
)
def test_verdict_table(low, high, expect, expected):
    """Supported only when the whole interval is on the claimed side of 1."""
    assert stats.verdict(low, high, expect) == expected


def test_verdict_rejects_unknown_direction_and_reversed_interval():
    """expect must be lower/higher; low must not exceed high."""
    with pytest.raises(ValueError):
        stats.verdict(0.5, 0.6, "smaller")
    with pytest.raises(ValueError):
        stats.verdict(0.7, 0.6, "lower")


@pytest.mark.parametrize(
    ("values", "op", "value", "expected"),
    [
        ([0.4, 0.5, 0.6], "<", 1.0, "supported"),
        ([1.4, 1.5, 1.6], "<", 1.0, "not supported"),
        ([1.0, 1.0, 1.0], "<=", 1.0, "supported"),
        ([0, 0, 0], "==", 0, "supported"),
        ([1000, 1000], "!=", 0, "supported"),
        ([1000, 1000], "==", 0, "not supported"),
        ([2, 3, 4], ">", 2.5, "not supported"),  # one trial of three misses
        ([3, 3, 4], ">", 2.5, "supported"),
        ([2, 3, 4], ">=", 3.5, "not supported"),
        ([], "<", 1.0, "inconclusive"),
    ],
)
def test_check_compares_the_median(values, op, value, expected):
    """Exact absolute claims hold only when every trial meets the comparison (k = n)."""
    assert stats.check(values, op, value) == expected


def test_check_with_interval():
    """use_ci: the median's interval must clear the threshold at both ends."""
    clear = [0.50, 0.51, 0.49, 0.52, 0.48, 0.50, 0.51]
    straddle = [0.8, 0.9, 1.0, 1.1, 1.2, 0.95, 1.05]
    assert stats.check(clear, "<", 1.0, use_ci=True) == "supported"
    assert stats.check(straddle, "<", 1.0, use_ci=True) == "inconclusive"
    assert stats.check(straddle, ">", 2.0, use_ci=True) == "not supported"
    assert stats.check([0] * 6, "==", 0, use_ci=True) == "supported"
    assert stats.check(straddle, "!=", 5, use_ci=True) == "supported"
    assert stats.check([1, 2], "<", 5, use_ci=True) == "supported"  # n < 6: the range of the trials
    assert stats.check([1, 6], "<", 5, use_ci=True) == "inconclusive"
    assert stats.check([1], "<", 5, use_ci=True) == "inconclusive"  # a time needs n >= 2


def test_check_rejects_unknown_operator():
    """Only the six comparison operators are accepted."""
    with pytest.raises(ValueError):
        stats.check([1], "=~", 1)


# ---- median_ci and precise_enough -----------------------------------------------


@pytest.mark.parametrize(
    ("n", "ranks"),
    [(5, None), (6, (1, 6)), (8, (1, 8)), (9, (2, 8)), (10, (2, 9)), (20, (6, 15)), (30, (10, 21))],
)
def test_median_ci_order_statistics(n, ranks):
    """The ranks of the 95 % interval match the binomial table (e.g. n=20 -> 6th and 15th)."""
    x = np.arange(1.0, n + 1)[::-1]  # order of input must not matter
    assert stats.median_ci(x) == (None if ranks is None else tuple(float(r) for r in ranks))


def test_median_ci_coverage_is_at_least_the_level():
    """The chosen ranks cover the true median with probability >= 95 % (exact binomial)."""
    for n in range(6, 60):
        lo, hi = stats.median_ci(np.arange(1.0, n + 1))
        j = int(lo)
        assert hi == n + 1 - j
        coverage = 1 - 2 * sps.binom.cdf(j - 1, n, 0.5)
        assert coverage >= 0.95
        assert 1 - 2 * sps.binom.cdf(j, n, 0.5) < 0.95 or j == n // 2  # the tightest such ranks


def test_precise_enough():
    """Tight samples stop --trials auto; wide or tiny ones do not."""
    tight = [100.0, 100.5, 99.5, 100.2, 99.8, 100.1, 99.9]
    wide = [80.0, 100.0, 120.0, 90.0, 110.0, 95.0, 105.0]
    assert stats.precise_enough(tight)
    assert not stats.precise_enough(wide)
    assert not stats.precise_enough(tight[:5])  # no 95 % interval below n=6
    assert stats.precise_enough(wide, rel=0.25)


# ---- outliers -------------------------------------------------------------------


def test_outliers_modified_z_score():
    """A value 4 s off a tight sample is flagged; the rest are not."""
    assert stats.outliers([1.0, 1.01, 0.99, 1.0, 5.0]) == [False, False, False, False, True]


def test_outliers_threshold_is_hyperfines():
    """|x - median| / MAD just above 14.826 is an outlier, just below is not."""
    base = [9.0, 10.0, 11.0, 10.0, 10.0, 9.0, 11.0]  # median 10, MAD 1
    assert stats.outliers([*base, 10 + 14.8])[-1] is False
    assert stats.outliers([*base, 10 + 14.9])[-1] is True


def test_outliers_with_zero_mad_and_nan():
    """MAD 0: anything off the median is an outlier; NaN never is."""
    assert stats.outliers([3.0, 3.0, 3.0, 4.0, float("nan")]) == [False, False, False, True, False]
    assert stats.outliers([]) == []


# ---- issue 11: all-trial checks, exact p-values, detectable effects --------------


def test_flag_true_in_four_of_five_trials_fails_an_equals_yes_check():
    """A flag that holds in 4 of 5 trials does not support `== yes` (every trial must hold)."""
    d = stats.check_detail([1, 1, 0, 1, 1], "==", 1)
    assert d["verdict"] == "not supported" and (d["k"], d["n"]) == (4, 5)
    assert stats.check([1] * 5, "==", 1) == "supported"
    assert stats.check([0, 0, 1, 0, 0], "==", 0) == "not supported"  # one leaking trial is a leak


@pytest.mark.parametrize("seed", range(6))
def test_p_value_matches_scipy_exact_on_untied_samples(seed):
    """Untied samples of 3-12 values: the p-value is scipy's exact Mann-Whitney p-value."""
    rng = np.random.default_rng(seed)
    b = rng.normal(0, 1, 3 + seed)
    c = rng.normal(0.8, 1, 12 - seed)
    want = sps.mannwhitneyu(c, b, alternative="two-sided", method="exact").pvalue
    assert stats.rank_p_value(b, c) == pytest.approx(want, rel=1e-12)


def _brute_force_p(b, c) -> float:
    """Two-sided (2 x smaller tail) permutation p-value of the mid-rank sum over every split (reference)."""
    from itertools import combinations

    both = np.concatenate([c, b])
    ranks = sps.rankdata(both)  # mid-ranks for ties
    n, k = len(both), len(c)
    observed = ranks[:k].sum()
    sums = np.array([ranks[list(s)].sum() for s in combinations(range(n), k)])
    return float(min(1.0, 2 * min(np.mean(sums >= observed - 1e-9), np.mean(sums <= observed + 1e-9))))


@pytest.mark.parametrize(
    ("b", "c"),
    [
        ([10, 10, 10, 11, 11], [12, 12, 13, 13, 13]),  # 5 vs 5, heavy ties: the floor is 2/252
        ([1, 2, 2, 3], [2, 3, 3, 4, 4, 5]),
        ([5, 5, 6], [5, 6, 6, 7]),
    ],
)
def test_p_value_on_tied_samples_is_an_exact_permutation_test(b, c):
    """Tied samples: the p-value is the exact permutation p-value, never below the exact floor."""
    p = stats.rank_p_value(b, c)
    assert p == pytest.approx(_brute_force_p(np.array(b, float), np.array(c, float)))
    assert p >= 2 / math.comb(len(b) + len(c), len(b)) - 1e-12
    want = sps.permutation_test(
        (np.array(c, float), np.array(b, float)),
        lambda x, y: sps.mannwhitneyu(x, y).statistic - len(x) * len(y) / 2,
        permutation_type="independent",
        alternative="two-sided",
        n_resamples=np.inf,
    ).pvalue
    assert p == pytest.approx(want)


def test_five_vs_five_fully_separated_with_ties_is_not_below_the_exact_floor():
    """The issue's case: 5 vs 5 separated sizes with ties gave p = 0.004; the exact floor is 0.0079."""
    p = stats.rank_p_value([100, 100, 101, 100, 101], [50, 51, 50, 50, 51])
    assert p == pytest.approx(2 / 252)


def test_no_p_value_when_values_do_not_vary():
    """Sizes identical in every trial (within each group) get no p-value at all."""
    assert stats.rank_p_value([7] * 5, [7] * 5) is None
    assert stats.rank_p_value([7] * 5, [9] * 5) is None
    assert stats.rank_p_value([7], [9, 10]) is None


def test_large_tied_samples_use_seeded_permutations():
    """Beyond 100 000 splits the p-value is a seeded Monte-Carlo permutation p-value near scipy's asymptotic one."""
    rng = np.random.default_rng(3)
    b = np.round(rng.normal(0, 1, 20), 1)
    c = np.round(rng.normal(0.5, 1, 20), 1)
    p = stats.rank_p_value(b, c)
    assert p == stats.rank_p_value(b, c)  # seeded: reproducible
    assert p == pytest.approx(sps.mannwhitneyu(c, b, method="asymptotic").pvalue, abs=0.02)


def test_min_detectable_shrinks_with_n():
    """The detectable shift follows the spread and falls as 1/sqrt(n)."""
    rng = np.random.default_rng(0)
    small = stats.min_detectable(rng.normal(1, 0.03, 5), rng.normal(1, 0.03, 5))
    large = stats.min_detectable(rng.normal(1, 0.03, 80), rng.normal(1, 0.03, 80))
    assert 0.03 < small < 0.12 and large < small / 2
    assert stats.min_detectable([1.0], [1.0, 2.0]) is None


def test_ratio_and_delta_intervals_come_from_one_bootstrap():
    """ratio_ci and delta_ci take their intervals from the same seeded resamples (stats.bootstrap_medians)."""
    b = np.array([10.0, 11.0, 9.5, 10.2, 10.8])
    c = np.array([12.0, 12.5, 11.8, 12.2, 13.0])
    boot_b, boot_c = stats.bootstrap_medians(b, c, n_boot=500, seed=7)
    ratio = stats.ratio_ci(b, c, n_boot=500, seed=7, with_p=False)
    delta = stats.delta_ci(b, c, n_boot=500, seed=7, with_p=False)
    assert (ratio["low"], ratio["high"]) == tuple(
        float(x) for x in np.quantile(boot_c / boot_b, [0.025, 0.975])
    )
    assert (delta["low"], delta["high"]) == tuple(
        float(x) for x in np.quantile(boot_c - boot_b, [0.025, 0.975])
    )
    paired_b, paired_c = stats.bootstrap_medians(b, c, n_boot=50, seed=7, paired=True)
    assert paired_b.shape == paired_c.shape == (50,)


def test_delta_p_value_is_the_rank_test():
    """delta_ci's p-value is stats.rank_p_value of the two groups (no ratio_ci run just for it)."""
    b, c = [1.0, 1.1, 0.9, 1.0, 1.05], [2.0, 2.1, 1.9, 2.0, 2.05]
    assert stats.delta_ci(b, c)["p_value"] == stats.rank_p_value(b, c)
    assert stats.delta_ci(b, c, with_p=False)["p_value"] is None
