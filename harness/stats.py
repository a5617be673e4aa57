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
  test (Mann-Whitney U, two-sided) gives a p-value next to it.
* The verdict comes from the interval alone: an interval that contains 1 is
  inconclusive, whatever the point estimate says.
* Outliers use hyperfine's modified z-score, ``|x - median| / MAD > 14.826``
  (``sharkdp/hyperfine`` ``src/outlier_detection.rs``). They are flagged, never dropped.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable, Sequence
from typing import Literal

import numpy as np

__all__ = [
    "OUTLIER_THRESHOLD",
    "check",
    "median_ci",
    "outliers",
    "precise_enough",
    "ratio_ci",
    "summarize",
    "verdict",
]

Verdict = Literal["supported", "not supported", "inconclusive"]
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
    return arr[~np.isnan(arr)]


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


def _mannwhitney_p(b: np.ndarray, c: np.ndarray) -> float | None:
    if b.size < 2 or c.size < 2:
        return None
    both = np.concatenate([b, c])
    if np.all(both == both[0]):
        return 1.0  # every value identical: no evidence of any difference
    from scipy import stats as sps  # imported here: scipy.stats costs ~1.5 s to import

    return float(sps.mannwhitneyu(c, b, alternative="two-sided").pvalue)


def ratio_ci(
    baseline: Iterable[float],
    candidate: Iterable[float],
    *,
    n_boot: int = 2000,
    seed: int = 0,
    conf: float = 0.95,
    with_p: bool = True,
) -> dict[str, float | int | str | None]:
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
        Mann-Whitney U p-value, None when a group has fewer than 2 values and 1.0 when
        all values are identical.
    """
    if not 0 < conf < 1:
        raise ValueError(f"conf must be between 0 and 1, got {conf}")
    b, c = _clean(baseline), _clean(candidate)
    out: dict[str, float | int | str | None] = {
        "ratio": None,
        "low": None,
        "high": None,
        "p_value": _mannwhitney_p(b, c) if with_p else None,
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
    rng = np.random.default_rng(seed)
    boot_b = np.median(b[rng.integers(0, b.size, size=(n_boot, b.size))], axis=1)
    boot_c = np.median(c[rng.integers(0, c.size, size=(n_boot, c.size))], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = boot_c / boot_b  # a resampled baseline median of 0 gives inf
    ratios = ratios[~np.isnan(ratios)]
    alpha = (1 - conf) / 2
    low, high = np.quantile(ratios, [alpha, 1 - alpha])
    out["low"], out["high"] = float(low), float(high)
    return out


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
        return "inconclusive"
    if ratio_low > ratio_high:
        raise ValueError(f"interval is reversed: [{ratio_low}, {ratio_high}]")
    if expect == "lower":
        if ratio_high < 1:
            return "supported"
        return "not supported" if ratio_low >= 1 else "inconclusive"
    if ratio_low > 1:
        return "supported"
    return "not supported" if ratio_high <= 1 else "inconclusive"


def check(values: Iterable[float], op: str, value: float, *, use_ci: bool = False) -> Verdict:
    """Judge an absolute claim such as "median stop time < 1 s" or "uid != 0".

    By default the sample median is compared with ``value``. With ``use_ci`` the
    median's 95 % interval must satisfy the comparison at both ends to be supported
    and fail it at both ends to be not supported; anything else is inconclusive.
    An empty sample is inconclusive.
    """
    try:
        cmp = _OPS[op]
    except KeyError:
        raise ValueError(f"op must be one of {', '.join(_OPS)}; got {op!r}")
    x = _clean(values)
    if x.size == 0:
        return "inconclusive"
    if not use_ci:
        return "supported" if cmp(float(np.median(x)), value) else "not supported"
    ci = median_ci(x)
    if ci is None:
        return "inconclusive"
    low, high = ci
    if op in ("==", "!=") and low != high:
        # an interval decides equality only when it excludes the value
        if low <= value <= high:
            return "inconclusive"
        return "not supported" if op == "==" else "supported"
    ends = (cmp(low, value), cmp(high, value))
    if all(ends):
        return "supported"
    return "not supported" if not any(ends) else "inconclusive"


def _binom_half_cdf(n: int) -> np.ndarray:
    """P(Binomial(n, 1/2) <= k) for k = 0..n, exactly (integer arithmetic, then one division)."""
    from itertools import accumulate
    from math import comb

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
