"""A small Docker Registry HTTP API v2 client: tag -> manifest digest, layer sizes, config.

Only what drift tracking needs, with the standard library (no daemon involved):

- `parse_ref("python:3.13-slim")` normalises a reference the way the docker CLI does
  (`docker.io/library/python:3.13-slim`, served by `registry-1.docker.io`).
- `RegistryClient().resolve(ref)` fetches the manifest; a manifest list / OCI index is
  followed to its linux/amd64 entry (attestation manifests are ignored). The result carries
  the index digest, the platform manifest digest, the layer digests and compressed sizes,
  and the config digest (the image ID).
- Public registries get the anonymous bearer-token flow (`WWW-Authenticate: Bearer realm=...`);
  registries on 127.0.0.0/8 and `localhost` are spoken to over plain HTTP, as the engine does.
- Every failure is a `RegistryError` (an `EnvironmentProblem`, exit 3) with a one-line message
  naming the registry and the reference.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import socket
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any, TypedDict, cast

from harness.errors import EnvironmentProblem, UsageError
from harness.records import JSONObject


class LayerInfo(TypedDict):
    """A layer of a platform manifest: its digest, compressed size and media type."""

    digest: str | None
    size: int
    mediaType: str | None


class _Platform(TypedDict, total=False):
    os: str
    architecture: str


class _Descriptor(TypedDict, total=False):
    """A descriptor in a manifest or index (OCI image spec): digest, size, media type, platform."""

    digest: str
    size: int
    mediaType: str
    platform: _Platform
    annotations: dict[str, str]


class _Manifest(TypedDict, total=False):
    """A manifest or an index as a registry serves it: the keys read here."""

    schemaVersion: int
    mediaType: str
    config: _Descriptor
    layers: list[_Descriptor]
    manifests: list[_Descriptor]


class ManifestInfoRecord(TypedDict):
    """`ManifestInfo.to_dict()`."""

    reference: str
    digest: str
    media_type: str
    index_digest: str | None
    config_digest: str
    layers: list[LayerInfo]
    compressed_bytes: int


DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"

MT_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX_TYPES = (MT_DOCKER_LIST, MT_OCI_INDEX)
MANIFEST_TYPES = (MT_DOCKER_MANIFEST, MT_OCI_MANIFEST)
ACCEPT = ", ".join((MT_OCI_INDEX, MT_DOCKER_LIST, MT_OCI_MANIFEST, MT_DOCKER_MANIFEST))

_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_REPO_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")


class RegistryError(EnvironmentProblem):
    """A registry could not be reached or answered something unusable."""


@dataclass(frozen=True)
class Reference:
    """A normalised image reference."""

    registry: str  # as written, e.g. docker.io, 127.0.0.1:5000
    repository: str  # e.g. library/python
    tag: str | None = None
    digest: str | None = None

    @property
    def api_host(self) -> str:
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def reference(self) -> str:
        """What to put after /manifests/: the digest if pinned, else the tag."""
        return self.digest or self.tag or "latest"

    @property
    def name(self) -> str:
        """registry/repository as the engine spells it (no docker.io/library/ shortening)."""
        return f"{self.registry}/{self.repository}"

    def __str__(self) -> str:
        s = self.name
        if self.tag:
            s += f":{self.tag}"
        if self.digest:
            s += f"@{self.digest}"
        return s

    def familiar(self) -> str:
        """The short form people write: python:3.13-slim, 127.0.0.1:5000/x/y:tag."""
        if self.registry == DOCKER_HUB:
            repo = self.repository.removeprefix("library/")
        else:
            repo = f"{self.registry}/{self.repository}"
        s = repo
        if self.tag:
            s += f":{self.tag}"
        if self.digest:
            s += f"@{self.digest}"
        return s

    def with_digest(self, digest: str) -> Reference:
        return Reference(self.registry, self.repository, None, digest)


def parse_ref(ref: str) -> Reference:
    """Normalise an image reference like the docker CLI: `python` -> docker.io/library/python:latest."""
    text = str(ref).strip()
    if not text:
        raise UsageError("empty image reference")
    digest = None
    if "@" in text:
        text, digest = text.split("@", 1)
        if not _DIGEST_RE.match(digest):
            raise UsageError(f"{ref!r}: bad digest {digest!r}")
    first, sep, rest = text.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        registry, remainder = first, rest
    else:
        registry, remainder = DOCKER_HUB, text
    if registry in ("index.docker.io", "registry-1.docker.io"):
        registry = DOCKER_HUB
    tag = None
    last = remainder.rsplit("/", 1)[-1]
    if ":" in last:
        remainder, tag = remainder.rsplit(":", 1)
        if not _TAG_RE.match(tag):
            raise UsageError(f"{ref!r}: bad tag {tag!r}")
    if registry == DOCKER_HUB and "/" not in remainder:
        remainder = f"library/{remainder}"
    if not _REPO_RE.match(remainder):
        raise UsageError(f"{ref!r}: bad repository name {remainder!r}")
    if tag is None and digest is None:
        tag = "latest"
    return Reference(registry, remainder, tag, digest)


def is_loopback(host: str) -> bool:
    """True for localhost and 127.0.0.0/8 (and ::1): registries the engine talks plain HTTP to."""
    if host.startswith("["):  # [::1]:5000
        name = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:  # name:port
        name = host.split(":", 1)[0]
    else:  # name, or a bare IPv6 address
        name = host
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass
class ManifestInfo:
    """What a registry says about one tag (for one platform)."""

    reference: str  # the reference as given
    digest: str  # the platform manifest's digest
    media_type: str
    index_digest: str | None  # manifest list / OCI index digest, when the tag points to one
    config_digest: str  # the image ID
    layers: list[LayerInfo] = field(default_factory=list)

    @property
    def compressed_bytes(self) -> int:
        return sum(int(layer.get("size") or 0) for layer in self.layers)

    def to_dict(self) -> ManifestInfoRecord:
        return {
            "reference": self.reference,
            "digest": self.digest,
            "media_type": self.media_type,
            "index_digest": self.index_digest,
            "config_digest": self.config_digest,
            "layers": self.layers,
            "compressed_bytes": self.compressed_bytes,
        }


def _parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, params = header.strip().partition(" ")
    return scheme.lower(), dict(re.findall(r'(\w+)="([^"]*)"', params))


class RegistryClient:
    """Anonymous, read-only registry client. `timeout` is per HTTP request, in seconds."""

    def __init__(
        self,
        *,
        timeout: float = 15.0,
        platform: str = "linux/amd64",
        opener: urllib.request.OpenerDirector | None = None,
    ) -> None:
        self.timeout = timeout
        self.os, _, self.arch = platform.partition("/")
        self._opener = opener or urllib.request.build_opener()
        # loopback registries never go through $http_proxy (the engine does the same)
        self._direct = opener or urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self._tokens: dict[tuple[str, str], str] = {}
        self._down: dict[str, str] = {}  # host -> why it could not be reached (not retried by this client)

    # -- public API ------------------------------------------------------------------------
    def resolve(self, ref: str | Reference) -> ManifestInfo:
        """Tag (or digest) -> the linux/amd64 manifest: digest, layers with sizes, config digest."""
        r = ref if isinstance(ref, Reference) else parse_ref(ref)
        body, media_type, digest = self._get_manifest(r, r.reference)
        index_digest = None
        if media_type in INDEX_TYPES or "manifests" in body:
            index_digest = digest
            entry = self._pick_platform(r, body)
            body, media_type, digest = self._get_manifest(r, entry["digest"])
            if digest != entry["digest"]:
                raise RegistryError(
                    f"{r.familiar()}: {r.api_host} served a manifest whose digest "
                    f"{digest} differs from the index entry {entry['digest']}"
                )
        if "layers" not in body or "config" not in body:
            version = body.get("schemaVersion")
            raise RegistryError(
                f"{r.familiar()}: unsupported manifest (schemaVersion {version}, "
                f"{media_type or 'no media type'}) from {r.api_host}"
            )
        layers: list[LayerInfo] = [
            {
                "digest": layer.get("digest"),
                "size": int(layer.get("size") or 0),
                "mediaType": layer.get("mediaType"),
            }
            for layer in body["layers"]
        ]
        return ManifestInfo(
            reference=str(ref),
            digest=digest,
            media_type=media_type,
            index_digest=index_digest,
            config_digest=body["config"]["digest"],
            layers=layers,
        )

    def config(self, ref: str | Reference, info: ManifestInfo | None = None) -> JSONObject:
        """The image config blob (architecture, os, config.Env, rootfs, history)."""
        r = ref if isinstance(ref, Reference) else parse_ref(ref)
        info = info or self.resolve(r)
        data, _ = self._request(r, f"/v2/{r.repository}/blobs/{info.config_digest}", accept="*/*")
        try:
            config: JSONObject = json.loads(data)
            return config
        except ValueError:
            raise RegistryError(f"{r.familiar()}: config blob {info.config_digest} is not JSON") from None

    def digest(self, ref: str | Reference) -> str:
        return self.resolve(ref).digest

    def tags(self, repository_ref: str | Reference) -> list[str]:
        r = repository_ref if isinstance(repository_ref, Reference) else parse_ref(repository_ref)
        data, _ = self._request(r, f"/v2/{r.repository}/tags/list", accept="application/json")
        try:
            return list(json.loads(data).get("tags") or [])
        except ValueError:
            raise RegistryError(f"{r.familiar()}: tag list from {r.api_host} is not JSON") from None

    def delete_manifest(self, ref: str | Reference, digest: str) -> None:
        """Delete a manifest by digest (removes every tag pointing to it). Needs a registry with
        storage.delete.enabled; RegistryError otherwise."""
        r = ref if isinstance(ref, Reference) else parse_ref(ref)
        self._request(r, f"/v2/{r.repository}/manifests/{digest}", accept=ACCEPT, method="DELETE")

    # -- internals -------------------------------------------------------------------------
    def _base_url(self, host: str) -> str:
        scheme = "http" if is_loopback(host) else "https"
        return f"{scheme}://{host}"

    def _get_manifest(self, r: Reference, reference: str) -> tuple[_Manifest, str, str]:
        data, headers = self._request(r, f"/v2/{r.repository}/manifests/{reference}", accept=ACCEPT)
        try:
            body = cast(_Manifest, json.loads(data))
        except ValueError:
            raise RegistryError(f"{r.familiar()}: manifest from {r.api_host} is not JSON") from None
        media_type = (headers.get("Content-Type") or "").split(";")[0].strip()
        if media_type not in INDEX_TYPES + MANIFEST_TYPES:
            media_type = body.get("mediaType") or media_type
        computed = "sha256:" + hashlib.sha256(data).hexdigest()
        header_digest = headers.get("Docker-Content-Digest")
        if reference.startswith("sha256:") and computed != reference:
            raise RegistryError(f"{r.familiar()}: manifest content does not match digest {reference}")
        digest = computed if header_digest is None or header_digest.startswith("sha256:") else header_digest
        return body, media_type, digest

    def _pick_platform(self, r: Reference, index: _Manifest) -> _Descriptor:
        seen = []
        for entry in index.get("manifests") or []:
            plat = entry.get("platform") or {}
            seen.append(f"{plat.get('os')}/{plat.get('architecture')}")
            annotations = entry.get("annotations") or {}
            if annotations.get("vnd.docker.reference.type") == "attestation-manifest":
                continue
            if plat.get("os") == self.os and plat.get("architecture") == self.arch:
                return entry
        raise RegistryError(
            f"{r.familiar()}: no {self.os}/{self.arch} manifest in the index "
            f"(platforms: {', '.join(sorted(set(seen))) or 'none'})"
        )

    def _request(self, r: Reference, path: str, *, accept: str, method: str = "GET") -> tuple[bytes, Any]:
        host = r.api_host
        if host in self._down:
            raise RegistryError(f"{r.familiar()}: {self._down[host]}")
        try:
            return self._request_once(r, host, path, accept=accept, method=method)
        except RegistryError as exc:
            reason = str(exc).split(": ", 1)[-1]
            if reason.startswith("cannot reach") or "did not answer" in reason:
                self._down[host] = reason
            raise

    def _request_once(
        self, r: Reference, host: str, path: str, *, accept: str, method: str
    ) -> tuple[bytes, Any]:
        url = self._base_url(host) + path
        scope = f"repository:{r.repository}:pull"
        token = self._tokens.get((host, scope))
        for attempt in range(2):
            req = urllib.request.Request(url, method=method, headers={"Accept": accept})
            if token:
                req.add_header("Authorization", f"Bearer {token}")
            opener = self._direct if is_loopback(host) else self._opener
            try:
                with opener.open(req, timeout=self.timeout) as resp:
                    return resp.read(), resp.headers
            except urllib.error.HTTPError as exc:
                if exc.code == 401 and attempt == 0:
                    challenge = exc.headers.get("WWW-Authenticate") or ""
                    scheme, params = _parse_challenge(challenge)
                    if scheme == "bearer" and params.get("realm"):
                        token = self._fetch_token(r, params, scope)
                        self._tokens[(host, scope)] = token
                        continue
                    raise RegistryError(
                        f"{r.familiar()}: {host} requires authentication "
                        f"({challenge or 'no challenge'}); only anonymous pulls work"
                    )
                if exc.code == 404:
                    raise RegistryError(f"{r.familiar()}: not found on {host} ({path.rsplit('/', 1)[-1]})")
                raise RegistryError(
                    f"{r.familiar()}: {host} answered HTTP {exc.code} {exc.reason} for {method} {path}"
                ) from None
            except urllib.error.URLError as exc:
                raise RegistryError(f"{r.familiar()}: cannot reach {host}: {_reason(exc.reason)}") from None
            except TimeoutError:
                raise RegistryError(f"{r.familiar()}: {host} did not answer in {self.timeout:g} s") from None
            except OSError as exc:
                raise RegistryError(f"{r.familiar()}: cannot reach {host}: {_reason(exc)}") from None
        raise RegistryError(f"{r.familiar()}: {host} refused the anonymous token")

    def _fetch_token(self, r: Reference, params: dict[str, str], scope: str) -> str:
        query = {"scope": params.get("scope") or scope}
        if params.get("service"):
            query["service"] = params["service"]
        realm = params["realm"]
        url = realm + ("&" if "?" in realm else "?") + urllib.parse.urlencode(query)
        realm_host = urllib.parse.urlsplit(realm).netloc or realm
        try:
            with self._opener.open(urllib.request.Request(url), timeout=self.timeout) as resp:
                data = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            raise RegistryError(f"{r.familiar()}: token service {realm_host}: HTTP {exc.code}") from None
        except urllib.error.URLError as exc:
            raise RegistryError(
                f"{r.familiar()}: cannot reach token service {realm_host}: {_reason(exc.reason)}"
            ) from None
        except TimeoutError:
            raise RegistryError(
                f"{r.familiar()}: token service {realm_host} did not answer within {self.timeout:g} s"
            ) from None
        except (OSError, ValueError) as exc:
            raise RegistryError(f"{r.familiar()}: token service {realm_host}: bad answer {exc}") from None
        token: str | None = data.get("token") or data.get("access_token")
        if not token:
            raise RegistryError(f"{r.familiar()}: token service {realm_host} returned no token")
        return token


def _reason(reason: Any) -> str:
    if isinstance(reason, socket.gaierror):
        return f"name resolution failed ({reason.strerror or reason})"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason) or type(reason).__name__
