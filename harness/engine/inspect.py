"""Image inspection through the docker SDK: bytes, layers, history, config, installed packages."""

from __future__ import annotations

import inspect
import json
import subprocess
from collections.abc import Iterator
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol, TypedDict, cast

from harness.errors import EngineUnavailable
from harness.records import JSONObject

if TYPE_CHECKING:
    import docker


class RootFS(TypedDict, total=False):
    Layers: list[str]


class ImageConfig(TypedDict, total=False):
    """The keys of an image's (or container's) Config imagebench reads."""

    User: str
    Entrypoint: list[str] | None
    Cmd: list[str] | None
    Healthcheck: JSONObject | None
    Labels: dict[str, str] | None
    Env: list[str] | None
    ExposedPorts: dict[str, JSONObject] | None
    WorkingDir: str
    StopSignal: str


class GraphDriver(TypedDict, total=False):
    Name: str
    Data: dict[str, str] | None


class ImageAttrs(TypedDict, total=False):
    """The keys of an image's inspect data (`docker image inspect`, APIClient.inspect_image) we read."""

    Id: str
    Size: int
    RootFS: RootFS
    Config: ImageConfig
    GraphDriver: GraphDriver
    Created: str
    RepoDigests: list[str]
    RepoTags: list[str]


class HistoryEntry(TypedDict, total=False):
    """One entry of an image's history (APIClient.history)."""

    Id: str
    Created: int
    CreatedBy: str
    Size: int
    Comment: str


class DockerAPI(Protocol):
    """The calls of the docker SDK's low-level APIClient imagebench types (types-docker leaves them untyped)."""

    def inspect_image(self, image: str) -> ImageAttrs: ...

    def history(self, image: str) -> list[HistoryEntry]: ...

    def get_image(self, image: str, chunk_size: int | None = ...) -> Iterator[bytes]: ...


def low_level(c: docker.DockerClient) -> DockerAPI:
    """The client's low-level API, with the calls above typed."""
    return c.api


class ImageFacts(TypedDict):
    """What `image_facts` reads of an image: sizes, layers and the config essentials."""

    id: str
    bytes: int
    layers: int
    layer_bytes: list[int]
    storage_driver: str | None
    user: str
    entrypoint: list[str] | None
    cmd: list[str] | None
    healthcheck: bool
    created: str | None


class BaseSplit(TypedDict, total=False):
    """An image's size split at the base it was built FROM (`split_layers`; empty when none is)."""

    base: str
    base_image_id: str
    base_layers: int
    base_bytes: int
    own_bytes: int
    own_layers: int


class CacheRecord(TypedDict, total=False):
    """A build cache record of `/system/df` (the keys read here)."""

    ID: str
    InUse: bool
    Size: int


LABEL = "imagebench.run"


@lru_cache(maxsize=1)
def client() -> docker.DockerClient:
    """A docker SDK client negotiated with the daemon (DOCKER_HOST respected)."""
    import docker  # the docker SDK: loaded only when an engine is used

    try:
        c = docker.from_env(version="auto", timeout=300)
        c.ping()
    except Exception as exc:  # noqa: BLE001 - docker raises several unrelated types here
        raise EngineUnavailable(
            f"Docker engine not answering ({type(exc).__name__}: {str(exc)[:120]})",
            hint="start it with scripts/install-engine.sh or check DOCKER_HOST",
        ) from None
    return c


def image_facts(image: str) -> ImageFacts:
    """Uncompressed bytes, layer count, per-layer bytes (oldest first), config essentials."""
    api = low_level(client())
    attrs = api.inspect_image(image)
    history = api.history(image)
    layer_bytes = [int(h.get("Size") or 0) for h in reversed(history) if (h.get("Size") or 0) > 0]
    cfg = attrs.get("Config") or {}
    return {
        "id": attrs["Id"],
        "bytes": int(attrs.get("Size") or 0),
        "layers": len((attrs.get("RootFS") or {}).get("Layers") or []),
        "layer_bytes": layer_bytes,
        "storage_driver": (attrs.get("GraphDriver") or {}).get("Name"),
        "user": cfg.get("User") or "",
        "entrypoint": cfg.get("Entrypoint"),
        "cmd": cfg.get("Cmd"),
        "healthcheck": bool(cfg.get("Healthcheck")),
        "created": attrs.get("Created"),
    }


_PKG_SCRIPT = r"""
if command -v dpkg-query >/dev/null 2>&1 || command -v apk >/dev/null 2>&1; then
  n_os=$( (dpkg-query -W -f '${Package}\n' 2>/dev/null || apk info 2>/dev/null) | wc -l); n_files=-1
else  # no package database (e.g. the lab's musl base): count files instead of reporting 0 packages
  n_os=-1; n_files=$(find / -xdev \( -type f -o -type l \) 2>/dev/null | wc -l)
fi
py=$(command -v python3 || command -v python || true)
if [ -n "$py" ]; then
  n_py=$("$py" -c 'import importlib.metadata as m; print(len({(d.metadata["Name"] or "").lower() for d in m.distributions()} - {""}))' 2>/dev/null || echo -1)
else
  n_py=0
fi
gcc=0; command -v gcc >/dev/null 2>&1 && gcc=1
echo "{\"packages_os\": $n_os, \"os_files\": $n_files, \"packages_python\": $n_py, \"gcc_present\": $gcc}"
"""


def package_counts(image: str, labels: dict[str, str]) -> dict[str, int]:
    """OS and Python package counts (and whether gcc is on PATH) from a throw-away container.

    Images without a shell (distroless-like) report nothing rather than a wrong zero.
    """
    c = client()
    try:
        out = c.containers.run(
            image,
            ["sh", "-c", _PKG_SCRIPT],
            entrypoint=[],
            network_mode="none",
            remove=True,
            labels=labels,
            user="0",
            stdout=True,
            stderr=False,
        )
    except Exception:  # noqa: BLE001 - no answer from the image (any reason): no facts
        return {}
    try:
        data = json.loads(out.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {}
    return {k: int(v) for k, v in data.items() if isinstance(v, int) and v >= 0}


def remove_image(image: str) -> None:
    import docker.errors  # the docker SDK: loaded only when an engine is used

    try:
        client().images.remove(image, force=True, noprune=False)
    except docker.errors.ImageNotFound:
        pass
    except docker.errors.APIError:
        pass


def remove_tracked(tracked: list[tuple[str, str]], *, keep_images: bool = False) -> None:
    """Remove what a trial created, newest first: ("container"|"image"|"network"|"volume", id)."""
    import docker.errors  # the docker SDK: loaded only when an engine is used

    api = client().api
    for kind, ident in reversed(tracked):
        if kind == "image" and keep_images:
            continue
        try:
            if kind == "container":
                api.remove_container(ident, force=True, v=True)
            elif kind == "image":
                api.remove_image(ident, force=True)
            elif kind == "network":
                api.remove_network(ident)
            elif kind == "volume":
                api.remove_volume(ident, force=True)
        except docker.errors.APIError:
            pass


def labelled_leftovers(label_key: str = LABEL, value: str | None = None) -> dict[str, list[str]]:
    """Containers, images, networks and volumes that carry the harness label (optionally a run's value)."""
    c = client()
    flt: dict[str, str | list[str] | bool] = {"label": f"{label_key}={value}" if value else label_key}
    return {
        "containers": [x.id for x in c.containers.list(all=True, filters=flt) if x.id],
        "images": [x.id for x in c.images.list(filters=flt) if x.id],
        "networks": [x.id for x in c.networks.list(filters=flt) if x.id],
        "volumes": [x.id for x in c.volumes.list(filters=flt) if x.id],
    }


def remove_labelled(label_key: str = LABEL, value: str | None = None) -> dict[str, int]:
    """Remove everything labelled by the harness (or by one run): containers first, then the rest."""
    import docker.errors  # the docker SDK: loaded only when an engine is used

    c = client()
    flt: dict[str, str | list[str] | bool] = {"label": f"{label_key}={value}" if value else label_key}
    counts = {"containers": 0, "images": 0, "networks": 0, "volumes": 0}
    for x in c.containers.list(all=True, filters=flt):
        try:
            x.remove(force=True, v=True)
            counts["containers"] += 1
        except docker.errors.APIError:
            pass
    for image in c.images.list(filters=flt):
        try:
            c.images.remove(image.id or "", force=True)
            counts["images"] += 1
        except docker.errors.APIError:
            pass
    for network in c.networks.list(filters=flt):
        try:
            network.remove()
            counts["networks"] += 1
        except docker.errors.APIError:
            pass
    for volume in c.volumes.list(filters=flt):
        try:
            volume.remove(force=True)
            counts["volumes"] += 1
        except docker.errors.APIError:
            pass
    return counts


def build_cache_records() -> list[CacheRecord]:
    """The builder's cache records (empty list when pruned).

    Asks `/system/df` for the build cache only (API >= 1.42): the full answer sizes every image,
    container and volume, which took up to seconds per trial; older engines ignore the filter."""
    # APIClient's request helpers (_url, _get, _result) are private: types-docker does not declare them
    api: Any = client().api
    df = api._result(api._get(api._url("/system/df"), params={"type": "build-cache"}), True)
    return cast(list[CacheRecord], list(df.get("BuildCache") or []))


def prune_build_cache(builder: str | None = None) -> None:
    """Prune the whole build cache (all records) and verify it is empty; raise if it is not."""
    if builder and builder != "default":
        subprocess.run(
            ["docker", "buildx", "prune", "-af", "--builder", builder],
            check=False,
            capture_output=True,
            timeout=600,
        )
        return
    client().api.prune_builds(all=True) if _supports_all() else client().api.prune_builds()
    left = [r for r in build_cache_records() if not r.get("InUse")]
    if left:
        subprocess.run(["docker", "builder", "prune", "-af"], check=False, capture_output=True, timeout=600)
        left = [r for r in build_cache_records() if not r.get("InUse")]
        if left:
            raise EngineUnavailable(
                f"build cache not empty after prune ({len(left)} records); "
                "is another build running on this daemon?"
            )


def _supports_all() -> bool:
    return "all" in inspect.signature(client().api.prune_builds).parameters


# --------------------------------------------------------------------------- size attribution


def split_layers(image: str, bases: dict[str, str]) -> BaseSplit:
    """Which of `bases` ({name: image id}) the image's final stage was built FROM, by layers.

    The base is the one whose RootFS layers are the longest prefix of the image's; its bytes (the
    engine's `Size`, the sum of its layers' file bytes on the classic store) are the base part and
    the rest are our own layers. Empty when no base's layers are a prefix (FROM scratch, or a base
    that is not in the local store).
    """
    import docker.errors  # the docker SDK: loaded only when an engine is used

    api = low_level(client())
    attrs = api.inspect_image(image)
    layers = list((attrs.get("RootFS") or {}).get("Layers") or [])
    best: BaseSplit = {}
    for name, base_id in sorted(bases.items()):
        try:
            battrs = api.inspect_image(base_id)
        except docker.errors.APIError:
            continue
        blayers = list((battrs.get("RootFS") or {}).get("Layers") or [])
        if blayers and layers[: len(blayers)] == blayers and len(blayers) > best.get("base_layers", 0):
            best = {
                "base": name,
                "base_image_id": battrs["Id"],
                "base_layers": len(blayers),
                "base_bytes": int(battrs.get("Size") or 0),
            }
    if best:
        best["own_bytes"] = int(attrs.get("Size") or 0) - best["base_bytes"]
        best["own_layers"] = len(layers) - best["base_layers"]
    return best


def split_compressed(layer_sizes: list[int], base_layers: int) -> dict[str, int]:
    """Pure: registry layer sizes (RootFS order) split at the base's layer count."""
    sizes = [int(x) for x in layer_sizes]
    if base_layers > len(sizes):
        return {}
    return {
        "base_bytes_compressed": sum(sizes[:base_layers]),
        "own_bytes_compressed": sum(sizes[base_layers:]),
    }
