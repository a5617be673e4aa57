"""--bases registry proven offline: a second engine pulls public names through the lab registry as its mirror."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from engine2_fixtures import SLIM_KEY, engine2, load_lab_base  # noqa: F401

from helpers import REPO, imagebench

FIXTURES = REPO / "tests" / "fixtures" / "experiments-engine2"


def test_registry_mode_pulls_through_the_mirror_and_pins_by_digest(lab, engine2, tmp_path, monkeypatch):  # noqa: F811
    """Public python:3.13-slim comes through the mirror (the lab's base), is pinned by digest, provenance says registry."""
    from harness.lab import core
    from harness.lab.basedefs import load_bases
    from harness.lab.engine2 import publish_public_names

    catalog = load_bases()
    load_lab_base(engine2, lab, SLIM_KEY)
    published = publish_public_names(catalog, lab.registry, keys=[SLIM_KEY], via=engine2.host)
    assert published["python:3.13-slim"]["ref"] == f"{lab.registry}/library/python:3.13-slim"
    # the public name is not in the second engine until pulled, and it has no internet: only the mirror serves it
    engine2.docker("rmi", f"{lab.registry}/library/python:3.13-slim")
    assert engine2.docker("image", "inspect", "python:3.13-slim").returncode != 0

    monkeypatch.setenv("DOCKER_HOST", engine2.host)
    pins = core.pull_public(["python:3.13-slim"], progress=lambda _m: None)
    pin = pins["python:3.13-slim"]
    assert pin["pinned"].startswith("python@sha256:")
    lab_base = json.loads(engine2.docker("image", "inspect", catalog.bases[SLIM_KEY].tag).stdout)[0]
    assert pin["image_id"] == lab_base["Id"]  # what came through the mirror is the lab's base

    # a lab state in registry mode (what `lab up --bases registry` records), services shared with the lab
    state = tmp_path / "state"
    state.mkdir()
    data = dict(lab.state)
    data.update({"bases_mode": "registry", "public_bases": pins})
    (state / "lab.json").write_text(json.dumps(data))
    results = tmp_path / "results"
    cp = imagebench(
        "run",
        "on-slim",
        "--bases",
        "registry",
        results=results,
        experiments=FIXTURES,
        env={"DOCKER_HOST": engine2.host, "IMAGEBENCH_STATE": str(state)},
    )
    assert cp.returncode == 0, cp.stdout[-2000:] + cp.stderr[-2000:]
    run = json.loads(next(Path(results).glob("*/*.json")).read_text())
    base = run["bases"]["python:3.13-slim"]
    assert base["provenance"]["source"] == "registry"
    assert "@sha256:" in base["lab_tag"] and base["image_id"] == pin["image_id"]
    assert run["fingerprint"]["engine"]["docker_host"] == engine2.host
    assert run["fingerprint"]["lab"]["bases_mode"] == "registry"
    ok = [t for t in run["trials"] if t.get("status") == "ok" or t.get("ok")]
    assert len(ok) >= 2
    shutil.rmtree(state, ignore_errors=True)
