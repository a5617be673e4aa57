"""The lab's local registry (Debian's docker-registry, distribution 2.8) and what we read from it.

`compressed_bytes(ref)` reads a manifest over HTTP: the sum of `layers[].size` is the
compressed transfer size that Docker Hub and docker-library/repo-info report.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TypedDict, cast

from harness.errors import LabError
from harness.lab import procs
from harness.lab.state import PushRecord


class Platform(TypedDict, total=False):
    os: str
    architecture: str


class ManifestRef(TypedDict, total=False):
    """One entry of an image index: a platform's manifest (or, in BuildKit's cache index, a blob)."""

    mediaType: str
    digest: str
    size: int
    platform: Platform


class Layer(TypedDict, total=False):
    """A blob a manifest names: a layer or the image config."""

    mediaType: str
    digest: str
    size: int


class Manifest(TypedDict, total=False):
    """The keys of an image manifest or image index the lab (and the ci trials) read."""

    mediaType: str
    config: Layer
    manifests: list[ManifestRef]
    layers: list[Layer]


BINARY = "docker-registry"
MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)
INDEX_TYPES = {
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
}


def config_text(root: Path, port: int) -> str:
    """Pure: a registry config (YAML is a superset of JSON, so json.dumps is valid YAML)."""
    cfg = {
        "version": 0.1,
        "log": {"level": "warn", "fields": {"service": "imagebench-registry"}},
        "storage": {
            "filesystem": {"rootdirectory": str(root / "data")},
            "delete": {"enabled": True},
            "cache": {"blobdescriptor": "inmemory"},
        },
        "http": {"addr": f"{procs.HOST}:{port}", "headers": {"X-Content-Type-Options": ["nosniff"]}},
    }
    return json.dumps(cfg, indent=2) + "\n"


def start(root: Path, port: int) -> procs.Proc:
    binary = shutil.which(BINARY)
    if not binary:
        raise LabError(
            "docker-registry is not installed", hint="run `imagebench lab up` as root to install it"
        )
    procs.require_free(port, "registry", "IMAGEBENCH_REGISTRY_PORT")
    (root / "data").mkdir(parents=True, exist_ok=True)
    conf = root / "config.yml"
    conf.write_text(config_text(root, port))
    return procs.spawn("registry", [binary, "serve", str(conf)], root / "registry.log", port=port)


def split_ref(ref: str) -> tuple[str, str, str]:
    """Pure: '127.0.0.1:5000/a/b:tag' -> ('127.0.0.1:5000', 'a/b', 'tag'); '@sha256:..' keeps the digest."""
    host, _, rest = ref.partition("/")
    if not rest or ("." not in host and ":" not in host and host != "localhost"):
        raise LabError(f"{ref!r} names no registry host", hint="use 127.0.0.1:5000/REPO:TAG")
    if "@" in rest:
        repo, _, reference = rest.partition("@")
    else:
        repo, sep, tag = rest.rpartition(":")
        if not sep or "/" in tag:
            repo, tag = rest, "latest"
        reference = tag
    return host, repo, reference


def _get(url: str, accept: str, timeout: float = 30.0) -> tuple[Manifest, dict[str, str]]:
    req = urllib.request.Request(url, headers={"Accept": accept})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return cast(Manifest, json.loads(r.read())), dict(r.headers)
    except urllib.error.HTTPError as exc:
        raise LabError(f"registry answered {exc.code} for {url}", hint="was the image pushed?")
    except OSError as exc:
        raise LabError(
            f"registry at {url.split('/v2/')[0]} is not answering: {exc}", hint="run `imagebench lab up`"
        )


def compressed_bytes(ref: str, platform: str = "linux/amd64") -> tuple[str | None, list[int]]:
    """(manifest digest, [compressed layer sizes]) of an image in a registry reachable over HTTP."""
    host, repo, reference = split_ref(ref)
    base = f"http://{host}/v2/{repo}/manifests/"
    manifest, headers = _get(base + reference, MANIFEST_ACCEPT)
    digest = headers.get("Docker-Content-Digest") or headers.get("docker-content-digest")
    mtype = manifest.get("mediaType") or headers.get("Content-Type", "")
    if mtype in INDEX_TYPES or "manifests" in manifest:
        os_, arch = platform.split("/")[:2]
        chosen = next(
            (
                m
                for m in manifest["manifests"]
                if m.get("platform", {}).get("os") == os_
                and m.get("platform", {}).get("architecture") == arch
            ),
            None,
        )
        if chosen is None:
            raise LabError(f"{ref} has no {platform} manifest")
        manifest, headers = _get(base + chosen["digest"], MANIFEST_ACCEPT)
        digest = chosen["digest"]
    layers = [int(layer["size"]) for layer in manifest.get("layers", [])]
    return digest, layers


def alive(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{procs.HOST}:{port}/v2/", timeout=3) as r:
            return bool(r.status == 200)
    except (OSError, urllib.error.HTTPError):
        return False


def push(image_ref: str, registry: str, repo: str, timeout: float = 900.0) -> PushRecord:
    """Tag image_ref as registry/repo and push it; measure; read the manifest back."""
    target = f"{registry}/{repo}"
    if ":" not in repo.rsplit("/", 1)[-1]:
        target += ":latest"
    tag = subprocess.run(["docker", "tag", image_ref, target], capture_output=True, text=True, timeout=60)
    if tag.returncode != 0:
        raise LabError(f"cannot tag {image_ref} as {target}: {procs.tail_text(tag.stderr)}")
    t0 = time.perf_counter()
    cp = subprocess.run(
        ["docker", "push", "--quiet", target], capture_output=True, text=True, timeout=timeout
    )
    seconds = time.perf_counter() - t0
    if cp.returncode != 0:
        raise LabError(
            f"push of {target} failed: {procs.tail_text(cp.stderr or cp.stdout)}",
            hint="is the lab registry up? `imagebench lab status`",
        )
    digest, layers = compressed_bytes(target)
    return {
        "ref": target,
        "manifest_digest": digest,
        "layer_sizes": layers,
        "compressed_bytes": sum(layers),
        "push_seconds": round(seconds, 4),
    }
