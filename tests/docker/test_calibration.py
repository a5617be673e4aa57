"""The harness recovers effects it injected itself (issue: accuracy).

Time deltas within +/-50 ms of the injected RUN sleep, size deltas exact to the byte,
compressed deltas within 1 %. Medians over 7 interleaved trials with one uncounted warm-up.
"""

from __future__ import annotations

import io

import pandas as pd

from helpers import imagebench

MiB = 1 << 20


def test_calibration_recovers_injected_effects(lab, tmp_path):
    res = tmp_path / "results"
    p = imagebench(
        "run", "calibration", "--trials", "7", "--warmup", results=res, experiments=None, timeout=1200
    )
    assert p.returncode == 0, p.stderr[-3000:]
    df = pd.read_csv(io.StringIO(imagebench("table", "--format", "csv", results=res).stdout))

    def med(variant: str, metric: str) -> float:
        v = df[(df.variant == variant) & (df.metric == metric)].value
        assert len(v) == 7, (variant, metric, len(v))
        return float(v.median())

    def exact(variant: str, metric: str) -> int:
        v = df[(df.variant == variant) & (df.metric == metric)].value.unique()
        assert len(v) == 1, (variant, metric, v)  # sizes are identical across trials
        return int(v[0])

    for variant, injected in (("sleep-0-25", 0.25), ("sleep-1", 1.0)):
        delta = med(variant, "build_seconds") - med("sleep-0", "build_seconds")
        assert abs(delta - injected) <= 0.05, f"{variant}: recovered {delta:.3f} s for {injected} s injected"
    for variant, injected in (("file-1m", MiB), ("file-10m", 10 * MiB)):
        assert exact(variant, "image_bytes") - exact("file-0", "image_bytes") == injected
        comp = med(variant, "image_bytes_compressed") - med("file-0", "image_bytes_compressed")
        assert abs(comp - injected) <= 0.01 * injected, f"{variant}: compressed delta {comp} for {injected}"
