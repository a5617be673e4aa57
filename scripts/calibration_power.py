#!/usr/bin/env python3
"""How many trials calibration needs so that an accurate harness passes its time claims.

The time claims of `experiments/calibration` say: the difference of medians candidate - baseline
recovers the injected sleep within +/- tolerance, judged on the claim's own 95 % bootstrap interval
(`harness.stats.delta_ci` + `delta_verdict`): the whole interval must lie inside value +/- tol.

An accurate harness (no bias) fails that claim only through noise. This script takes the noise of
measured calibration runs (each variant's values minus that variant's median: the trial-to-trial
scatter, with its real tails), builds samples of an accurate harness at n trials (baseline = noise,
candidate = injected + noise, drawn with replacement from the measured scatter, the two time metrics
of one trial drawn together), judges them with the claim's own statistic and counts how often *every*
time claim passes. The default n of calibration is the smallest n whose joint pass rate is at least
the target (95 % by default).

It also prints the normal approximation, n = (z_interval + z_pass)^2 * 2 * (pi/2) * sd^2 / tol^2
(the median's variance is pi/2 times the mean's for normal data), from the measured sd, as a check.

    .venv/bin/python scripts/calibration_power.py RUN.json [RUN.json ...] [--n 5,10,15,...] [--sims 400]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import stats
from harness.experiment import load_experiment
from harness.paths import experiments_dir

TIME_METRICS = ("build_seconds", "build_span_seconds")


def time_claims(exp) -> list[dict]:
    return [
        {
            "metric": c.metric,
            "baseline": c.baseline,
            "candidate": c.candidate,
            "value": c.value,
            "tol": c.tolerance,
        }
        for c in exp.claims
        if c.expect == "delta" and c.metric in TIME_METRICS
    ]


def scatter(paths: list[Path], variants: set[str]) -> dict[str, np.ndarray]:
    """{variant: array (rounds x metrics)} of values minus the variant's median in its run file.

    Row i of every variant is the same trial round (the runner interleaves the variants of a round),
    so drawing rows together keeps the noise a round shares, as the paired claim statistic sees it.
    Rounds missing a variant are dropped."""
    out: dict[str, list[np.ndarray]] = {}
    for p in paths:
        run = json.loads(Path(p).read_text())
        cells: dict[str, dict[int, list[float]]] = {}
        for t in run["trials"]:
            m = t.get("metrics") or {}
            if (
                t["experiment"] == "calibration"
                and t.get("status") == "ok"
                and t["variant"] in variants
                and all(m.get(k) is not None for k in TIME_METRICS)
            ):
                cells.setdefault(t["variant"], {})[int(t["trial"])] = [float(m[k]) for k in TIME_METRICS]
        if set(cells) != variants:
            continue
        rounds = sorted(set.intersection(*(set(c) for c in cells.values())))
        for v, c in cells.items():
            a = np.asarray([c[r] for r in rounds])
            out.setdefault(v, []).append(a - np.median(a, axis=0))
    return {v: np.concatenate(parts) for v, parts in out.items()}


def pass_rate(noise: dict[str, np.ndarray], claims: list[dict], n: int, sims: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    passes = dict.fromkeys(range(len(claims)), 0)
    joint = 0
    for s in range(sims):
        rows = rng.integers(0, len(next(iter(noise.values()))), size=n)  # whole rounds
        draws = {v: a[rows] for v, a in noise.items()}
        ok_all = True
        for i, c in enumerate(claims):
            k = TIME_METRICS.index(c["metric"])
            b = draws[c["baseline"]][:, k]
            cand = draws[c["candidate"]][:, k] + c["value"]
            d = stats.delta_ci(b, cand, seed=s, with_p=False, paired=True)
            ok = stats.delta_verdict(d["low"], d["high"], c["value"], c["tol"]) == "supported"
            passes[i] += ok
            ok_all &= ok
        joint += ok_all
    return {"n": n, "joint": joint / sims, "per_claim": [passes[i] / sims for i in range(len(claims))]}


def normal_n(sd_b: float, sd_c: float, tol: float, conf: float = 0.95, target: float = 0.95) -> int:
    """Trials per variant so the 95 % interval of a median difference fits in +/-tol with prob. `target`."""
    from statistics import NormalDist

    z_i = NormalDist().inv_cdf(0.5 + conf / 2)
    z_p = NormalDist().inv_cdf(0.5 + target / 2)
    var1 = (math.pi / 2) * (sd_b**2 + sd_c**2)  # n * Var(median_c - median_b), unpaired
    return math.ceil((z_i + z_p) ** 2 * var1 / tol**2)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="run files with calibration sleep trials")
    ap.add_argument("--n", default="5,7,10,15,20,25,30,40", help="trial counts to simulate")
    ap.add_argument("--sims", type=int, default=400)
    ap.add_argument("--target", type=float, default=0.95)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    a = ap.parse_args(argv)
    exp = load_experiment(experiments_dir() / "calibration")
    claims = time_claims(exp)
    variants = {c["baseline"] for c in claims} | {c["candidate"] for c in claims}
    noise = scatter(a.runs, variants)
    missing = variants - set(noise)
    if missing:
        print(
            f"calibration_power: no trials of {', '.join(sorted(missing))} in the given runs", file=sys.stderr
        )
        return 2
    sd = {v: [float(x) for x in noise[v].std(axis=0, ddof=1)] for v in sorted(noise)}
    mad_sd = {v: [float(x) for x in 1.4826 * np.median(np.abs(noise[v]), axis=0)] for v in sorted(noise)}
    normal = [
        normal_n(
            sd[c["baseline"]][TIME_METRICS.index(c["metric"])],
            sd[c["candidate"]][TIME_METRICS.index(c["metric"])],
            c["tol"],
        )
        for c in claims
    ]
    grid = [pass_rate(noise, claims, int(n), a.sims, a.seed) for n in a.n.split(",")]
    chosen = next((g["n"] for g in grid if g["joint"] >= a.target), None)
    out = {
        "runs": [str(p) for p in a.runs],
        "trials_per_variant": {v: len(noise[v]) for v in sorted(noise)},
        "metrics": list(TIME_METRICS),
        "sd": sd,
        "sd_from_mad": mad_sd,
        "claims": [
            f"{c['metric']}: {c['candidate']} - {c['baseline']} = {c['value']} +/- {c['tol']}" for c in claims
        ],
        "normal_approximation_n": normal,
        "simulated": grid,
        "target": a.target,
        "smallest_n_meeting_target": chosen,
        "sims": a.sims,
    }
    if a.json:
        print(json.dumps(out, indent=2))
        return 0
    print("trials per variant:", out["trials_per_variant"])
    for v in sorted(noise):
        print(
            f"  {v}: sd "
            + ", ".join(f"{m} {s * 1000:.1f} ms" for m, s in zip(TIME_METRICS, sd[v], strict=True))
            + " | sd from MAD "
            + ", ".join(f"{s * 1000:.1f} ms" for s in mad_sd[v])
        )
    for c, nn in zip(out["claims"], normal, strict=True):
        print(f"  normal approximation: {c}: n >= {nn}")
    for g in grid:
        print(
            f"  n={g['n']:3d}: all time claims pass {g['joint']:.3f}  per claim "
            + " ".join(f"{x:.3f}" for x in g["per_claim"])
        )
    print(f"smallest n with joint pass rate >= {a.target}: {chosen}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
