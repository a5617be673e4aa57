"""Read an image's layers and config straight from the engine's classic overlay2 store.

`docker save` writes the whole image - the base's layers too - to a temporary directory before it
streams it, so re-packing our own layers through it (harness/engine/repro.py) costs a full copy of
the base on every trial. The classic store keeps each layer as its diff directory plus a tar-split
record (`layerdb/sha256/<chain id>/tar-split.json.gz`: the tar's headers verbatim, file contents by
name) from which the engine reassembles, byte for byte, the tar it applied; this module does the same
for the layers asked for, and reads the config from `imagedb`.

Every blob is checked against its digest (a layer's diff id, the config's image id): the bytes are
exactly what `docker save` would stream, or `read_blobs` returns None and the caller uses the save.
None also when the store is not readable here (another storage driver, the containerd store, a
remote or rootless engine).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

from harness.engine.inspect import ImageAttrs

# tar-split entry types (github.com/vbatts/tar-split/tar/storage): a file by name, a raw segment
FILE_ENTRY = 1
SEGMENT_ENTRY = 2


def chain_ids(diff_ids: list[str]) -> list[str]:
    """The layer store's chain ids: the first layer's diff id, then sha256("<parent chain> <diff id>")."""
    out: list[str] = []
    for d in diff_ids:
        out.append(d if not out else "sha256:" + hashlib.sha256(f"{out[-1]} {d}".encode()).hexdigest())
    return out


def store_root(attrs: ImageAttrs) -> Path | None:
    """The engine's data root from an image's inspect data (overlay2 only: `<root>/overlay2/<id>/diff`)."""
    driver = attrs.get("GraphDriver") or {}
    upper = (driver.get("Data") or {}).get("UpperDir")
    if driver.get("Name") != "overlay2" or not upper:
        return None
    root = Path(upper).parents[2]
    return root if (root / "image" / "overlay2" / "layerdb").is_dir() else None


def assemble(tar_split: Iterable[bytes | str], diff_dir: Path) -> bytes:
    """A layer's tar from its tar-split lines and its diff directory (pure but for reading the files)."""
    out = bytearray()
    for line in tar_split:
        entry = json.loads(line)
        if entry["type"] == SEGMENT_ENTRY:
            out += base64.b64decode(entry.get("payload") or "")
        elif entry["type"] == FILE_ENTRY and entry.get("size"):
            raw = entry.get("name_raw")
            name = base64.b64decode(raw).decode("utf-8", "surrogateescape") if raw else entry["name"]
            with open(diff_dir / name.lstrip("/"), "rb") as fh:
                data = fh.read(entry["size"])
            if len(data) != entry["size"]:
                raise OSError(f"{name}: shorter than its tar header")
            out += data
    return bytes(out)


def read_layer(root: Path, chain_id: str) -> bytes:
    layer = root / "image" / "overlay2" / "layerdb" / "sha256" / chain_id.split(":", 1)[1]
    cache_id = (layer / "cache-id").read_text().strip()
    with gzip.open(layer / "tar-split.json.gz", "rb") as fh:
        return assemble(fh, root / "overlay2" / cache_id / "diff")


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def read_blobs(attrs: ImageAttrs, layer_indexes: Iterable[int]) -> dict[str, bytes] | None:
    """{digest hex: bytes} for the image's layers at `layer_indexes` and its config, each verified
    against its digest; None when the store cannot be read here or any blob does not match."""
    root = store_root(attrs)
    if root is None:
        return None
    diff_ids = list((attrs.get("RootFS") or {}).get("Layers") or [])
    chains = chain_ids(diff_ids)
    blobs: dict[str, bytes] = {}
    try:
        config = (
            root / "image" / "overlay2" / "imagedb" / "content" / "sha256" / attrs["Id"][7:]
        ).read_bytes()
        if _sha(config) != attrs["Id"]:
            return None
        blobs[attrs["Id"][7:]] = config
        for i in layer_indexes:
            data = read_layer(root, chains[i])
            if _sha(data) != diff_ids[i]:
                return None
            blobs[diff_ids[i][7:]] = data
    except (OSError, ValueError, KeyError, IndexError, EOFError):
        return None
    return blobs
