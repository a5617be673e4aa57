"""Statistics for trials: spread, ratio confidence intervals, significance, verdicts.

Pure functions over sequences of numbers (lists, numpy arrays, pandas Series). NaN
values (a trial that produced no number) are dropped before anything is computed, so
``n`` is always the number of usable values.

Methods, and why:

* Location is the median and spread is IQR and MAD, because build times have
  long right tails (one slow trial should not move the answer). ``cv`` is the sample
  standard deviation over the mean, the figure pyperf warns on.
* The effect between two variants is the ratio of medians, candidate / baseline, with a
  percentile bootstrap interval that resamples each group independently. The rank
  test (Mann-Whitney U, two-sided) gives a p-value next to it: exact for untied data
  (scipy's ``method="exact"``), an exact permutation test over the mid-ranks when values
  tie (complete enumeration up to 100 000 splits, else 20 000 seeded random permutations),
  and none at all when neither group varies (a size that is the same in every trial carries
  no sampling question).
* The verdict comes from the interval alone: an interval that contains 1 is
  inconclusive, whatever the point estimate says.
* Absolute checks: an exact metric (flag, size, count) holds only when every trial holds
  (k = n); a time is judged on the 95 % interval of its median (order statistics from n = 6,
  the range of the trials below that) and needs n >= 2.
* ``min_detectable`` is the smallest shift of the median a comparison could have detected
  (two-sided 5 %, power 80 %) at its n and robust spread: what "no difference" can mean.
* Outliers use hyperfine's modified z-score, ``|x - median| / MAD > 14.826``
  (``sharkdp/hyperfine`` ``src/outlier_detection.rs``). They are flagged, never dropped.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable, Sequence
from itertools import accumulate, combinations
from math import comb
from statistics import NormalDist
from typing import TypedDict

import numpy as np

from harness.verdicts import Verdict

__all__ = [
    "OUTLIER_THRESHOLD",
    "CheckDetail",
    "Verdict",
    "bootstrap_medians",
    "check",
    "check_detail",
    "delta_ci",
    "delta_verdict",
    "median_ci",
    "min_detectable",
    "outliers",
    "precise_enough",
    "rank_p_value",
    "ratio_ci",
    "summarize",
    "verdict",
]


class RatioCI(TypedDict):
    """What `ratio_ci` returns (see there)."""

    ratio: float | None
    low: float | None
    high: float | None
    p_value: float | None
    n_baseline: int
    n_candidate: int
    reason: str | None


class CheckDetail(TypedDict):
    """What `check_detail` returns (see there)."""

    verdict: Verdict
    k: int
    n: int
    low: float | None
    high: float | None
    reason: str | None


OUTLIER_THRESHOLD = 1.4826 * 10  # hyperfine: a very generous 10 "sigmas" in MAD units

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


def _clean(values: Iterable[float] | np.ndarray) -> np.ndarray:
    arr = np.asarray(values if isinstance(values, np.ndarray) else list(values), dtype=float).ravel()
    clean: np.ndarray = arr[~np.isnan(arr)]
    return clean


def summarize(values: Iterable[float]) -> dict[str, float | int | None]:
    """Median and spread of one sample.

    Returns:
        ``n, median, q1, q3, iqr, mad, min, max, mean, cv``. Quartiles use linear
        interpolation (numpy's default); ``mad`` is the raw median absolute deviation
        (multiply by 1.4826 for a normal-consistent sigma); ``cv`` is the sample stdev
        over the mean, None when n < 2 or the mean is 0. Everything but ``n`` is None
        for an empty sample.
    """
    x = _clean(values)
    n = int(x.size)
    if n == 0:
        keys = ("median", "q1", "q3", "iqr", "mad", "min", "max", "mean", "cv")
        return {"n": 0, **dict.fromkeys(keys)}
    q1, med, q3 = (float(q) for q in np.quantile(x, [0.25, 0.5, 0.75]))
    mean = float(x.mean())
    cv = float(x.std(ddof=1)) / mean if n >= 2 and mean != 0 else None
    return {
        "n": n,
        "median": med,
        "q1": q1,
        "q3": q3,
        "iqr": q3 - q1,
        "mad": float(np.median(np.abs(x - med))),
        "min": float(x.min()),
        "max": float(x.max()),
        "mean": mean,
        "cv": cv,
    }


EXACT_SPLITS = 100_000  # complete enumeration of the permutation distribution up to this many splits
N_PERM = 20_000


def rank_p_value(
    baseline: Iterable[float], candidate: Iterable[float], *, n_perm: int = N_PERM, seed: int = 0
) -> float | None:
    """Two-sided Mann-Whitney p-value that is right for small samples and ties.

    None when a group has fewer than 2 values or when neither group varies (a p-value on values
    that are identical in every trial answers no question). Without ties: scipy's exact
    distribution (``mannwhitneyu(method="exact")``). With ties: a permutation test of the
    candidate's mid-rank sum R, two-sided as scipy does it (2 x the smaller tail, at most 1), over
    every split of the pooled values when there are at most ``EXACT_SPLITS`` of them, else over
    ``n_perm`` seeded random permutations (each tail (1 + hits) / (1 + n_perm)).
    """
    b, c = _clean(baseline), _clean(candidate)
    if b.size < 2 or c.size < 2:
        return None
    if np.all(b == b[0]) and np.all(c == c[0]):
        return None
    both = np.concatenate([c, b])
    if np.unique(both).size == both.size:
        from scipy import stats as sps  # imported here: scipy.stats costs ~1.5 s to import

        return float(sps.mannwhitneyu(c, b, alternative="two-sided", method="exact").pvalue)
    return _permutation_p(both, c.size, n_perm, seed)


def _midranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="stable")
    ranks = np.empty(x.size, dtype=float)
    ranks[order] = np.arange(1, x.size + 1, dtype=float)
    for v in np.unique(x):  # ties share the mean of their ranks
        sel = x == v
        if sel.sum() > 1:
            ranks[sel] = ranks[sel].mean()
    return ranks


def _permutation_p(both: np.ndarray, n_c: int, n_perm: int, seed: int) -> float:
    ranks = _midranks(both)
    n = both.size
    observed = ranks[:n_c].sum()
    tol = 1e-9 * max(1.0, observed)
    if comb(n, n_c) <= EXACT_SPLITS:
        idx = np.fromiter((i for split in combinations(range(n), n_c) for i in split), dtype=np.int64)
        sums = ranks[idx.reshape(-1, n_c)].sum(axis=1)
        upper, lower = np.mean(sums >= observed - tol), np.mean(sums <= observed + tol)
    else:
        rng = np.random.default_rng(seed)
        sums = rng.permuted(np.tile(ranks, (n_perm, 1)), axis=1)[:, :n_c].sum(axis=1)
        upper = (1 + np.sum(sums >= observed - tol)) / (1 + n_perm)
        lower = (1 + np.sum(sums <= observed + tol)) / (1 + n_perm)
    return float(min(1.0, 2 * min(upper, lower)))


def min_detectable(
    baseline: Iterable[float], candidate: Iterable[float], *, alpha: float = 0.05, power: float = 0.8
) -> float | None:
    """Smallest shift of the median (in the metric's unit) the comparison could detect.

    ``(z_(1-alpha/2) + z_power) * sqrt(pi/2) * sqrt(s_b^2 / n_b + s_c^2 / n_c)``, with s the
    normal-consistent MAD of each group (its sample sd when the MAD is 0; pi/2 is the median's
    variance factor). None when a group has fewer than 2 values.
    """
    b, c = _clean(baseline), _clean(candidate)
    if b.size < 2 or c.size < 2:
        return None

    def s(x: np.ndarray) -> float:
        mad = 1.4826 * float(np.median(np.abs(x - np.median(x))))
        return mad if mad > 0 else float(x.std(ddof=1))

    z = NormalDist().inv_cdf(1 - alpha / 2) + NormalDist().inv_cdf(power)
    return z * math.sqrt(math.pi / 2) * math.sqrt(s(b) ** 2 / b.size + s(c) ** 2 / c.size)


def ratio_ci(
    baseline: Iterable[float],
    candidate: Iterable[float],
    *,
    n_boot: int = 2000,
    seed: int = 0,
    conf: float = 0.95,
    with_p: bool = True,
) -> RatioCI:
    """Ratio of medians candidate / baseline with a bootstrap percentile interval.

    ``with_p=False`` skips the rank test (``p_value`` None), for quick summaries.

    Each group is resampled with replacement independently (``n_boot`` times, seeded,
    vectorised); the interval is the (1-conf)/2 and (1+conf)/2 percentiles of the
    resampled ratios. Identical values give the degenerate interval [r, r].

    Returns:
        ``ratio, low, high, p_value, n_baseline, n_candidate, reason``. ``ratio`` is None
        (with ``reason``) when a group is empty or the baseline median is 0; ``low``
        and ``high`` are None (with ``reason``) when a group has fewer than 2 values,
        because one value says nothing about spread. ``p_value`` is the two-sided
        Mann-Whitney U p-value (`rank_p_value`), None when a group has fewer than 2 values or
        neither group varies.
    """
    if not 0 < conf < 1:
        raise ValueError(f"conf must be between 0 and 1, got {conf}")
    b, c = _clean(baseline), _clean(candidate)
    out: RatioCI = {
        "ratio": None,
        "low": None,
        "high": None,
        "p_value": rank_p_value(b, c) if with_p else None,
        "n_baseline": int(b.size),
        "n_candidate": int(c.size),
        "reason": None,
    }
    if b.size == 0 or c.size == 0:
        out["reason"] = "no values in " + ("baseline" if b.size == 0 else "candidate")
        return out
    mb, mc = float(np.median(b)), float(np.median(c))
    if mb == 0:
        out["reason"] = "baseline median is 0"
        return out
    ratio = mc / mb
    out["ratio"] = ratio
    if b.size < 2 or c.size < 2:
        out["reason"] = "fewer than 2 values in a group: no interval"
        return out
    if np.all(b == b[0]) and np.all(c == c[0]):
        out["low"] = out["high"] = ratio
        return out
    boot_b, boot_c = bootstrap_medians(b, c, n_boot=n_boot, seed=seed)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = boot_c / boot_b  # a resampled baseline median of 0 gives inf
    out["low"], out["high"] = _percentile_interval(ratios[~np.isnan(ratios)], conf)
    return out


def bootstrap_medians(
    b: np.ndarray, c: np.ndarray, *, n_boot: int, seed: int, paired: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """`n_boot` resampled medians of each group (with replacement, seeded, vectorised): the one
    bootstrap behind `ratio_ci` and `delta_ci`. Groups are resampled independently, or, when
    `paired` and of equal size, with the same indices (value i of both groups is one trial round)."""
    rng = np.random.default_rng(seed)
    idx_b = rng.integers(0, b.size, size=(n_boot, b.size))
    idx_c = idx_b if paired and b.size == c.size else rng.integers(0, c.size, size=(n_boot, c.size))
    return np.median(b[idx_b], axis=1), np.median(c[idx_c], axis=1)


def _percentile_interval(resampled: np.ndarray, conf: float) -> tuple[float, float]:
    """The (1-conf)/2 and (1+conf)/2 percentiles of resampled estimates."""
    alpha = (1 - conf) / 2
    low, high = np.quantile(resampled, [alpha, 1 - alpha])
    return float(low), float(high)


def delta_ci(
    baseline: Iterable[float],
    candidate: Iterable[float],
    *,
    n_boot: int = 2000,
    seed: int = 0,
    conf: float = 0.95,
    with_p: bool = True,
    paired: bool = False,
) -> dict[str, float | None]:
    """Difference of medians candidate - baseline with a percentile bootstrap interval (each group
    resampled independently, seeded), the additive twin of `stats.ratio_ci`. Identical values give
    the degenerate interval [d, d]; fewer than 2 values in a group give no interval.

    `paired`: value i of both groups comes from the same trial round (the runner interleaves the
    variants of one round), so rounds are resampled together: noise shared by a round (another
    process's load at that moment) cancels in the difference instead of widening the interval. The
    estimate is still the difference of medians."""
    b, c = _clean(baseline), _clean(candidate)
    out: dict[str, float | None] = {"delta": None, "low": None, "high": None, "p_value": None}
    if b.size == 0 or c.size == 0:
        return out
    out["delta"] = float(np.median(c) - np.median(b))
    out["p_value"] = rank_p_value(b, c) if with_p else None
    if b.size < 2 or c.size < 2:
        return out
    if np.all(b == b[0]) and np.all(c == c[0]):
        out["low"] = out["high"] = out["delta"]
        return out
    boot_b, boot_c = bootstrap_medians(b, c, n_boot=n_boot, seed=seed, paired=paired)
    out["low"], out["high"] = _percentile_interval(boot_c - boot_b, conf)
    return out


def delta_verdict(low: float | None, high: float | None, value: float, tolerance: float) -> Verdict:
    """An equivalence judgement: "supported" when the whole interval of the measured difference lies
    within value ± tolerance, "not supported" when it lies entirely outside, else "inconclusive"."""
    if low is None or high is None:
        return Verdict.INCONCLUSIVE
    lo, hi = value - tolerance, value + tolerance
    eps = 1e-9 * max(1.0, abs(value))
    if low >= lo - eps and high <= hi + eps:
        return Verdict.SUPPORTED
    if high < lo - eps or low > hi + eps:
        return Verdict.NOT_SUPPORTED
    return Verdict.INCONCLUSIVE


def verdict(ratio_low: float | None, ratio_high: float | None, expect: str) -> Verdict:
    """Judge a claim about candidate / baseline from the interval of the ratio.

    Args:
        ratio_low, ratio_high: the confidence interval of candidate / baseline.
        expect: ``"lower"`` (the claim is candidate < baseline) or ``"higher"``.

    Returns:
        ``"supported"`` when the whole interval is on the claimed side of 1, ``"not
        supported"`` when it is entirely on the other side (or at 1, e.g. identical
        sizes), ``"inconclusive"`` when it contains 1 or is unknown.
    """
    if expect not in ("lower", "higher"):
        raise ValueError(f"expect must be 'lower' or 'higher', got {expect!r}")
    if ratio_low is None or ratio_high is None or math.isnan(ratio_low) or math.isnan(ratio_high):
        return Verdict.INCONCLUSIVE
    if ratio_low > ratio_high:
        raise ValueError(f"interval is reversed: [{ratio_low}, {ratio_high}]")
    if expect == "lower":
        if ratio_high < 1:
            return Verdict.SUPPORTED
        return Verdict.NOT_SUPPORTED if ratio_low >= 1 else Verdict.INCONCLUSIVE
    if ratio_low > 1:
        return Verdict.SUPPORTED
    return Verdict.NOT_SUPPORTED if ratio_high <= 1 else Verdict.INCONCLUSIVE


def check(values: Iterable[float], op: str, value: float, *, use_ci: bool = False) -> Verdict:
    """Judge an absolute claim such as "stop time < 1 s" or "uid != 0" (see `check_detail`).

    ``use_ci=False`` (exact metrics: flags, sizes, counts): supported only when every trial
    meets the comparison (k = n), not supported otherwise. ``use_ci=True`` (times): the
    median's 95 % interval must meet it at both ends to be supported and fail it at both ends
    to be not supported; anything else, and n < 2, is inconclusive. Empty: inconclusive.
    """
    return check_detail(values, op, value, use_ci=use_ci)["verdict"]


def check_detail(values: Iterable[float], op: str, value: float, *, use_ci: bool = False) -> CheckDetail:
    """`check` with its evidence: ``verdict, k`` (trials meeting the comparison), ``n``,
    ``low, high`` (the interval judged, times only), ``reason``."""
    try:
        cmp = _OPS[op]
    except KeyError:
        raise ValueError(f"op must be one of {', '.join(_OPS)}; got {op!r}")
    x = _clean(values)
    k = int(sum(bool(cmp(float(v), value)) for v in x))
    out: CheckDetail = {
        "verdict": Verdict.INCONCLUSIVE,
        "k": k,
        "n": int(x.size),
        "low": None,
        "high": None,
        "reason": None,
    }
    if x.size == 0:
        out["reason"] = "no values"
        return out
    if not use_ci:
        out["verdict"] = Verdict.SUPPORTED if k == x.size else Verdict.NOT_SUPPORTED
        return out
    if x.size < 2:
        out["reason"] = "a time needs two or more trials"
        return out
    ci = median_ci(x)
    if ci is None:  # n < 6: the range of the trials (coverage 1 - 2^(1-n) for the median)
        ci = (float(x.min()), float(x.max()))
        out["reason"] = f"interval = range of the {x.size} trials"
    out["low"], out["high"] = ci
    out["verdict"] = _interval_check(cmp, op, ci[0], ci[1], value)
    return out


def _interval_check(
    cmp: Callable[[float, float], bool], op: str, low: float, high: float, value: float
) -> Verdict:
    if op in ("==", "!=") and low != high:
        # an interval decides equality only when it excludes the value
        if low <= value <= high:
            return Verdict.INCONCLUSIVE
        return Verdict.NOT_SUPPORTED if op == "==" else Verdict.SUPPORTED
    ends = (cmp(low, value), cmp(high, value))
    if all(ends):
        return Verdict.SUPPORTED
    return Verdict.NOT_SUPPORTED if not any(ends) else Verdict.INCONCLUSIVE


def _binom_half_cdf(n: int) -> np.ndarray:
    """P(Binomial(n, 1/2) <= k) for k = 0..n, exactly (integer arithmetic, then one division)."""
    return np.array(list(accumulate(comb(n, k) for k in range(n + 1)))) / float(2**n)


def median_ci(values: Iterable[float], conf: float = 0.95) -> tuple[float, float] | None:
    """Distribution-free confidence interval of the median from order statistics.

    The interval is ``[x_(j), x_(n+1-j)]`` (sorted, 1-based) with the largest ``j`` whose
    coverage ``1 - 2 * P(Binomial(n, 1/2) <= j - 1)`` is still at least ``conf``. None
    when even ``[min, max]`` covers less than ``conf`` (n < 6 for 95 %).
    """
    x = np.sort(_clean(values))
    n = int(x.size)
    if n == 0:
        return None
    j = np.arange(1, n // 2 + 1)
    coverage = 1 - 2 * _binom_half_cdf(n)[j - 1]
    ok = j[coverage >= conf]
    if ok.size == 0:
        return None
    k = int(ok.max())
    return float(x[k - 1]), float(x[n - k])


def precise_enough(values: Iterable[float], rel: float = 0.03) -> bool:
    """True when the median's 95 % interval lies within +/- ``rel`` of the median.

    The stopping rule of ``--trials auto``; False while the sample is too small to
    have a 95 % interval at all (n < 6).
    """
    x = _clean(values)
    ci = median_ci(x)
    if ci is None:
        return False
    med = float(np.median(x))
    tol = rel * abs(med)
    return (med - ci[0]) <= tol and (ci[1] - med) <= tol


def outliers(values: Sequence[float] | np.ndarray) -> list[bool]:
    """Flag each value whose modified z-score exceeds hyperfine's threshold.

    ``|x - median| / MAD > 14.826``. When MAD is 0 (most values identical) any value
    different from the median is an outlier, as in hyperfine. NaN is never an outlier.
    The result has one flag per input value, in order.
    """
    raw = np.asarray(values, dtype=float).ravel()
    x = raw[~np.isnan(raw)]
    if x.size == 0:
        return [False] * raw.size
    med = float(np.median(x))
    mad = float(np.median(np.abs(x - med)))
    dev = np.abs(raw - med)
    # MAD 0: hyperfine divides by zero, so any value off the median is infinitely far
    flags = dev > 0 if mad == 0 else dev / mad > OUTLIER_THRESHOLD
    return [bool(f) for f in flags]  # NaN compares False


def range_ratio(baseline: Iterable[float], candidate: Iterable[float]) -> dict[str, float | None]:
    """Ratio of medians candidate / baseline of an exact metric (sizes, counts), with the range every
    trial allows instead of a bootstrap interval: [min(c) / max(b), max(c) / min(b)]. No p-value: an
    exact metric has no sampling noise to test; values that differ between trials (a known
    nondeterminism such as timestamps in compressed layers) widen the range, never shrink it."""
    b, c = _clean(baseline), _clean(candidate)
    out: dict[str, float | None] = {"ratio": None, "low": None, "high": None}
    if b.size == 0 or c.size == 0 or float(np.median(b)) == 0 or float(b.min()) <= 0:
        return out
    out["ratio"] = float(np.median(c) / np.median(b))
    out["low"], out["high"] = float(c.min() / b.max()), float(c.max() / b.min())
    return out


def range_delta(baseline: Iterable[float], candidate: Iterable[float]) -> dict[str, float | None]:
    """Difference of medians candidate - baseline of an exact metric with the range every trial allows,
    [min(c) - max(b), max(c) - min(b)]; no p-value (see `range_ratio`)."""
    b, c = _clean(baseline), _clean(candidate)
    out: dict[str, float | None] = {"delta": None, "low": None, "high": None}
    if b.size == 0 or c.size == 0:
        return out
    out["delta"] = float(np.median(c) - np.median(b))
    out["low"], out["high"] = float(c.min() - b.max()), float(c.max() - b.min())
    return out
