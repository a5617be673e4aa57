"""Observing an image now: from the registry (digest, layers, compressed size) and the engine
(uncompressed size, packages, Python), or from the local engine alone.

This is the only drift module that talks to a registry or an engine; it returns observation
records (harness.drift.schema) and stores nothing.
"""

from __future__ import annotations

import contextlib
from typing import Any

from harness.drift.probe import PROBE_SCRIPT, parse_pip, parse_probe
from harness.drift.schema import SCHEMA, SCHEMA_VERSION, Observation, canonical, utcnow
from harness.errors import EnvironmentProblem, HarnessError, UsageError
from harness.registry_client import DOCKER_HUB, Reference, RegistryClient, parse_ref

PROBE_TIMEOUT = 120.0


def observe(
    image_ref: str,
    *,
    registry: RegistryClient | None = None,
    client: Any = None,
    inspect: bool = True,
    keep_image: bool = False,
) -> Observation:
    """Observe one image tag now.

    The registry gives the digest, layers and compressed size (RegistryError, exit 3, when it
    cannot be reached: nothing is recorded then). With `inspect` (default), the image is pulled
    by digest through the engine (`client`: a docker SDK client, default `docker.from_env()`) for
    its uncompressed size, package list and Python version; engine problems are kept in the
    observation's `errors` and leave those fields None. A reference the pull created is removed
    afterwards unless `keep_image`.

    Returns a dict: schema, schema_version, image, registry, repository, tag, digest,
    index_digest, image_id, compressed_bytes, uncompressed_bytes, layers, layer_digests,
    layer_sizes, package_manager, packages ({name: version} or None), python_version,
    observed_at (UTC), source ("registry"), errors (list of one-line strings).
    """
    ref = parse_ref(image_ref)
    registry = registry or RegistryClient()
    info = registry.resolve(ref)
    obs: Observation = {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "image": ref.familiar(),
        "registry": ref.registry,
        "repository": ref.repository,
        "tag": ref.tag,
        "digest": info.digest,
        "index_digest": info.index_digest,
        "image_id": info.config_digest,
        "compressed_bytes": info.compressed_bytes,
        "uncompressed_bytes": None,
        "layers": len(info.layers),
        "layer_digests": [layer["digest"] for layer in info.layers],
        "layer_sizes": [layer["size"] for layer in info.layers],
        "package_manager": None,
        "packages": None,
        "python_version": None,
        "observed_at": utcnow(),
        "source": "registry",
        "errors": [],
    }
    if inspect:
        try:
            _inspect_in_engine(obs, ref.with_digest(info.digest), client, keep_image=keep_image)
        except HarnessError as exc:
            obs["errors"].append(str(exc))
    return obs


def observe_local(image_ref: str, *, client: Any = None) -> Observation:
    """Observe an image in the local engine, no registry and no network: image ID (and registry digest
    when it has one), uncompressed bytes, layers (diff IDs and sizes from the image history),
    OS packages with versions and Python distributions with versions, read by a throw-away
    container with `--network=none`. Same schema as `observe` with source "engine";
    compressed_bytes is None (only a registry knows it)."""
    import docker.errors  # the docker SDK: loaded only when an engine is used

    client = _engine(client)
    try:
        image = client.images.get(image_ref)
    except docker.errors.ImageNotFound:
        raise UsageError(f"{image_ref}: no such image in the local engine") from None
    except docker.errors.DockerException as exc:
        raise EnvironmentProblem(f"{image_ref}: engine: {_one_line(exc)}") from None
    attrs = image.attrs
    diff_ids = list((attrs.get("RootFS") or {}).get("Layers") or [])
    try:
        history = client.api.history(image.id)
    except docker.errors.DockerException:
        history = []
    sizes = [int(h.get("Size") or 0) for h in reversed(history) if (h.get("Size") or 0) > 0]
    repo_digests = [d for d in attrs.get("RepoDigests") or [] if "@" in d]
    obs: Observation = {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "image": canonical(image_ref),
        "registry": None,
        "repository": None,
        "tag": None,
        "digest": image.id,
        "index_digest": None,
        "image_id": image.id,
        "registry_digests": repo_digests,
        "compressed_bytes": None,
        "uncompressed_bytes": int(attrs.get("Size") or 0),
        "layers": len(diff_ids),
        "layer_digests": diff_ids,
        "layer_sizes": sizes if len(sizes) == len(diff_ids) else None,
        "package_manager": None,
        "packages": None,
        "python_version": None,
        "python_packages": None,
        "observed_at": utcnow(),
        "source": "engine",
        "errors": [],
    }
    try:
        out = _run_probe(client, image.id)
        obs["package_manager"], obs["packages"], obs["python_version"] = parse_probe(out)
        obs["python_packages"] = parse_pip(out)
    except (HarnessError, docker.errors.DockerException) as exc:
        obs["errors"].append(str(exc) if isinstance(exc, HarnessError) else _one_line(exc))
    return obs


def _engine(client: Any) -> Any:
    if client is not None:
        return client
    try:
        import docker  # the docker SDK: loaded only when an engine is used

        return docker.from_env(timeout=300)
    except Exception as exc:  # noqa: BLE001 - docker.errors.DockerException and friends
        raise EnvironmentProblem(f"cannot connect to the Docker engine: {_one_line(exc)}") from None


def _one_line(exc: BaseException) -> str:
    text = str(getattr(exc, "explanation", None) or exc).strip().splitlines()
    return (text[-1] if text else type(exc).__name__)[:300]


def _inspect_in_engine(obs: Observation, pinned: Reference, client: Any, *, keep_image: bool) -> None:
    import docker.errors  # the docker SDK: loaded only when an engine is used

    client = _engine(client)
    name = str(pinned) if pinned.registry != DOCKER_HUB else pinned.familiar()
    existed = True
    try:
        client.images.get(name)
    except docker.errors.ImageNotFound:
        existed = False
    except docker.errors.DockerException as exc:
        raise EnvironmentProblem(f"{obs['image']}: engine: {_one_line(exc)}") from None
    try:
        if not existed:
            repo, _, digest = name.partition("@")
            client.images.pull(repo, tag=digest)
        image = client.images.get(name)
        obs["uncompressed_bytes"] = int(image.attrs.get("Size") or 0)
        obs["image_id"] = image.id or obs["image_id"]
        engine_layers = len((image.attrs.get("RootFS") or {}).get("Layers") or [])
        if engine_layers and engine_layers != obs["layers"]:
            obs["errors"].append(
                f"{obs['image']}: engine counts {engine_layers} layers, the manifest {obs['layers']}"
            )
        out = _run_probe(client, name)
        obs["package_manager"], obs["packages"], obs["python_version"] = parse_probe(out)
        obs["python_packages"] = parse_pip(out)
    except docker.errors.DockerException as exc:
        raise EnvironmentProblem(f"{obs['image']}: engine: {_one_line(exc)}") from None
    finally:
        if not existed and not keep_image:
            with contextlib.suppress(docker.errors.DockerException):
                client.images.remove(name, noprune=False)


def _run_probe(client: Any, image: str) -> str:
    import docker.errors  # the docker SDK: loaded only when an engine is used

    container = client.containers.create(
        image, command=["sh", "-c", PROBE_SCRIPT], entrypoint=[], network_mode="none", user="0", detach=True
    )
    try:
        container.start()
        try:
            status = container.wait(timeout=PROBE_TIMEOUT)
        except Exception:  # noqa: BLE001 - requests' ReadTimeout / ConnectionError: the probe did not finish
            raise EnvironmentProblem(
                f"{image}: the package probe did not finish in {PROBE_TIMEOUT:g} s"
            ) from None
        out: str = container.logs(stdout=True, stderr=False).decode("utf-8", "replace")
        if "@@end" not in out:
            err = container.logs(stdout=False, stderr=True).decode("utf-8", "replace").strip()
            raise EnvironmentProblem(
                f"{image}: package probe failed (exit {status.get('StatusCode')}): "
                f"{(err.splitlines() or ['no output'])[-1][:200]}"
            )
        return out
    finally:
        with contextlib.suppress(docker.errors.DockerException):
            container.remove(force=True)
