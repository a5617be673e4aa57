"""tags: what a tag is worth when it moves (base images) and when it is reused (your own images).

Variant options (`run = {...}`), one of:

  base = "tag" | "digest"
      before_build builds a small base (the experiment's `base.Dockerfile`, RELEASE=1), pushes it to
      the lab registry as <registry>/imagebench-tags/base-<nonce>:latest and passes BASE to the
      variant's `ARG BASE` + `FROM ${BASE}`: the tag, or the pinned `@sha256:` digest.
      after_build builds RELEASE=2, pushes it under the same tag (the tag moves), rebuilds the
      variant and compares. output_changed = 1 when the rebuilt image differs.
  push_as = "latest" | "commit"
      after_build pushes the built image as :latest or :<commit-hash>, builds a new version
      (APP_VERSION=2) and pushes it the same way, then pulls the *first* tag again from the
      registry. rollback_possible = 1 when that pull gives back the first image.

Local copies of the registry tags are removed after each push, so builds and pulls resolve them
in the registry like a fresh CI machine would.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path
from typing import Any

from harness.errors import LabError, ProbeFailed, UsageError
from harness.probes import BuildExtras, Probe, ProbeContext, register


def registry_of(ctx: ProbeContext) -> str:
    reg = getattr(ctx.lab, "registry", None) or os.environ.get("IMAGEBENCH_REGISTRY")
    if not reg:
        raise LabError("this probe needs the lab registry (imagebench lab up)")
    return str(reg)


def push(client: Any, image: str, repo: str, tag: str, _labels_track: Any = None) -> str:
    """Tag `image` as repo:tag, push it, drop the local tag; returns the manifest digest."""
    client.api.tag(image, repo, tag)
    digest: str | None = None
    try:
        for msg in client.api.push(repo, tag=tag, stream=True, decode=True):
            if msg.get("error"):
                raise ProbeFailed(f"push {repo}:{tag}: {msg['error']}")
            aux = msg.get("aux") or {}
            if aux.get("Digest"):
                digest = aux["Digest"]
    finally:
        with contextlib.suppress(Exception):
            client.api.remove_image(f"{repo}:{tag}", noprune=True)
    if not digest:
        raise ProbeFailed(f"push {repo}:{tag}: the registry reported no digest")
    return digest


def pull_id(client: Any, repo: str, tag: str, track: Any) -> str | None:
    """Pull repo:tag from the registry; the image ID, or None when the tag is gone."""
    import docker.errors  # lazy: the docker SDK costs ~0.8 s to import, and every probe module is loaded to list them

    try:
        img = client.images.pull(repo, tag=tag)
    except docker.errors.APIError:
        return None
    image_id: str = img.id
    track("image", image_id)
    with contextlib.suppress(Exception):
        client.api.remove_image(f"{repo}:{tag}", noprune=True)
    return image_id


def commit_tag(image_id: str, version: int) -> str:
    """A commit-hash style tag (what CI would use: the source revision)."""
    return "git-" + hashlib.sha1(f"{image_id}:{version}".encode()).hexdigest()[:12]


@register
class TagsProbe(Probe):
    name = "tags"
    needs = ("registry",)

    def __init__(self) -> None:
        self._base_repo: str | None = None

    def _mode(self, ctx: ProbeContext) -> tuple[str, str]:
        run = ctx.variant.run or {}
        if run.get("base") in ("tag", "digest"):
            return "base", run["base"]
        if run.get("push_as") in ("latest", "commit"):
            return "push_as", run["push_as"]
        raise UsageError(
            f"experiment {ctx.experiment.name}, variant {ctx.variant.name}: set run.base "
            "('tag'|'digest') or run.push_as ('latest'|'commit')"
        )

    def _base_image(self, ctx: ProbeContext, release: int) -> str:
        if ctx.build is None:
            raise ProbeFailed("the tags probe needs the runner's build callback")
        base_df = Path(ctx.experiment.path) / "base.Dockerfile"
        res = ctx.build(
            dockerfile=base_df,
            build_args={"RELEASE": str(release)},
            tag=f"imagebench-tags/base-{ctx.nonce}:release-{release}",
            target=None,
        )
        if not res.ok or not res.image_id:
            raise ProbeFailed(f"building base release {release} failed: {res.error}")
        image_id: str = res.image_id
        ctx.track("image", image_id)
        return image_id

    def before_build(self, ctx: ProbeContext) -> BuildExtras:
        kind, how = self._mode(ctx)
        if kind != "base":
            return BuildExtras()
        reg = registry_of(ctx)
        self._base_repo = f"{reg}/imagebench-tags/base-{ctx.nonce}"
        v1 = self._base_image(ctx, 1)
        digest = push(ctx.client, v1, self._base_repo, "latest")
        self._v1_digest = digest
        ref = f"{self._base_repo}:latest" if how == "tag" else f"{self._base_repo}@{digest}"
        return BuildExtras(build_args={"BASE": ref})

    def after_build(self, ctx: ProbeContext) -> dict[str, float]:
        if not ctx.image:
            return {}
        kind, how = self._mode(ctx)
        if kind == "base":
            return self._moved_base(ctx, how)
        return self._rollback(ctx, how)

    def _moved_base(self, ctx: ProbeContext, how: str) -> dict[str, float]:
        assert self._base_repo is not None
        v2 = self._base_image(ctx, 2)
        d2 = push(ctx.client, v2, self._base_repo, "latest")  # the tag moves
        if ctx.build is None:
            raise ProbeFailed("the tags probe needs the runner's build callback")
        res = ctx.build()
        if not res.ok or not res.image_id:
            raise ProbeFailed(f"rebuild after the base tag moved failed: {res.error}")
        changed = res.image_id != ctx.image
        ctx.details[self.name] = {
            "from": "tag :latest" if how == "tag" else "pinned digest",
            "base_digest_first": self._v1_digest,
            "base_digest_moved_to": d2,
            "first_image": ctx.image,
            "rebuilt_image": res.image_id,
        }
        return {"output_changed": 1.0 if changed else 0.0}

    def _rollback(self, ctx: ProbeContext, how: str) -> dict[str, float]:
        if ctx.build is None:
            raise ProbeFailed("the tags probe needs the runner's build callback")
        assert ctx.image is not None  # after_build: the image is built
        repo = f"{registry_of(ctx)}/imagebench-tags/app-{ctx.nonce}"
        tag1 = "latest" if how == "latest" else commit_tag(ctx.image, 1)
        push(ctx.client, ctx.image, repo, tag1)
        res = ctx.build(build_args={"APP_VERSION": "2"})
        if not res.ok or not res.image_id:
            raise ProbeFailed(f"building the next version failed: {res.error}")
        tag2 = "latest" if how == "latest" else commit_tag(res.image_id, 2)
        push(ctx.client, res.image_id, repo, tag2)
        got = pull_id(ctx.client, repo, tag1, ctx.track)
        ok = got == ctx.image
        ctx.details[self.name] = {
            "first_tag": tag1,
            "second_tag": tag2,
            "first_tag_now_gives": "first image"
            if ok
            else ("second image" if got == res.image_id else "nothing"),
        }
        return {"rollback_possible": 1.0 if ok else 0.0}
