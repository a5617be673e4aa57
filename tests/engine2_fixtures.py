"""A second engine whose registry mirror is the lab registry (shared by the second-engine tests)."""

from __future__ import annotations

import subprocess

import pytest

SLIM_KEY = "python-3.13-slim-trixie"


@pytest.fixture(scope="module")
def engine2(lab):
    """A throw-away dockerd (own data root, exec root, socket, bridge); removed afterwards."""
    from harness.lab.engine2 import MirrorEngine

    eng = MirrorEngine(lab.registry)
    try:
        eng.start()
        yield eng
    finally:
        eng.stop()


def load_lab_base(eng, lab, key: str = SLIM_KEY) -> str:
    """Give the second engine a lab base: pulled from the lab registry, tagged with its lab tag."""
    from harness.lab.basedefs import load_bases

    tag = load_bases().bases[key].tag
    src = f"{lab.registry}/{tag}"
    for args in (("pull", "--quiet", src), ("tag", src, tag)):
        cp = eng.docker(*args)
        assert cp.returncode == 0, cp.stderr
    return tag


def main_engine_has(ref: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", ref], capture_output=True).returncode == 0
