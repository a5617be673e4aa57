"""--builder NAME: a docker context pointing at a second engine is a buildx builder; the run builds there."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from engine2_fixtures import SLIM_KEY, engine2, load_lab_base, main_engine_has  # noqa: F401

from helpers import REPO, imagebench

FIXTURES = REPO / "tests" / "fixtures" / "experiments-engine2"


def test_builder_on_a_second_engine(lab, engine2, tmp_path):  # noqa: F811
    """The context appears in `buildx ls`, the run's images land in the second engine only, the fingerprint names both."""
    load_lab_base(engine2, lab, SLIM_KEY)
    name = "ibtest-" + os.urandom(3).hex()
    cp = subprocess.run(
        ["docker", "context", "create", name, "--docker", f"host={engine2.host}"],
        capture_output=True,
        text=True,
    )
    assert cp.returncode == 0, cp.stderr
    try:
        ls = subprocess.run(["docker", "buildx", "ls"], capture_output=True, text=True).stdout
        assert any(line.split()[0].rstrip("*") == name for line in ls.splitlines() if line.strip())
        results = tmp_path / "results"
        cp = imagebench(
            "run", "on-slim", "--builder", name, "--keep-images", results=results, experiments=FIXTURES
        )
        assert cp.returncode == 0, cp.stdout[-2000:] + cp.stderr[-2000:]
        run = json.loads(next(Path(results).glob("*/*.json")).read_text())
        fp = run["fingerprint"]["engine"]
        assert fp["builder_requested"] == name
        assert fp["builder"]["name"] == name and fp["builder"]["driver"] == "docker"
        assert fp["builder"]["engine_host"] == engine2.host and fp["docker_host"] == engine2.host
        assert fp["builder"]["engine_root"] == str(engine2.root / "data")
        ids = {t.get("image", {}).get("id") or t.get("image_id") for t in run["trials"]}
        ids.discard(None)
        assert ids, "the run recorded no image ids"
        for image_id in ids:
            assert engine2.docker("image", "inspect", image_id).returncode == 0
            assert not main_engine_has(image_id)
    finally:
        subprocess.run(["docker", "context", "rm", "-f", name], capture_output=True)
    ls = subprocess.run(["docker", "buildx", "ls"], capture_output=True, text=True).stdout
    assert name not in ls
