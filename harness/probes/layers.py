"""Layer contents: what `docker save` says an image is made of.

Probes
  layers  wasted_bytes: bytes of files written in one layer and deleted (whiteout) or overwritten
          in a later one. Those bytes still travel with the image: a later layer only hides them.
  gcc     gcc_present: whether a `gcc` is on PATH in the image (a shell check in a throw-away
          container, falling back to looking for the file in the layers when the image has no shell).

Pure helpers (no Docker; tested on synthetic tars)
  layer_entries(tar)              -> [Entry]      what one layer tar adds, replaces or whites out
  wasted_bytes(layers)            -> (bytes, [(path, bytes, layer, by_layer)])
  stream_contains(fh, needle)     -> bool         chunked substring search with overlap
  saved_layers(path)              -> SavedImage   layer blobs of a `docker save` archive, in order

The wasted-bytes rule is the narrow one: only the hidden earlier copy counts (dive's
`wastedBytes` also counts the surviving copy; buildkit-facts §4).
"""

from __future__ import annotations

import contextlib
import io
import json
import posixpath
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from harness.errors import ProbeFailed
from harness.probes import Probe, ProbeContext, register

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
CHUNK = 1 << 20


@dataclass(frozen=True)
class Entry:
    path: str  # normalised, no leading "./" or "/"
    size: int  # bytes of a regular file, 0 otherwise
    kind: str  # file | dir | link | whiteout | opaque | other


def _norm(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    name = name.lstrip("/")
    name = posixpath.normpath(name) if name else ""
    return "" if name == "." else name


def layer_entries(tf: tarfile.TarFile) -> list[Entry]:
    """What one layer tar contains, whiteouts recognised (AUFS style, as `docker save` writes them)."""
    out: list[Entry] = []
    for m in tf:
        path = _norm(m.name)
        if not path:
            continue
        base = posixpath.basename(path)
        if base == OPAQUE:
            out.append(Entry(posixpath.dirname(path), 0, "opaque"))
        elif base.startswith(WHITEOUT):
            out.append(Entry(posixpath.join(posixpath.dirname(path), base[len(WHITEOUT) :]), 0, "whiteout"))
        elif m.isreg():
            out.append(Entry(path, m.size, "file"))
        elif m.isdir():
            out.append(Entry(path, 0, "dir"))
        elif m.issym() or m.islnk():
            out.append(Entry(path, 0, "link"))
        else:
            out.append(Entry(path, 0, "other"))
    return out


def _under(path: str, top: str) -> bool:
    return top == "" or path == top or path.startswith(top + "/")


def wasted_bytes(layers: Iterable[list[Entry]]) -> tuple[int, list[tuple[str, int, int, int]]]:
    """Bytes hidden by later layers.

    Walks the layers bottom-up keeping the files in effect. A whiteout of a path (or of a
    directory above it), an opaque directory marker, or a new copy of the same path hides the
    earlier file: its size counts as wasted. Returns the total and
    (path, bytes, layer written, layer that hid it), largest first.
    """
    live: dict[str, tuple[int, int]] = {}  # path -> (size, layer index)
    hidden: list[tuple[str, int, int, int]] = []
    for i, entries in enumerate(layers):
        # whiteouts apply to the lower layers only, whatever their order inside this tar
        for e in entries:
            if e.kind in ("whiteout", "opaque"):
                top = e.path
                strict = e.kind == "opaque"  # opaque keeps the directory, hides what was inside
                for p in [p for p in live if _under(p, top) and not (strict and p == top)]:
                    size, layer = live.pop(p)
                    if size:
                        hidden.append((p, size, layer, i))
        for e in entries:
            if e.kind in ("whiteout", "opaque", "dir"):
                continue
            if e.path in live:
                size, layer = live.pop(e.path)
                if size and layer != i:
                    hidden.append((e.path, size, layer, i))
            live[e.path] = (e.size, i)
    hidden.sort(key=lambda h: (-h[1], h[0]))
    return sum(h[1] for h in hidden), hidden


def stream_contains(fh: IO[bytes], needle: bytes, chunk: int = CHUNK) -> bool:
    """True when `needle` occurs in the stream (found across chunk boundaries too)."""
    if not needle:
        return True
    keep = len(needle) - 1
    tail = b""
    while True:
        block = fh.read(chunk)
        if not block:
            return False
        buf = tail + block
        if needle in buf:
            return True
        tail = buf[-keep:] if keep else b""


@dataclass
class SavedImage:
    """A `docker save` archive on disk: its config blob and layer blob names, bottom-up."""

    path: Path
    config: str
    layers: list[str]
    repo_tags: list[str] = field(default_factory=list)

    def open(self, member: str) -> _Closing:
        tf = tarfile.open(self.path)  # noqa: SIM115 - closed with the returned handle's owner
        fh = tf.extractfile(member)
        if fh is None:
            tf.close()
            raise ProbeFailed(f"{self.path}: {member} is not a file")
        return _Closing(fh, tf)

    def config_json(self) -> dict[str, object]:
        with self.open(self.config) as fh:
            config: dict[str, object] = json.load(fh)
            return config

    def layer_tars(self) -> Iterator[tuple[int, tarfile.TarFile]]:
        for i, name in enumerate(self.layers):
            with self.open(name) as fh, tarfile.open(fileobj=fh, mode="r|") as tf:
                yield i, tf


class _Closing(io.RawIOBase):
    def __init__(self, fh: IO[bytes], owner: tarfile.TarFile) -> None:
        self._fh, self._owner = fh, owner

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        return self._fh.read(n)

    def readinto(self, b: Any) -> int:
        data = self._fh.read(len(b))
        b[: len(data)] = data
        return len(data)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._owner.close()
        super().close()


def saved_layers(path: Path) -> SavedImage:
    """Read manifest.json of a `docker save` archive (legacy manifest, present on Engine >= 25 too)."""
    with tarfile.open(path) as tf:
        fh = tf.extractfile("manifest.json")
        if fh is None:
            raise ProbeFailed(f"{path}: no manifest.json")
        manifest = json.load(fh)
    if not manifest:
        raise ProbeFailed(f"{path}: empty manifest.json")
    first = manifest[0]
    return SavedImage(
        path=Path(path),
        config=first["Config"],
        layers=list(first["Layers"]),
        repo_tags=list(first.get("RepoTags") or []),
    )


def save_image(client: Any, image: str, dest: Path) -> SavedImage:
    """Stream `docker save IMAGE` to `dest` and read its manifest."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "wb") as out:
        for chunk in client.images.get(image).save(chunk_size=CHUNK, named=False):
            out.write(chunk)
    return saved_layers(dest)


def image_wasted_bytes(client: Any, image: str, workdir: Path) -> tuple[int, list[tuple[str, int, int, int]]]:
    tar = workdir / "layers-save.tar"
    try:
        saved = save_image(client, image, tar)
        return wasted_bytes(layer_entries(tf) for _, tf in saved.layer_tars())
    finally:
        tar.unlink(missing_ok=True)


@register
class LayersProbe(Probe):
    """wasted_bytes from the saved layer tars of the built image."""

    name = "layers"

    def after_build(self, ctx: ProbeContext) -> dict[str, float]:
        if not ctx.image:
            return {}
        total, hidden = image_wasted_bytes(ctx.client, ctx.image, ctx.workdir)
        ctx.details[self.name] = {
            "wasted_files": len(hidden),
            "largest": [
                {"path": p, "bytes": b, "written_in_layer": w, "hidden_by_layer": h}
                for p, b, w, h in hidden[:10]
            ],
        }
        return {"wasted_bytes": float(total)}


# ------------------------------------------------------------------------------ gcc

GCC_PATHS = ("usr/local/bin/gcc", "usr/bin/gcc", "bin/gcc", "usr/local/sbin/gcc", "usr/sbin/gcc", "sbin/gcc")


def gcc_in_layers(layers: Iterable[list[Entry]]) -> bool:
    """Pure: is a gcc (file or link) on a standard PATH directory after all layers are applied?"""
    present: set[str] = set()
    for entries in layers:
        for e in entries:
            if e.kind in ("whiteout", "opaque"):
                present = {
                    p for p in present if not _under(p, e.path) or (e.kind == "opaque" and p == e.path)
                }
        for e in entries:
            if e.kind in ("file", "link") and e.path in GCC_PATHS:
                present.add(e.path)
    return bool(present)


def gcc_present(
    client: Any, image: str, labels: dict[str, str], track: Any, workdir: Path
) -> tuple[int, str]:
    """(1|0, how it was decided)."""
    import docker.errors  # lazy: the docker SDK costs ~0.8 s to import, and every probe module is loaded to list them

    name = None
    try:
        c = client.containers.create(
            image, entrypoint=["sh"], command=["-c", "command -v gcc"], labels=labels, network_disabled=True
        )
        name = c.id
        track("container", c.id)
        c.start()
        rc = c.wait(timeout=60).get("StatusCode", 1)
        return (1 if rc == 0 else 0), "sh: command -v gcc"
    except docker.errors.APIError:
        pass  # no shell in the image: look at the files
    finally:
        if name:
            with contextlib.suppress(Exception):
                client.api.remove_container(name, force=True)
    tar = workdir / "gcc-save.tar"
    try:
        saved = save_image(client, image, tar)
        return (1 if gcc_in_layers(layer_entries(tf) for _, tf in saved.layer_tars()) else 0), "layer files"
    finally:
        tar.unlink(missing_ok=True)


@register
class GccProbe(Probe):
    """gcc_present for any experiment (the runner also records it when `gcc_present` is in metrics)."""

    name = "gcc"

    def after_build(self, ctx: ProbeContext) -> dict[str, float]:
        if not ctx.image:
            return {}
        found, how = gcc_present(ctx.client, ctx.image, ctx.labels, ctx.track, ctx.workdir)
        ctx.details[self.name] = {"method": how}
        return {"gcc_present": float(found)}
