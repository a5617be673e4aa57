"""Layers read from the classic overlay2 store are byte-identical to the tar the engine applied, or refused."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

from harness.engine import layerstore


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _layer(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1700000000
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _tar_split(data: bytes) -> list[str]:
    """What the engine records for a layer: raw segments (headers, padding) and files by name."""
    lines, pos = [], 0
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for m in tar.getmembers():
            lines.append(
                json.dumps({"type": 2, "payload": base64.b64encode(data[pos : m.offset_data]).decode()})
            )
            lines.append(json.dumps({"type": 1, "name": m.name, "size": m.size, "payload": "AAAAAAAAAAA="}))
            pos = m.offset_data + m.size
    lines.append(json.dumps({"type": 2, "payload": base64.b64encode(data[pos:]).decode()}))
    return lines


def _store(tmp: Path, layers: list[dict[str, bytes]]) -> dict:
    """A fake engine data root holding `layers` and a config; returns the image's inspect data."""
    tars = [_layer(f) for f in layers]
    diff_ids = [_sha(t) for t in tars]
    for k, (files, tar, chain) in enumerate(zip(layers, tars, layerstore.chain_ids(diff_ids), strict=True)):
        rec = tmp / "image/overlay2/layerdb/sha256" / chain[7:]
        rec.mkdir(parents=True)
        (rec / "cache-id").write_text(f"cache{k}")
        with gzip.open(rec / "tar-split.json.gz", "wt") as fh:
            fh.write("\n".join(_tar_split(tar)) + "\n")
        for name, data in files.items():
            (tmp / f"overlay2/cache{k}/diff" / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp / f"overlay2/cache{k}/diff" / name).write_bytes(data)
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    content = tmp / "image/overlay2/imagedb/content/sha256"
    content.mkdir(parents=True)
    (content / _sha(config)[7:]).write_bytes(config)
    upper = tmp / f"overlay2/cache{len(layers) - 1}/diff"
    return {
        "Id": _sha(config),
        "RootFS": {"Layers": diff_ids},
        "GraphDriver": {"Name": "overlay2", "Data": {"UpperDir": str(upper)}},
        "_tars": tars,
    }


def test_own_layers_and_config_are_read_byte_identical(tmp_path):
    """The reassembled layer tars and the config hash to the image's diff ids and id."""
    attrs = _store(tmp_path, [{"etc/os": b"base" * 300}, {"done": b"done\n", "app/x.py": b"print(1)\n"}])
    blobs = layerstore.read_blobs(attrs, [1])
    assert blobs is not None
    assert blobs[attrs["RootFS"]["Layers"][1][7:]] == attrs["_tars"][1]
    assert _sha(blobs[attrs["Id"][7:]]) == attrs["Id"]
    assert attrs["RootFS"]["Layers"][0][7:] not in blobs  # the base's layer is not read


def test_a_changed_file_or_another_driver_falls_back(tmp_path):
    """A diff directory that no longer matches its diff id, or a non-overlay2 store, gives None (use the save)."""
    attrs = _store(tmp_path, [{"a": b"one"}, {"b": b"two"}])
    (tmp_path / "overlay2/cache1/diff/b").write_bytes(b"TWO")
    assert layerstore.read_blobs(attrs, [1]) is None
    assert layerstore.read_blobs({**attrs, "GraphDriver": {"Name": "vfs", "Data": {}}}, [1]) is None
    assert layerstore.read_blobs({**attrs, "Id": "sha256:" + "0" * 64}, [0]) is None


def test_chain_ids_follow_the_layer_store_rule():
    """Chain id n is sha256 of '<chain id n-1> <diff id n>'; the first is the diff id itself."""
    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    assert layerstore.chain_ids([a, b]) == [a, _sha(f"{a} {b}".encode())]
