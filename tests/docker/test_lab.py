"""The running lab, for real: status, bases, index, apt proxy, registry, network profile.

Needs `imagebench lab up`.  Everything created here is labelled imagebench.test=1 and removed.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from harness.engine.check import parse_version
from harness.lab import compressed_bytes, lab_status, lab_up, load_lab, shaper
from harness.lab.basedefs import SUITES

pytestmark = pytest.mark.docker
REPO = Path(__file__).resolve().parents[2]
TEST_LABEL = "imagebench.test=1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build(lab, tmp_path: Path, dockerfile: str, public: str) -> tuple[str, subprocess.CompletedProcess]:
    """Build a user's Dockerfile unmodified, the way the harness does: named context + lab build args."""
    (tmp_path / "Dockerfile").write_text(dockerfile)
    tag = f"imagebench-test/lab-{uuid.uuid4().hex[:10]}:1"
    base = lab.resolve_base(public)
    argv = [
        "docker",
        "buildx",
        "build",
        "--no-cache",
        "--network=host",
        "--progress=plain",
        "--label",
        TEST_LABEL,
        "--build-context",
        f"{public}={base.build_context}",
        "-t",
        tag,
    ]
    for k, v in lab.build_args().items():
        argv += ["--build-arg", f"{k}={v}"]
    cp = subprocess.run([*argv, str(tmp_path)], capture_output=True, text=True, timeout=900)
    return tag, cp


def rmi(tag: str) -> None:
    subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, timeout=120)


@pytest.mark.usefixtures("lab")
def test_status_acceptance():
    """lab status reports a recent engine and buildx and at least four pushed bases with sizes and provenance."""
    s = lab_status()
    assert parse_version(s["engine"]["engine_version"])[:1] >= (26,)
    assert parse_version(s["engine"]["buildx_version"])[:2] >= (0, 12)
    assert s["engine"]["storage_driver"] and s["engine"]["builder_driver"]
    bases = [b for b in s["bases"] if b["present"] and b["registry_digest"]]
    assert len(bases) >= 4, s["bases"]
    for b in bases:
        assert b["bytes"] > 10_000_000 and b["image_id"].startswith("sha256:")
        assert b["registry_digest"].startswith("sha256:") and b["compressed_bytes"] > 0
        assert b["provenance"]["debian_suite"] in SUITES
        if "requested_packages" in b["provenance"]:  # built from Debian packages: a dpkg database
            assert b["provenance"]["package_count"] > 50
        else:  # compiled from source (the musl stand-in): no package manager, said in its provenance
            assert b["provenance"]["package_manager"] is None
            assert b["provenance"]["stands_in_for"].endswith("-alpine")
        assert b["public_patterns"]
    assert s["index"]["alive"] and s["index"]["packages"] >= 10
    assert s["registry"]["alive"] and s["apt_proxy"]["alive"]
    assert s["network"]["measured_bps"] > 0
    assert not s["down"]


def test_bases_behave_like_official_images(lab):
    """A lab base answers like the official image: python/pip on PATH, pip.conf to the lab index."""
    tag = lab.resolve_base("python:3.13-slim").lab_tag
    cp = subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--network=none",
            "--label",
            TEST_LABEL,
            tag,
            "sh",
            "-c",
            "for c in python python3 pip pip3; do command -v $c; done && python -m pip --version && cat /etc/pip.conf "
            "&& echo PIPCHECK=$PIP_DISABLE_PIP_VERSION_CHECK && pip list --format=freeze",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cp.returncode == 0, cp.stderr
    out = cp.stdout
    assert "/usr/local/bin/python\n" in out and "/usr/local/bin/pip\n" in out
    assert "/usr/local/lib/python3.13/site-packages/pip" in out
    assert f"index-url = {lab.index_url}" in out and "PIPCHECK=1" in out
    freeze = [ln for ln in out.splitlines() if "==" in ln]
    assert [ln.split("==")[0] for ln in freeze] == ["pip"]  # pip owns a clean site-packages


def test_compressed_bytes_matches_record(lab):
    """The registry's compressed layer sizes and digest match what lab status recorded for the base."""
    s = lab_status()
    b = next(b for b in s["bases"] if b["key"] == "python-3.13-slim-trixie")
    digest, layers = compressed_bytes(f"{lab.registry}/{b['lab_tag']}")
    assert digest == b["registry_digest"] and sum(layers) == b["compressed_bytes"]


def test_pip_install_flask_offline(lab, tmp_path):
    """pip install flask works offline through the lab index and leaves no proxy or index URL in history."""
    dockerfile = (
        "FROM python:3.13-slim\n"
        "RUN pip install flask\n"
        "RUN pip install --user requests && python -c 'import flask, requests; print(flask.__name__)'\n"
    )
    tag, cp = build(lab, tmp_path, dockerfile, "python:3.13-slim")
    try:
        assert cp.returncode == 0, cp.stderr[-3000:]
        # pip fetched it from the lab index (the stats are shared with concurrent runs: read the log)
        assert f"{lab.index_url.rsplit('/simple/', 1)[0]}/files/flask-" in cp.stderr
        assert "bytes_served" in lab.index_stats()
        hist = subprocess.run(["docker", "history", "--no-trunc", tag], capture_output=True, text=True)
        assert "PIP_INDEX_URL" not in hist.stdout and "http_proxy" not in hist.stdout
    finally:
        rmi(tag)


def test_apt_install_gcc_through_the_proxy(lab, tmp_path):
    """apt-get install gcc works through the lab's apt proxy and the proxy stays out of image history."""
    dockerfile = "FROM python:3.12.2-slim\nRUN apt-get update && apt-get install -y gcc && gcc --version\n"
    tag, cp = build(lab, tmp_path, dockerfile, "python:3.12.2-slim")
    try:
        assert cp.returncode == 0, cp.stderr[-3000:]
        hist = subprocess.run(["docker", "history", "--no-trunc", tag], capture_output=True, text=True)
        assert "3142" not in hist.stdout  # the proxy stays out of the image history
    finally:
        rmi(tag)


def test_shaped_profile_measured_within_15_percent(lab):
    """A 100mbit shaper in front of the lab's index (a private one: the lab's own profile is left alone)."""
    port = _free_port()
    argv = [
        sys.executable,
        "-m",
        "harness.lab.shaper",
        "--profile",
        "100mbit",
        "--route",
        f"{port}:{lab.ports['index_backend']}",
    ]
    p = subprocess.Popen(
        argv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        m = shaper.measure(f"http://127.0.0.1:{port}/-/blob", 16 * 1024 * 1024)
        assert shaper.within(m["measured_bps"], 100e6), m
        assert m["ttfb_s"] >= 0.018
    finally:
        p.terminate()
        p.wait(10)
    if lab.profile.rate_bps:
        assert shaper.within(lab.profile.measured_bps, lab.profile.rate_bps)


def test_second_lab_up_is_fast(lab):
    """A second lab up on a running lab is idempotent and takes under 30 s."""
    t0 = time.perf_counter()
    s = lab_up(profile=lab.profile.name, bases=lab.bases_mode, progress=lambda _m: None)
    assert time.perf_counter() - t0 < 30
    assert not s["down"]
    assert all(b["present"] for b in s["bases"] if not b["on_demand"])  # on-demand: built by a run


def test_fingerprint_and_build_args(lab):
    """The lab fingerprint names the index and pushed bases; build args carry the proxy and index URL."""
    fp = load_lab().fingerprint()
    assert fp["index_url"] == lab.index_url and fp["index_packages"] >= 10
    assert len([b for b in fp["bases"].values() if b["registry_digest"]]) >= 4
    args = lab.build_args()
    assert args["http_proxy"].startswith("http://127.0.0.1:") and "127.0.0.1" in args["no_proxy"]
    assert args["PIP_INDEX_URL"] == lab.index_url


def test_no_engine_is_one_line():
    """lab up with no engine answering fails with exit 3 and one EngineUnavailable line."""
    env = {**os.environ, "DOCKER_HOST": "tcp://127.0.0.1:1", "PYTHONPATH": str(REPO)}
    code = (
        "from harness.lab import lab_up\n"
        "from harness.errors import HarnessError\n"
        "try:\n    lab_up(progress=lambda _m: None)\n"
        "except HarnessError as e:\n    print(type(e).__name__, e); raise SystemExit(int(e.exit_status))\n"
    )
    cp = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert cp.returncode == 3
    assert cp.stdout.startswith("EngineUnavailable the Docker daemon at tcp://127.0.0.1:1 is not answering")
    assert cp.stdout.count("\n") == 1
