"""Two cold builds of a pip install on the lab's Python base re-pack to the same image (harness/engine/
repro.py), and the re-packed `.pyc` files are still valid for their clamped sources (Python does not
rewrite them on import)."""

from __future__ import annotations

import subprocess

from harness.engine import repro

TEST_LABEL = "imagebench.test"  # tests/docker/conftest.py's label: leftovers are found by it
SITE = "/usr/local/lib/python3.13/site-packages"


def _build(tmp_path, base, tag: str) -> None:
    subprocess.run(
        [
            "docker",
            "buildx",
            "build",
            "-q",
            "--no-cache",
            "--network",
            "host",
            "--build-context",
            f"python:3.13-slim={base.build_context}",
            "--build-arg",
            f"SOURCE_DATE_EPOCH={repro.DEFAULT_EPOCH}",
            "--label",
            f"{TEST_LABEL}=repro-pip",
            "-t",
            tag,
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )


def test_two_cold_pip_installs_repack_to_one_image_with_valid_pyc(client, lab, tmp_path):
    """The raw builds differ (install-time mtimes, in files and in .pyc headers); their re-packs are one
    image id; importing the package in it rewrites no .pyc."""
    base = lab.resolve_base("python:3.13-slim")
    (tmp_path / "Dockerfile").write_text(
        "FROM python:3.13-slim\nRUN pip install --no-cache-dir --disable-pip-version-check idna==3.20\n"
    )
    tags = [f"imagebench-test/repro-pip:{x}" for x in ("a", "b", "a-repro", "b-repro")]
    try:
        for tag in tags[:2]:
            _build(tmp_path, base, tag)
        raw = [client.api.inspect_image(t)["Id"] for t in tags[:2]]
        assert raw[0] != raw[1]  # without the re-pack, identical inputs give two images
        base_layers = len(client.api.inspect_image(base.lab_tag)["RootFS"]["Layers"])
        packed = [
            repro.repack(t, base_layers, repro.DEFAULT_EPOCH, out)
            for t, out in zip(tags[:2], tags[2:], strict=True)
        ]
        assert packed[0]["image_id"] == packed[1]["image_id"]
        # a .pyc that no longer matched its clamped source would be recompiled (and rewritten) on import
        script = (
            "touch /tmp/t0 && sleep 1 && python -c 'import idna.core, idna.idnadata' && "
            f"find {SITE}/idna -name '*.pyc' -newer /tmp/t0 | wc -l"
        )
        out = client.containers.run(tags[2], ["sh", "-c", script], remove=True, network_mode="none")
        assert out.decode().strip() == "0"
    finally:
        for t in reversed(tags):
            subprocess.run(["docker", "rmi", "-f", t], capture_output=True)
