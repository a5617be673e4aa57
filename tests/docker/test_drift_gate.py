"""Week to week, offline (issue 14): a base rebuilt with one extra package under a scratch tag.

Week 1 builds a small experiment FROM a scratch copy of the lab's debian:trixie-slim; week 2 the
scratch base gains one package (a .deb made and installed inside the build, no network). Then:
`imagebench drift --local` names the package, the gate refuses the two runs when they come from
different machines and, with --across-machines, attributes the growth to the base and passes
the own-layer checks. Both trials of each run give the same image id and compressed size
(reproducible builds). The real lab bases are never touched; every image created is removed.
"""

from __future__ import annotations

import json
import secrets
import subprocess
from pathlib import Path

import pytest

from helpers import imagebench

pytestmark = pytest.mark.docker

LABEL = "imagebench.test=drift-gate"

CANARY = r"""FROM imagebench-lab/debian:trixie-slim
RUN set -e; d=/tmp/pkg; mkdir -p $d/DEBIAN $d/usr/share/imagebench-canary; \
    printf 'Package: imagebench-canary\nVersion: 1.0\nArchitecture: all\nMaintainer: imagebench <t@example.invalid>\nDescription: test package\n' > $d/DEBIAN/control; \
    head -c 4096 /dev/zero > $d/usr/share/imagebench-canary/data; \
    dpkg-deb --build $d /tmp/canary.deb >/dev/null; dpkg -i /tmp/canary.deb >/dev/null; rm -rf $d /tmp/canary.deb
"""


def sh(*args: str, input: str | None = None) -> str:
    cp = subprocess.run(list(args), capture_output=True, text=True, input=input, timeout=600)
    assert cp.returncode == 0, f"{' '.join(args)}: {cp.stderr or cp.stdout}"
    return cp.stdout.strip()


@pytest.fixture
def scratch(lab, tmp_path):  # noqa: ARG001 - requested so the lab is up (it fails otherwise)
    token = secrets.token_hex(4)
    tag = f"imagebench-test/dg-base-{token}:weekly"
    exp = tmp_path / "experiments" / "drift-gate"
    (exp / "context").mkdir(parents=True)
    (exp / "context" / "app.txt").write_text("our own layer\n")
    (exp / "Dockerfile").write_text(f"FROM {tag}\nCOPY app.txt /app/app.txt\nRUN echo built > /app/stamp\n")
    (exp / "experiment.toml").write_text(
        'practice = "scratch experiment of the drift/gate docker test"\nsection = "image"\n'
        'claim = "none"\ntrials = 2\ncompressed = true\n'
        '[[variants]]\nname = "app"\ndockerfile = "Dockerfile"\n'
    )
    made: list[str] = []
    yield {"tag": tag, "experiments": exp.parent, "made": made, "results": tmp_path}
    subprocess.run(["docker", "image", "rm", tag], capture_output=True, timeout=120)
    for image in made:
        subprocess.run(["docker", "image", "rm", image], capture_output=True, timeout=120)
    left = sh("docker", "image", "ls", "-q", "--filter", f"label={LABEL}")
    assert not left, f"images left behind: {left}"
    assert not sh("docker", "image", "ls", "-q", f"imagebench-test/dg-base-{token}")


def _trials(results: Path) -> list[dict]:
    (path,) = sorted(results.glob("*/*.json"))
    return [t for t in json.loads(path.read_text())["trials"] if t["status"] == "ok"]


def test_base_rebuilt_with_one_package_is_drift_not_a_regression(scratch):
    """drift names the added package; the gate refuses other machines, then blames the base and passes."""
    tag, exps, res = scratch["tag"], scratch["experiments"], scratch["results"]
    drift_res = res / "drift"
    sh("docker", "tag", "imagebench-lab/debian:trixie-slim", tag)
    first = imagebench("drift", "--local", "--images", tag, results=drift_res, experiments=None)
    assert first.returncode == 0 and "FIRST" in first.stdout, first.stdout + first.stderr

    week1 = imagebench("run", "drift-gate", results=res / "week1", experiments=exps, timeout=900)
    assert week1.returncode == 0, week1.stderr[-3000:]

    sh("docker", "build", "-q", "--label", LABEL, "-t", tag, "-", input=CANARY)
    scratch["made"].append(sh("docker", "image", "inspect", "-f", "{{.Id}}", tag))
    moved = imagebench("drift", "--local", "--images", tag, results=drift_res, experiments=None)
    assert moved.returncode == 1, moved.stdout + moved.stderr
    assert "+ imagebench-canary 1.0" in moved.stdout and "DRIFTED" in moved.stdout

    week2 = imagebench(
        "run",
        "drift-gate",
        results=res / "week2",
        experiments=exps,
        timeout=900,
        env={"IMAGEBENCH_MACHINE": "another-machine"},
    )
    assert week2.returncode == 0, week2.stderr[-3000:]

    for week in ("week1", "week2"):  # reproducible: both cold trials give the same bytes
        trials = _trials(res / week)
        assert len(trials) == 2
        assert len({t["image"]["id"] for t in trials}) == 1, [t["image"]["id"] for t in trials]
        for metric in ("image_bytes_compressed", "own_bytes", "own_bytes_compressed"):
            assert len({t["metrics"][metric] for t in trials}) == 1, (week, metric)
    t1, t2 = _trials(res / "week1")[0], _trials(res / "week2")[0]
    assert t1["image"]["base_image_id"] != t2["image"]["base_image_id"]
    assert t1["metrics"]["own_bytes"] == t2["metrics"]["own_bytes"]
    assert t1["metrics"]["own_bytes_compressed"] == t2["metrics"]["own_bytes_compressed"]
    assert t2["metrics"]["base_bytes"] > t1["metrics"]["base_bytes"]

    args = ("gate", "--baseline", str(res / "week1"), "--current", str(res / "week2"))
    refused = imagebench(*args, results=res, experiments=None)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    err = refused.stderr.strip().splitlines()
    assert len(err) == 1 and "different machines" in err[0] and "Traceback" not in refused.stderr

    gated = imagebench(*args, "--across-machines", "--json", results=res, experiments=None)
    assert gated.returncode == 0, gated.stdout + gated.stderr
    result = json.loads(gated.stdout)
    assert result["passed"] and not [c for c in result["failures"] if c["kind"] == "size"]
    own = {c["metric"]: c for c in result["checks"] if c["metric"].startswith("own_bytes")}
    assert own["own_bytes"]["status"] == "pass" and own["own_bytes_compressed"]["status"] == "pass"
    (blamed,) = [c for c in result["base_changes"] if c["metric"] == "image_bytes"]
    assert "the base grew by" in blamed["message"] and "our layers did not change size" in blamed["message"]
    assert t1["image"]["base_image_id"][7:19] in blamed["message"] or "->" in blamed["message"]
