"""The ci runner's engine: a throw-away dockerd with the containerd image store, and the registry side.

buildx's `docker` driver exports cache to `registry`/`local` (and pushes an image with inline cache)
only when the engine uses the containerd image store (`"features": {"containerd-snapshotter": true}`
in daemon.json; Engine 26.1 here). Its snapshotter is `overlayfs` (containerd has no `vfs`, which the
other second engines use). `reset()` gives the state of a fresh runner: no build cache, no images.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import cast

from harness.ci.accounting import manifest_blobs
from harness.errors import EnvironmentProblem, LabError
from harness.lab import registry as labreg
from harness.lab.engine2 import MirrorEngine, daemon_config, namespaced_command
from harness.lab.registry import Manifest
from harness.probes.tls import dockerd_command
from harness.records import JSONObject

SNAPSHOTTER = "overlayfs"


def containerd_config(mirror: str) -> JSONObject:
    """Pure: daemon.json of the ci engine (the lab registry as mirror, the containerd image store)."""
    return {**daemon_config(mirror), "features": {"containerd-snapshotter": True}}


def engine_command(cmd: list[str], exe: str, ns: str) -> list[str]:
    """Pure: the second-daemon command line with the containerd snapshotter and its own namespaces."""
    out = namespaced_command(cmd, exe, ns)
    return [f"--storage-driver={SNAPSHOTTER}" if c.startswith("--storage-driver=") else c for c in out]


class CacheEngine(MirrorEngine):
    """A MirrorEngine with the containerd image store; `docker()` talks to it, `env()` points buildx at it."""

    label = "ci engine (containerd image store)"
    ns_prefix = "imagebench-ci-"

    def config(self) -> JSONObject:
        return containerd_config(self.mirror)

    def command(self, exe: str, ns: str, bridge: str) -> list[str]:
        return engine_command(dockerd_command(self.root, self.port, None, bridge), exe, ns)

    def check_started(self) -> None:
        info = self.docker("info", "--format", "{{json .DriverStatus}}")
        if "io.containerd.snapshotter" not in info.stdout:
            raise EnvironmentProblem(
                f"the ci engine did not enable the containerd image store: {info.stdout.strip()[:200]}"
            )

    def env(self) -> dict[str, str]:
        """The environment of a buildx command on this engine (its default, docker-driver builder)."""
        env = dict(os.environ)
        env.pop("DOCKER_CONTEXT", None)
        env["DOCKER_HOST"] = self.host
        env.setdefault("BUILDX_NO_DEFAULT_ATTESTATIONS", "1")
        env.pop("BUILDKIT_PROGRESS", None)
        return env

    def reset(self) -> None:
        """A fresh runner: build cache pruned, every image removed; verified empty (EnvironmentProblem)."""
        self.docker("buildx", "prune", "--all", "--force", timeout=300)
        ids = self.docker("image", "ls", "--all", "--quiet", "--no-trunc").stdout.split()
        if ids:
            self.docker("image", "rm", "--force", *sorted(set(ids)), timeout=300)
        left = self.state()
        if left["images"] or left["build_cache"]:
            raise EnvironmentProblem(f"the ci engine is not empty after reset: {left}")

    def state(self) -> dict[str, int]:
        """{images, build_cache}: how many of each the engine holds."""
        images = len(self.docker("image", "ls", "--all", "--quiet").stdout.split())
        du = self.docker("buildx", "du", "--verbose").stdout
        records = sum(1 for ln in du.splitlines() if ln.startswith("ID:"))
        return {"images": images, "build_cache": records}


class RegistryAnswer(Manifest, total=False):
    """A manifest, an image index or a tag list, as the registry's JSON answers."""

    tags: list[str]


def _get(url: str) -> tuple[RegistryAnswer | None, int, str]:
    """(manifest JSON or None on 404, its size in bytes, its digest) from the registry over HTTP."""
    req = urllib.request.Request(url, headers={"Accept": labreg.MANIFEST_ACCEPT})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            body = r.read()
            digest = r.headers.get("Docker-Content-Digest") or ""
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None, 0, ""
        raise LabError(f"registry answered {exc.code} for {url}") from None
    except OSError as exc:
        raise LabError(f"registry at {url.split('/v2/')[0]} is not answering: {exc}") from None
    return cast(RegistryAnswer, json.loads(body)), len(body), digest


def tags(registry: str, repo: str) -> list[str]:
    data, _, _ = _get(f"http://{registry}/v2/{repo}/tags/list")
    return list((data or {}).get("tags") or [])


def repo_blobs(registry: str, repos: tuple[str, ...]) -> dict[str, int]:
    """{digest: size} of every blob (manifests included) the repositories' tags reach."""
    out: dict[str, int] = {}
    for repo in repos:
        todo = list(tags(registry, repo))
        seen: set[str] = set()
        while todo:
            ref = todo.pop()
            manifest, size, digest = _get(f"http://{registry}/v2/{repo}/manifests/{ref}")
            if manifest is None or digest in seen:
                continue
            seen.add(digest)
            blobs, children = manifest_blobs(manifest, digest, size)
            out.update(blobs)
            todo += children
    return out


def image_manifest(registry: str, repo: str, reference: str) -> RegistryAnswer | None:
    """An image's manifest (an index's linux/amd64 one, else its first); None when there is none."""
    manifest, _, _ = _get(f"http://{registry}/v2/{repo}/manifests/{reference}")
    if manifest is not None and "manifests" in manifest:
        subs = manifest["manifests"] or [{}]
        pick = next((m for m in subs if (m.get("platform") or {}).get("architecture") == "amd64"), subs[0])
        manifest, _, _ = _get(f"http://{registry}/v2/{repo}/manifests/{pick.get('digest')}")
    return manifest


def base_layers(registry: str, lab_tag: str) -> tuple[str, list[str]]:
    """(config digest = the image id, layer digests) of a lab base as the lab registry holds it."""
    repo, _, tag = lab_tag.rpartition(":")
    manifest = image_manifest(registry, repo, tag)
    if manifest is None:
        raise LabError(
            f"the lab registry has no {lab_tag}", hint="run `imagebench lab up` (it pushes the bases)"
        )
    return manifest["config"]["digest"], [layer["digest"] for layer in manifest.get("layers") or ()]


def image_layers(registry: str, ref: str) -> list[str]:
    """Layer digests of an image in the registry (`<registry>/<repo>:<tag>`); [] when it is not there."""
    repo, _, tag = ref.removeprefix(registry + "/").rpartition(":")
    manifest = image_manifest(registry, repo, tag)
    return [layer["digest"] for layer in (manifest or {}).get("layers") or ()]


def delete_repos(registry: str, repos: tuple[str, ...]) -> None:
    """Delete every tag's manifest in the repositories (blobs wait for the registry's garbage collection)."""
    for repo in repos:
        for t in tags(registry, repo):
            _, _, digest = _get(f"http://{registry}/v2/{repo}/manifests/{t}")
            if digest:
                req = urllib.request.Request(
                    f"http://{registry}/v2/{repo}/manifests/{digest}", method="DELETE"
                )
                try:
                    urllib.request.urlopen(req, timeout=30).close()
                except urllib.error.HTTPError as exc:
                    if exc.code != 404:
                        raise LabError(f"registry refused to delete {repo}@{digest}: {exc.code}") from None
