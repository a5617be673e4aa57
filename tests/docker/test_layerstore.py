"""Our layers read from the engine's layer store are the bytes `docker save` streams, so the re-pack
(harness/engine/repro.py) gives the same image either way."""

from __future__ import annotations

import os
import subprocess

from harness.engine import layerstore, repro

TEST_LABEL = "imagebench.test"  # tests/docker/conftest.py's label: leftovers are found by it


def test_layer_store_blobs_equal_the_save_and_repack_the_same_image(
    client, busybox_base, tmp_path, monkeypatch
):
    """Own layers (a whiteout included) and the config from the overlay2 store equal the save's; both re-packs agree."""
    (tmp_path / "Dockerfile").write_text(
        f"FROM {busybox_base}\nRUN echo hi > /hi && mkdir -p /a/b && echo x > /a/b/c\nRUN rm /hi && echo y >> /a/b/c\n"
    )
    tag = "imagebench-test/layerstore:built"
    made = [tag, f"{tag}-a", f"{tag}-b"]
    try:
        subprocess.run(
            [
                "docker",
                "buildx",
                "build",
                "-q",
                "--label",
                f"{TEST_LABEL}=layerstore",
                "-t",
                tag,
                str(tmp_path),
            ],
            check=True,
            capture_output=True,
        )
        attrs = client.api.inspect_image(tag)
        base_layers = len(client.api.inspect_image(busybox_base)["RootFS"]["Layers"])
        own = {d[7:]: i for i, d in enumerate(attrs["RootFS"]["Layers"]) if i >= base_layers}
        assert len(own) == 2
        stored = layerstore.read_blobs(attrs, own.values())
        if attrs["GraphDriver"]["Name"] == "overlay2" and os.geteuid() == 0:
            assert stored is not None, (
                "the classic overlay2 store is readable by root: no fallback to the save"
            )
        saved = repro._saved_blobs(client.api, attrs["Id"], own, attrs["Id"][7:])
        assert stored is None or stored == saved
        a = repro.repack(tag, base_layers, repro.DEFAULT_EPOCH, made[1])
        monkeypatch.setattr(layerstore, "read_blobs", lambda *_args: None)  # the save path
        b = repro.repack(tag, base_layers, repro.DEFAULT_EPOCH, made[2])
        assert a["image_id"] == b["image_id"] and a["changed_layers"] == b["changed_layers"] == 2
    finally:
        for t in reversed(made):
            subprocess.run(["docker", "rmi", "-f", t], capture_output=True)
