"""Reproducible images on an engine whose exporter ignores `rewrite-timestamp`.

What this engine supports (Engine 26.1.5, embedded BuildKit 0.13.2, buildx 0.13.1, docker driver,
classic overlay2 store), checked by `tests/docker/test_reproducible.py`:

- `--build-arg SOURCE_DATE_EPOCH=N` (BuildKit >= 0.11) sets the image config's `created` and every
  history entry's timestamp to N. Honoured here.
- The exporter option `rewrite-timestamp=true` (BuildKit >= 0.13, PR moby/buildkit#4057) clamps
  the mtimes of files in new layers to N. The docker driver exports through the engine's own
  image exporter, which ignores it (moby/buildkit#4986): `--output type=docker,rewrite-timestamp=true`
  builds, but two cold builds still differ in their layers (files written by RUN carry the build's
  wall-clock mtime), so their image IDs and compressed sizes differ.

So after the (timed) build the harness re-packs **our own layers only** (the base's layers are
untouched): every tar entry's mtime is clamped to SOURCE_DATE_EPOCH, access/change times are
dropped, the source mtime that pip's `.pyc` files record in their header is clamped with its source
(else every `.pyc` differs between two builds, measured on instruction-order/good: 283 of 594),
and the image is loaded back with the new layer digests (`docker load` skips layers the
store already has, so only our layers travel). That is what `rewrite-timestamp` does on exporters
that honour it. Identical inputs then give identical image IDs, registry digests and compressed
sizes; what cannot be made identical (random bytes written by a RUN step) still differs, and the
trial records `repro.identical_inputs_only`.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Iterable
from typing import IO, TYPE_CHECKING, TypedDict, cast

from harness.engine import layerstore
from harness.engine.check import parse_version
from harness.engine.inspect import DockerAPI, client, low_level
from harness.errors import EngineUnavailable

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer


class ReproSupport(TypedDict):
    """What the builder does for reproducibility (`support`, the run fingerprint's `reproducibility`)."""

    source_date_epoch: int | None
    source_date_epoch_supported: bool
    rewrite_timestamp_option: bool
    rewrite_timestamp_honoured: bool
    method: str
    why: str | None


class Repacked(TypedDict):
    """An image re-packed with clamped mtimes (`repack`)."""

    image_id: str
    source_image_id: str
    changed_layers: int


#: The SOURCE_DATE_EPOCH every harness build gets (1 Jan 2020 00:00 UTC: after any base's files, so
#: clamping only touches what our own steps wrote).
DEFAULT_EPOCH = 1577836800
METHOD = "SOURCE_DATE_EPOCH build arg + own layers re-packed with mtimes clamped (rewrite-timestamp ignored)"


def support(driver: str | None, buildkit: str | None) -> ReproSupport:
    """What the builder does for reproducibility, for the run fingerprint (pure)."""
    v = parse_version((buildkit or "").lstrip("v").replace("x", "0"))
    sde = bool(v) and v >= (0, 11)
    rewrite_option = bool(v) and v >= (0, 13)
    honoured = rewrite_option and driver not in (None, "docker")
    return {
        "source_date_epoch": DEFAULT_EPOCH if sde else None,
        "source_date_epoch_supported": sde,
        "rewrite_timestamp_option": rewrite_option,
        "rewrite_timestamp_honoured": honoured,
        "method": "exporter rewrite-timestamp" if honoured else METHOD,
        "why": None
        if honoured
        else "the docker driver exports through the engine's image exporter, which ignores "
        "rewrite-timestamp (moby/buildkit#4986)",
    }


def clamp_layer(data: bytes, epoch: int) -> bytes:
    """A layer tar with every mtime clamped to `epoch` and atime/ctime dropped (pure, deterministic).

    Entry order, names, modes, owners, link targets, xattrs (PAX SCHILY.xattr.*) and contents are
    kept; the output is a PAX tar with integer mtimes. One content change: a timestamp-based `.pyc`
    whose source is in the same layer records that source's mtime in its header (bytes 8-11, PEP
    552); pip writes the install's wall-clock time there, so two builds differ in every `.pyc`. The
    recorded mtime is clamped like the source's own (`pyc_source_mtime`), which keeps the `.pyc`
    valid for the clamped source (without it, Python would find every clamped `.pyc` stale).
    """
    out = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(data), mode="r:") as src,
        tarfile.open(fileobj=out, mode="w:", format=tarfile.PAX_FORMAT, encoding="utf-8") as dst,
    ):
        members = src.getmembers()
        mtimes = {m.name: int(m.mtime) for m in members if m.isreg()}
        for info in members:
            new = info.replace(deep=True) if hasattr(info, "replace") else info
            new.mtime = int(min(int(info.mtime), epoch))
            pax = {k: v for k, v in (info.pax_headers or {}).items() if k not in ("atime", "ctime", "mtime")}
            new.pax_headers = pax
            fileobj: IO[bytes] | None = src.extractfile(info) if info.isreg() else None
            if fileobj is not None and info.name.endswith(".pyc"):
                body = fileobj.read()
                fileobj = io.BytesIO(pyc_source_mtime(body, mtimes.get(pyc_source(info.name)), epoch))
            dst.addfile(new, fileobj)
    return out.getvalue()


def pyc_source(name: str) -> str:
    """Pure: the source path a `.pyc` path was compiled from (PEP 3147 `__pycache__` or legacy)."""
    head, _, tail = name.rpartition("/")
    if head == "__pycache__" or head.endswith("/__pycache__"):
        parent = head[: -len("__pycache__")]
        return parent + tail.split(".", 1)[0] + ".py"
    return name[:-1]


def pyc_source_mtime(body: bytes, source_mtime: int | None, epoch: int) -> bytes:
    """Pure: a `.pyc`'s bytes with its recorded source mtime clamped to `epoch`, when it is a
    timestamp-based `.pyc` (flags 0) of a source in the same layer whose mtime it records;
    unchanged otherwise (hash-based `.pyc`, a source from a lower layer, an older mtime)."""
    if source_mtime is None or len(body) < 16 or int.from_bytes(body[4:8], "little") != 0:
        return body
    recorded = int.from_bytes(body[8:12], "little")
    if recorded != source_mtime & 0xFFFFFFFF or recorded <= epoch:
        return body
    return body[:8] + (epoch & 0xFFFFFFFF).to_bytes(4, "little") + body[12:]


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def repack(image_id: str, base_layers: int, epoch: int, tag: str) -> Repacked:
    """Re-pack `image_id`'s own layers (those after the first `base_layers`) with clamped mtimes,
    load the result as `tag`, and return {"image_id", "changed_layers", "source_image_id"}.

    Reads our layers and the config from the engine's layer store when it can (harness/engine/
    layerstore.py: byte-identical, checked against their digests), else with the engine's save
    endpoint (the whole image, streamed; base layers are skipped, not kept), and loads an archive
    that holds only the config and our layers.
    """
    api = low_level(client())
    attrs = api.inspect_image(image_id)
    diff_ids = list((attrs.get("RootFS") or {}).get("Layers") or [])
    own = {d.split(":", 1)[1]: i for i, d in enumerate(diff_ids) if i >= base_layers}
    cfg_hex = attrs["Id"].split(":", 1)[1]
    blobs = layerstore.read_blobs(attrs, own.values()) or _saved_blobs(api, image_id, own, cfg_hex)
    config = json.loads(blobs.pop(cfg_hex))
    new_ids = list(diff_ids)
    layer_files: list[str] = []
    files: dict[str, bytes] = {}
    changed = 0
    for i, d in enumerate(diff_ids):
        if i < base_layers:
            layer_files.append(f"blobs/sha256/{d.split(':', 1)[1]}")  # already in the store: not sent
            continue
        data = clamp_layer(blobs[d.split(":", 1)[1]], epoch)
        new_ids[i] = _sha(data)
        changed += new_ids[i] != d
        path = f"blobs/sha256/{new_ids[i].split(':', 1)[1]}"
        files[path] = data
        layer_files.append(path)
    config["rootfs"]["diff_ids"] = new_ids
    cfg_bytes = json.dumps(config, separators=(",", ":")).encode()
    cfg_path = f"blobs/sha256/{hashlib.sha256(cfg_bytes).hexdigest()}"
    files[cfg_path] = cfg_bytes
    manifest = [{"Config": cfg_path, "RepoTags": [tag], "Layers": layer_files}]
    files["manifest.json"] = json.dumps(manifest).encode()
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:", format=tarfile.USTAR_FORMAT) as tar:
        for d in ("blobs", "blobs/sha256"):
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    out = client().images.load(archive.getvalue())
    new_id = (out[0].id if out else None) or api.inspect_image(tag)["Id"]
    return {"image_id": new_id, "source_image_id": attrs["Id"], "changed_layers": changed}


def _saved_blobs(api: DockerAPI, image_id: str, own: dict[str, int], cfg_hex: str) -> dict[str, bytes]:
    """The own layers and the config from the engine's save stream (the whole image: slow)."""
    blobs: dict[str, bytes] = {}
    stream = _Reader(api.get_image(image_id, chunk_size=1 << 20))
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            name = member.name.rsplit("/", 1)[-1].removesuffix(".tar").removesuffix("/layer")
            if (
                member.isreg()
                and member.name.startswith("blobs/sha256/")
                and (name in own or name == cfg_hex)
            ):
                blobs[name] = cast(IO[bytes], tar.extractfile(member)).read()  # a regular file
            elif member.isreg() and member.name.endswith("/layer.tar"):  # pre-25 engines' layout
                parent = member.name.split("/")[0]
                if parent in own:
                    blobs[parent] = cast(IO[bytes], tar.extractfile(member)).read()
    missing = [h for h in [*own, cfg_hex] if h not in blobs]
    if missing:
        raise EngineUnavailable(f"docker save of {image_id[:19]} lacks {len(missing)} blob(s) to re-pack")
    return blobs


class _Reader(io.RawIOBase):
    """A file object over an iterator of byte chunks (the engine's save stream)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._it = iter(chunks)
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: WriteableBuffer) -> int:
        while not self._buf:
            try:
                self._buf = next(self._it)
            except StopIteration:
                return 0
        view = memoryview(b).cast("B")
        n = min(len(view), len(self._buf))
        view[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n
