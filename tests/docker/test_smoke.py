"""Smoke checks on a real engine: a smaller image that cannot run its app is "smaller but broken"."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.analysis import evaluate_claims, experiment_verdicts
from harness.engine.inspect import labelled_leftovers
from harness.results import load_runs

from helpers import imagebench

EXPERIMENT = """\
practice = "test fixture: the smaller image lost its app"
claim = "the smaller image is smaller"
trials = 1
compressed = false

[[variants]]
name = "big"
dockerfile = "Dockerfile.big"
smoke = "sh /app/app.sh"

[[variants]]
name = "small"
dockerfile = "Dockerfile.small"
smoke = "sh /app/app.sh"

[[claims]]
label = "image bytes, small vs big"
metric = "image_bytes"
expect = "lower"
baseline = "big"
candidate = "small"
primary = true
article_section = "dockerfiles.3"
"""


def make_experiment(root: Path, base: str) -> Path:
    folder = root / "smoke-pair"
    (folder / "context").mkdir(parents=True)
    (folder / "context" / "app.sh").write_text("echo app is up\n")
    (folder / "experiment.toml").write_text(EXPERIMENT)
    (folder / "Dockerfile.big").write_text(
        f"FROM {base}\nCOPY app.sh /app/app.sh\nRUN head -c 1048576 /dev/urandom > /blob\n"
    )
    # Smaller, because it forgot to copy the app: its smoke check must fail.
    (folder / "Dockerfile.small").write_text(f"FROM {base}\nRUN echo no app here > /note\n")
    return root


@pytest.mark.usefixtures("lab")
def test_smaller_but_broken_cannot_win_the_size_claim(busybox_base, tmp_path):
    """smoke_ok is 1/0 per variant, the failure's output is kept, and the size claim is not supported."""
    experiments = make_experiment(tmp_path / "experiments", busybox_base)
    res = tmp_path / "results"
    p = imagebench("run", "smoke-pair", "--seed", "1", results=res, experiments=experiments)
    assert p.returncode == 0, p.stderr + p.stdout
    (run,) = load_runs(res)
    by_variant = {t["variant"]: t for t in run["trials"]}
    assert {v: t["status"] for v, t in by_variant.items()} == {"big": "ok", "small": "ok"}
    big, small = by_variant["big"], by_variant["small"]
    assert big["metrics"]["smoke_ok"] == 1 and small["metrics"]["smoke_ok"] == 0
    assert big["smoke"]["ok"] is True and "output_tail" not in big["smoke"]
    assert small["smoke"]["exit_code"] not in (0, None)
    assert "app.sh" in small["smoke"]["output_tail"] and "app.sh" in small["smoke"]["last_line"]
    assert small["metrics"]["image_bytes"] < big["metrics"]["image_bytes"]  # it really is smaller
    assert run["experiments"]["smoke-pair"]["smoke_failures"]["small"] == small["smoke"]["last_line"]

    (claim,) = evaluate_claims([run])
    assert claim["verdict"] != "supported"
    said = f"{claim['figure']} {claim.get('reason') or ''}"
    assert "smaller but broken" in said and small["smoke"]["last_line"] in said
    (verdict,) = experiment_verdicts([run], [claim])
    assert verdict["verdict"] != "supported"

    left = labelled_leftovers("imagebench.run", run["run_id"])
    assert not any(left.values()), left
