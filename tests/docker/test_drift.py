"""Drift against the lab registry: a stand-in pushed under one tag, then a changed one under the
same tag. `imagebench drift` must exit non-zero and list the packages that changed, then exit 0
when nothing changed. Every image and registry manifest the test creates is removed afterwards
(registry blobs may stay)."""

from __future__ import annotations

import contextlib
import json
import secrets
import subprocess

import pytest

from harness import drift
from harness.errors import ExitStatus
from harness.registry_client import RegistryClient, RegistryError

pytestmark = pytest.mark.docker

LABEL = "imagebench.test=drift"


def sh(*args: str, input: str | None = None) -> str:
    cp = subprocess.run(list(args), capture_output=True, text=True, input=input, timeout=600)
    assert cp.returncode == 0, f"{' '.join(args)}: {cp.stderr or cp.stdout}"
    return cp.stdout.strip()


def build(tag: str, dockerfile: str) -> str:
    sh("docker", "build", "-q", "--label", LABEL, "-t", tag, "-", input=dockerfile)
    return sh("docker", "image", "inspect", "-f", "{{.Id}}", tag)


@pytest.fixture
def stand_in(lab):
    """(tag in the lab registry, base image id); cleans up the tag, the images and the manifests."""
    base = lab.resolve_base("python:3.13-slim")
    token = secrets.token_hex(4)
    target = f"{lab.registry}/imagebench-test/drift-{token}:stand-in"
    local_base = f"imagebench-test/drift-base-{token}:pinned"  # BuildKit's FROM wants a name, not an id
    sh("docker", "tag", base.image_id, local_base)
    made: list[str] = []
    digests: list[str] = []
    state = {"target": target, "base_id": base.image_id, "base": local_base, "made": made, "digests": digests}
    yield state
    for tag in (target, local_base):
        subprocess.run(["docker", "image", "rm", tag], capture_output=True, timeout=120)
    for image_id in made:
        subprocess.run(["docker", "image", "rm", image_id], capture_output=True, timeout=120)
    client = RegistryClient(timeout=10)
    for digest in digests:
        with contextlib.suppress(RegistryError):
            client.delete_manifest(target, digest)
    if digests:
        assert "stand-in" not in client.tags(target.rsplit(":", 1)[0]), "registry tag left behind"
    left = sh("docker", "image", "ls", "-q", "--filter", f"label={LABEL}")
    assert not left, f"images left behind: {left}"


def push(target: str) -> str:
    sh("docker", "push", "-q", target)
    return RegistryClient(timeout=10).resolve(target).digest


def test_changed_stand_in_under_the_same_tag_is_drift(stand_in, tmp_path):
    """A stand-in rebuilt under the same tag is observed as drift: new digest, package and size changes."""
    target, results = stand_in["target"], tmp_path / "results"

    # observation 1: the slim stand-in itself
    sh("docker", "tag", stand_in["base_id"], target)
    stand_in["digests"].append(push(target))
    sh("docker", "image", "rm", target)  # drift pulls by digest like any other machine would
    code, text = drift.run_drift([target], results, json_out=False)
    assert code == ExitStatus.OK, text
    assert "FIRST" in text
    (first,) = drift.load_observations(results, target)
    assert first["package_manager"] == "dpkg" and "tzdata" in first["packages"]
    assert first["python_version"] and first["python_version"].startswith("3.")
    assert first["compressed_bytes"] > 0 and first["uncompressed_bytes"] > first["compressed_bytes"]

    # the same tag now points to a stand-in without tzdata (no network needed)
    changed = build(target, f"FROM {stand_in['base']}\nRUN dpkg --purge --force-all tzdata\n")
    stand_in["made"].append(changed)
    stand_in["digests"].append(push(target))
    sh("docker", "image", "rm", target)
    code, text = drift.run_drift([target], results, json_out=False)
    assert code == ExitStatus.FAILURE == 1, text
    assert "DRIFTED" in text and "- tzdata " in text and "packages: 1 removed" in text
    code, text = drift.run_drift([target], results, json_out=True)  # nothing changed since
    report = json.loads(text)
    assert code == 0 and report["images"][0]["status"] == "unchanged", text

    observations = drift.load_observations(results, target)
    assert len(observations) == 3
    d = drift.diff(observations[0], observations[1])
    assert d["digest_changed"] and list(d["packages"]["removed"]) == ["tzdata"]
    assert not d["packages"]["added"] and not d["packages"]["upgraded"]
    assert d["layers"]["delta"] == 1
    # nothing pulled by the observations stays behind
    repo = target.rsplit(":", 1)[0]
    assert not sh("docker", "image", "ls", "-q", repo)
