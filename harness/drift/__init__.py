"""Base-image drift: observe tracked images now, keep the history, flag what changed.

An *observation* is one look at an image tag: the registry's manifest digest (linux/amd64),
the compressed size (sum of the manifest's layer sizes, what Docker Hub reports), the
uncompressed size the engine reports after a pull, the layers, the OS package list
(`dpkg-query` or the apk database) and the Python version inside, each run in a container
with `--network=none`. Observations are appended, one JSON object per line, to
`<results>/drift/<slug>.jsonl` (append-only; a corrupt line is skipped with a warning).

`diff(prev, cur)` says what changed between two observations: digest, bytes (both kinds),
layers, packages added / removed / upgraded / downgraded, Python version. `drift(...)`
observes every image, diffs each against its previous observation and judges the change
against `Thresholds`. Exit codes (`DriftReport.exit_code`, `run_drift`):

  0  nothing changed beyond the thresholds (a first observation only records a baseline)
  1  at least one image drifted beyond the thresholds (ExitStatus.FAILURE)
  3  no image drifted, but at least one could not be observed (registry or engine
     unreachable: ExitStatus.ENVIRONMENT); the others are still observed and recorded

`load_published()` turns the published history of the `python:*` tags (docker-library/repo-info,
shipped in harness/data) into observations with source "published", and `history(image)` merges
them with what `drift` recorded into one DataFrame, so the history starts before the first run.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import warnings
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.errors import EnvironmentProblem, ExitStatus, HarnessError, UsageError
from harness.registry_client import DOCKER_HUB, RegistryClient, parse_ref

SCHEMA = "imagebench.drift"
SCHEMA_VERSION = 1
# Schema history:
#   1 - first version (this file's docstring lists the fields: see `observe`).

DRIFT_DIR = "drift"
#: Public tags tracked by default (besides the lab bases when the lab is up).
DEFAULT_PUBLIC_IMAGES = ("python:3.13-slim", "python:3.12-slim", "python:3.12-alpine", "python:3.12")
PROBE_TIMEOUT = 120.0

# One container per observation: the package manager's list, then the Python version.
# dpkg-query prints every package it knows; ${db:Status-Abbrev} lets us keep installed ones only.
PROBE_SCRIPT = r"""
if command -v dpkg-query >/dev/null 2>&1; then
  echo '@@pm dpkg'
  dpkg-query -W -f '${db:Status-Abbrev}\t${Package}\t${Version}\n' 2>/dev/null
elif [ -f /lib/apk/db/installed ]; then
  echo '@@pm apk'
  grep -E '^[PV]:' /lib/apk/db/installed
else
  echo '@@pm none'
fi
echo '@@python'
for py in python3 python; do
  if command -v "$py" >/dev/null 2>&1; then
    "$py" -c 'import platform; print(platform.python_version())' 2>/dev/null && break
  fi
done
echo '@@pip'
for py in python3 python; do
  if command -v "$py" >/dev/null 2>&1; then
    "$py" -c 'import importlib.metadata as m
for d in m.distributions():
    print((d.metadata["Name"] or "").lower() + "\t" + (d.version or ""))' 2>/dev/null && break
  fi
done
echo '@@end'
"""


# --------------------------------------------------------------------------- small helpers


def utcnow() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def slug(image: str) -> str:
    """A file name for an image reference: `127.0.0.1:5000/a/python:3.13` -> `127.0.0.1_5000_a_python_3.13`."""
    s = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(image).strip()).strip("_.")
    return s or "image"


def canonical(image: str) -> str:
    """The familiar form of a reference (python:3.12-slim, 127.0.0.1:5000/x/y:t), for matching names."""
    try:
        return parse_ref(image).familiar()
    except HarnessError:
        return str(image)


def _pm_version_key(version: str) -> list:
    """A sort key for Debian (and most apk) version strings, after dpkg's verrevcmp."""
    epoch, _, rest = version.partition(":") if re.match(r"^\d+:", version) else ("0", "", version)
    upstream, _, revision = rest.rpartition("-") if "-" in rest else (rest, "", "0")

    def part(s: str) -> list:
        out: list = []
        while s:
            m = re.match(r"^([^\d]*)(\d*)", s)
            alpha, digits = m.group(1), m.group(2)
            # '~' sorts before everything, even the end; letters before non-letters
            out.append((*(-1 if c == "~" else ord(c) if c.isalpha() else ord(c) + 256 for c in alpha), 0))
            out.append(int(digits) if digits else 0)
            s = s[len(alpha) + len(digits) :]
        out.append((0,))  # the end: after '~', before anything else
        return out

    return [int(epoch), part(upstream), part(revision)]


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1 like `dpkg --compare-versions` (close enough for apk's versions too)."""
    ka, kb = _pm_version_key(str(a)), _pm_version_key(str(b))
    return (ka > kb) - (ka < kb)


def parse_pip(text: str) -> dict[str, str] | None:
    """The `@@pip` section of PROBE_SCRIPT's output: {distribution: version}; None when the image has no
    Python (or the probe predates the section)."""
    if "@@pip" not in text:
        return None
    section = text.split("@@pip", 1)[1].split("@@end", 1)[0]
    out: dict[str, str] = {}
    for line in section.splitlines():
        name, sep, version = line.strip().partition("\t")
        if sep and name:
            out[name] = version
    return out or None


def parse_probe(text: str) -> tuple[str | None, dict[str, str] | None, str | None]:
    """Parse PROBE_SCRIPT's output: (package manager, {name: version} or None, python version or None)."""
    pm, packages, python = None, None, None
    section = None
    apk_name = None
    for raw in text.splitlines():
        line = raw.rstrip("\r")
        if line.startswith("@@pm "):
            pm = line[5:].strip()
            section = "pm"
            if pm in ("dpkg", "apk"):
                packages = {}
            else:
                pm = None
            continue
        if line == "@@python":
            section = "python"
            continue
        if line == "@@end" or (line.startswith("@@") and section is not None):
            section = None  # @@end, or a later section (@@pip) this parser does not read
            continue
        if section == "pm" and packages is not None:
            if pm == "dpkg":
                fields = line.split("\t")
                if len(fields) == 3:
                    status, name, version = fields
                    if len(status) >= 2 and status[1] == "i" and name:  # installed (ii, hi, ...)
                        packages[name] = version
                elif len(fields) == 2 and fields[0]:  # plain ${Package}\t${Version}
                    packages[fields[0]] = fields[1]
            elif pm == "apk":
                if line.startswith("P:"):
                    apk_name = line[2:]
                elif line.startswith("V:") and apk_name:
                    packages[apk_name] = line[2:]
                    apk_name = None
        elif section == "python" and line.strip() and python is None:
            python = line.strip()
    return pm, packages, python


# --------------------------------------------------------------------------- observing


def observe(
    image_ref: str,
    *,
    registry: RegistryClient | None = None,
    client: Any = None,
    inspect: bool = True,
    keep_image: bool = False,
) -> dict:
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
    obs: dict[str, Any] = {
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


def observe_local(image_ref: str, *, client: Any = None) -> dict:
    """Observe an image in the local engine, no registry and no network: image ID (and registry digest
    when it has one), uncompressed bytes, layers (diff IDs and sizes from the image history),
    OS packages with versions and Python distributions with versions, read by a throw-away
    container with `--network=none`. Same schema as `observe` with source "engine";
    compressed_bytes is None (only a registry knows it)."""
    import docker.errors

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
    obs: dict[str, Any] = {
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
        import docker

        return docker.from_env(timeout=300)
    except Exception as exc:  # docker.errors.DockerException and friends
        raise EnvironmentProblem(f"cannot connect to the Docker engine: {_one_line(exc)}") from None


def _one_line(exc: BaseException) -> str:
    text = str(getattr(exc, "explanation", None) or exc).strip().splitlines()
    return (text[-1] if text else type(exc).__name__)[:300]


def _inspect_in_engine(obs: dict, pinned, client: Any, *, keep_image: bool) -> None:
    import docker.errors

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
    import docker.errors

    container = client.containers.create(
        image, command=["sh", "-c", PROBE_SCRIPT], entrypoint=[], network_mode="none", user="0", detach=True
    )
    try:
        container.start()
        try:
            status = container.wait(timeout=PROBE_TIMEOUT)
        except Exception:
            raise EnvironmentProblem(
                f"{image}: the package probe did not finish in {PROBE_TIMEOUT:g} s"
            ) from None
        out = container.logs(stdout=True, stderr=False).decode("utf-8", "replace")
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


# --------------------------------------------------------------------------- history files


def history_path(results_dir: Path, image: str) -> Path:
    return Path(results_dir) / DRIFT_DIR / f"{slug(canonical(image))}.jsonl"


def append_observation(path: Path, obs: dict) -> None:
    """Append one observation as one line: O_APPEND, one write, fsync. A file whose last line was
    cut short (a crash mid-write) gets a newline first, so the new line stays readable."""
    path = Path(path)
    line = json.dumps(obs, sort_keys=True, separators=(",", ":"), allow_nan=False) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            if size:
                with open(path, "rb") as fh:
                    fh.seek(size - 1)
                    if fh.read(1) != b"\n":
                        line = "\n" + line
            data = line.encode("utf-8")
            written = os.write(fd, data)
            if written != len(data):
                raise OSError(28, f"short write ({written} of {len(data)} bytes)")
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise EnvironmentProblem(f"cannot append to {path}: {exc.strerror or exc}") from None


def read_observations(path: Path, *, on_skip: Callable[[str], None] | None = None) -> list[dict]:
    """Every readable observation in a drift file, oldest first; corrupt lines are skipped with a warning."""
    path = Path(path)
    if not path.is_file():
        return []
    out = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obs = json.loads(line)
                if not isinstance(obs, dict) or obs.get("schema") != SCHEMA or not obs.get("observed_at"):
                    raise ValueError("not a drift observation")
                if int(obs.get("schema_version", 0)) > SCHEMA_VERSION:
                    raise ValueError(
                        f"schema_version {obs.get('schema_version')} is newer than this imagebench"
                    )
            except (ValueError, TypeError) as exc:
                msg = f"{path}:{number}: skipped corrupt observation ({str(exc)[:80]})"
                if on_skip:
                    on_skip(msg)
                else:
                    warnings.warn(msg, stacklevel=2)
                continue
            out.append(obs)
    return out


def load_observations(results_dir: Path, image: str | None = None, *, on_skip=None) -> list[dict]:
    """Recorded observations of one image (or of every image), oldest first."""
    root = Path(results_dir) / DRIFT_DIR
    paths = [history_path(results_dir, image)] if image else sorted(root.glob("*.jsonl"))
    out = []
    for p in paths:
        out.extend(read_observations(p, on_skip=on_skip))
    return sorted(out, key=lambda o: o["observed_at"])


# --------------------------------------------------------------------------- diffing


def _delta(before: Any, after: Any) -> dict:
    d: dict[str, Any] = {"before": before, "after": after, "delta": None, "pct": None}
    if isinstance(before, int | float) and isinstance(after, int | float):
        d["delta"] = after - before
        d["pct"] = (100.0 * (after - before) / before) if before else None
    return d


def diff_packages(before: dict[str, str] | None, after: dict[str, str] | None) -> dict | None:
    """Packages added, removed, upgraded and downgraded (by Debian version order); None when either
    side has no package list."""
    if before is None or after is None:
        return None
    added = {n: after[n] for n in sorted(set(after) - set(before))}
    removed = {n: before[n] for n in sorted(set(before) - set(after))}
    upgraded, downgraded = {}, {}
    for n in sorted(set(before) & set(after)):
        if before[n] == after[n]:
            continue
        target = upgraded if compare_versions(after[n], before[n]) > 0 else downgraded
        target[n] = {"before": before[n], "after": after[n]}
    return {
        "added": added,
        "removed": removed,
        "upgraded": upgraded,
        "downgraded": downgraded,
        "changed": len(added) + len(removed) + len(upgraded) + len(downgraded),
    }


def diff(prev: dict, cur: dict) -> dict:
    """What changed from observation `prev` to `cur` (pure)."""
    before_layers = list(prev.get("layer_digests") or [])
    after_layers = list(cur.get("layer_digests") or [])
    layers = _delta(prev.get("layers"), cur.get("layers"))
    layers["added"] = [d for d in after_layers if d not in before_layers]
    layers["removed"] = [d for d in before_layers if d not in after_layers]
    layers["changed"] = bool(layers["added"] or layers["removed"] or layers["delta"])
    pkgs = diff_packages(prev.get("packages"), cur.get("packages"))
    pip = diff_packages(prev.get("python_packages"), cur.get("python_packages"))
    return {
        "image": cur.get("image") or prev.get("image"),
        "from": {
            "observed_at": prev.get("observed_at"),
            "digest": prev.get("digest"),
            "source": prev.get("source"),
        },
        "to": {
            "observed_at": cur.get("observed_at"),
            "digest": cur.get("digest"),
            "source": cur.get("source"),
        },
        "digest_changed": prev.get("digest") != cur.get("digest")
        if prev.get("source") == cur.get("source")
        else prev.get("image_id") != cur.get("image_id"),
        "image_id_changed": prev.get("image_id") != cur.get("image_id"),
        "compressed_bytes": _delta(prev.get("compressed_bytes"), cur.get("compressed_bytes")),
        "uncompressed_bytes": _delta(prev.get("uncompressed_bytes"), cur.get("uncompressed_bytes")),
        "layers": layers,
        "packages": pkgs,
        "python_packages": pip,
        "python_version": {
            "before": prev.get("python_version"),
            "after": cur.get("python_version"),
            "changed": prev.get("python_version") != cur.get("python_version")
            and None not in (prev.get("python_version"), cur.get("python_version")),
        },
    }


@dataclass
class Thresholds:
    """What counts as drift. Byte thresholds apply to growth and shrinkage alike: a change of more
    than `*_bytes` bytes flags, and with `pct` set it must also exceed `pct` percent (an absolute
    floor plus a relative threshold, so small images do not flap)."""

    compressed_bytes: int = 0
    uncompressed_bytes: int = 0
    pct: float | None = None
    layers: int = 0
    packages: bool = True  # any package added, removed, upgraded or downgraded
    python: bool = True  # a different Python version
    digest: bool = False  # a new digest alone (a rebuild with nothing else beyond thresholds)

    def __post_init__(self) -> None:
        for name in ("compressed_bytes", "uncompressed_bytes", "layers"):
            if getattr(self, name) < 0:
                raise UsageError(f"drift threshold {name} must be >= 0")
        if self.pct is not None and self.pct < 0:
            raise UsageError("drift threshold pct must be >= 0")


def judge(d: dict, thresholds: Thresholds | None = None) -> list[str]:
    """The reasons `d` (a diff) is drift beyond `thresholds`; empty when it is not."""
    t = thresholds or Thresholds()
    reasons = []
    for key, limit, label in (
        ("compressed_bytes", t.compressed_bytes, "compressed size"),
        ("uncompressed_bytes", t.uncompressed_bytes, "uncompressed size"),
    ):
        delta, pct = d[key]["delta"], d[key]["pct"]
        if delta is None or abs(delta) <= limit:
            continue
        if t.pct is not None and pct is not None and abs(pct) <= t.pct:
            continue
        reasons.append(f"{label} {_signed_bytes(delta)}" + (f" ({pct:+.2f} %)" if pct is not None else ""))
    if d["layers"]["delta"] is not None and abs(d["layers"]["delta"]) > t.layers:
        reasons.append(f"layers {d['layers']['before']} -> {d['layers']['after']}")
    pk = d.get("packages")
    if t.packages and pk and pk["changed"]:
        parts = [f"{len(pk[k])} {k}" for k in ("added", "removed", "upgraded", "downgraded") if pk[k]]
        reasons.append("packages: " + ", ".join(parts) + " (" + package_summary(pk) + ")")
    pp = d.get("python_packages")
    if t.packages and pp and pp["changed"]:
        reasons.append("python packages: " + package_summary(pp))
    if t.python and d["python_version"]["changed"]:
        reasons.append(f"python {d['python_version']['before']} -> {d['python_version']['after']}")
    if t.digest and d["digest_changed"] and not reasons:
        reasons.append("new digest")
    return reasons


def package_summary(pk: dict, limit: int = 6) -> str:
    """`tzdata 2025b -> 2025c, +libfoo 1.0, -libbar` (pure; at most `limit` names, then a count)."""
    parts = [
        f"{n} {v['before']} -> {v['after']}"
        for kind in ("upgraded", "downgraded")
        for n, v in pk[kind].items()
    ]
    parts += [f"+{n} {v}" for n, v in pk["added"].items()]
    parts += [f"-{n}" for n in pk["removed"]]
    more = len(parts) - limit
    return ", ".join(parts[:limit]) + (f" and {more} more" if more > 0 else "")


def _signed_bytes(n: float) -> str:
    from harness.report.format import human_bytes

    sign = "+" if n > 0 else "-" if n < 0 else "±"
    text = f"{sign}{human_bytes(abs(n))}"
    return text if abs(n) < 1000 else f"{text} ({int(n):+,} B)"


# --------------------------------------------------------------------------- drift


@dataclass
class ImageDrift:
    image: str
    status: str  # first | unchanged | changed (within thresholds) | drifted | error
    observation: dict | None = None
    previous: dict | None = None
    diff: dict | None = None
    reasons: list[str] = field(default_factory=list)
    error: str | None = None
    file: str | None = None


@dataclass
class DriftReport:
    images: list[ImageDrift]
    thresholds: Thresholds
    observed_at: str = field(default_factory=utcnow)
    notes: list[str] = field(default_factory=list)

    @property
    def drifted(self) -> list[ImageDrift]:
        return [i for i in self.images if i.status == "drifted"]

    @property
    def errors(self) -> list[ImageDrift]:
        return [i for i in self.images if i.status == "error" or (i.observation or {}).get("errors")]

    @property
    def exit_code(self) -> int:
        if self.drifted:
            return int(ExitStatus.FAILURE)
        if self.errors:
            return int(ExitStatus.ENVIRONMENT)
        return int(ExitStatus.OK)

    def to_dict(self) -> dict:
        return {
            "schema": "imagebench.drift-report",
            "schema_version": 1,
            "observed_at": self.observed_at,
            "exit_code": self.exit_code,
            "thresholds": asdict(self.thresholds),
            "notes": self.notes,
            "images": [asdict(i) for i in self.images],
        }


def _previous_view(history: list[dict]) -> dict | None:
    """The latest observation, with the package list (and Python version) of the latest observation
    that had one, so a partial observation does not hide package changes."""
    if not history:
        return None
    prev = dict(history[-1])
    if prev.get("packages") is None:
        for old in reversed(history[:-1]):
            if old.get("packages") is not None:
                prev["packages"] = old["packages"]
                prev["python_version"] = prev.get("python_version") or old.get("python_version")
                break
    return prev


def drift(
    images: Iterable[str],
    results_dir: Path,
    thresholds: Thresholds | None = None,
    *,
    registry: RegistryClient | None = None,
    client: Any = None,
    observe_fn: Callable[[str], dict] | None = None,
    on_skip=None,
    local: bool = False,
) -> DriftReport:
    """Observe each image, append the observation to its history, diff against the previous one.

    An image that cannot be observed gets status "error" with a one-line reason; the others go on.
    `observe_fn(image) -> observation` replaces `observe` (tests, or a caller with its own engine).
    """
    thresholds = thresholds or Thresholds()
    registry = registry or RegistryClient()
    if observe_fn is None and local:
        observe_fn = lambda image: observe_local(image, client=client)  # noqa: E731
    observe_fn = observe_fn or (lambda image: observe(image, registry=registry, client=client))
    report = DriftReport(images=[], thresholds=thresholds)
    seen = set()
    for image in images:
        key = canonical(image)
        if key in seen:
            continue
        seen.add(key)
        path = history_path(results_dir, image)
        entry = ImageDrift(image=key, status="error", file=str(path))
        try:
            obs = observe_fn(image)
        except HarnessError as exc:
            entry.error = str(exc)
            report.images.append(entry)
            continue
        history = read_observations(path, on_skip=on_skip)
        append_observation(path, obs)
        entry.observation = obs
        prev = _previous_view(history)
        if prev is None:
            entry.status = "first"
        else:
            entry.previous = {
                k: prev.get(k)
                for k in (
                    "observed_at",
                    "digest",
                    "compressed_bytes",
                    "uncompressed_bytes",
                    "layers",
                    "python_version",
                )
            }
            entry.diff = diff(prev, obs)
            entry.reasons = judge(entry.diff, thresholds)
            if entry.reasons:
                entry.status = "drifted"
            elif _anything_changed(entry.diff):
                entry.status = "changed"
            else:
                entry.status = "unchanged"
        report.images.append(entry)
    return report


def _anything_changed(d: dict) -> bool:
    pk = d.get("packages") or {}
    pp = d.get("python_packages") or {}
    return bool(
        pp.get("changed")
        or d["digest_changed"]
        or d["compressed_bytes"]["delta"]
        or d["uncompressed_bytes"]["delta"]
        or d["layers"]["changed"]
        or pk.get("changed")
        or d["python_version"]["changed"]
    )


# --------------------------------------------------------------------------- tracked images


def default_images() -> tuple[list[str], list[str]]:
    """(images, notes): the lab bases as pushed to the lab registry when the lab is up, then
    DEFAULT_PUBLIC_IMAGES ($IMAGEBENCH_DRIFT_IMAGES, comma-separated, replaces the whole list)."""
    env = os.environ.get("IMAGEBENCH_DRIFT_IMAGES")
    if env:
        return [s.strip() for s in env.split(",") if s.strip()], []
    images, notes = [], []
    try:
        from harness.lab import load_lab  # type: ignore[attr-defined]
        from harness.lab.basedefs import load_bases

        lab = load_lab()
        host = str(getattr(lab, "registry", "") or "").removeprefix("http://").rstrip("/")
        if host:
            images.extend(f"{host}/{b.tag}" for b in load_bases().bases.values())
        else:
            notes.append("the lab has no registry: lab bases not tracked")
    except HarnessError as exc:
        notes.append(f"lab not up, lab bases not tracked: {exc}")
    except ImportError:
        notes.append("lab bases not tracked: this imagebench has no harness.lab.load_lab")
    images.extend(DEFAULT_PUBLIC_IMAGES)
    return images, notes


# --------------------------------------------------------------------------- text output


def render_text(report: DriftReport, *, max_packages: int = 40) -> str:
    from harness.report.format import human_bytes, short_digest

    counts: dict[str, int] = {}
    for i in report.images:
        counts[i.status] = counts.get(i.status, 0) + 1
    order = ("drifted", "changed", "unchanged", "first", "error")
    head = ", ".join(f"{counts[s]} {s}" for s in order if counts.get(s))
    lines = [f"drift: {len(report.images)} image(s): {head or 'none'} (exit {report.exit_code})"]
    lines += [f"note: {n}" for n in report.notes]
    for i in report.images:
        label = {
            "first": "FIRST",
            "unchanged": "ok",
            "changed": "changed",
            "drifted": "DRIFTED",
            "error": "ERROR",
        }[i.status]
        if i.status == "error":
            error = i.error or "not observed"
            lines.append(
                f"{label:8} {error}" if error.startswith(i.image) else f"{label:8} {i.image}: {error}"
            )
            continue
        o = i.observation or {}
        size = (
            f"{human_bytes(o.get('compressed_bytes'))} compressed"
            if o.get("compressed_bytes") is not None
            else ""
        )
        if o.get("uncompressed_bytes") is not None:
            size += (", " if size else "") + f"{human_bytes(o['uncompressed_bytes'])} on disk"
        lines.append(
            f"{label:8} {i.image}  {short_digest(o.get('digest'))}  {size}, {o.get('layers')} layer{'' if o.get('layers') == 1 else 's'}"
            + (f", python {o['python_version']}" if o.get("python_version") else "")
        )
        for err in o.get("errors") or []:
            lines.append(f"         partial: {err}")
        if i.status == "first":
            lines.append("         first observation: recorded as the baseline")
            continue
        d = i.diff or {}
        if i.previous:
            lines.append(
                f"         since {i.previous.get('observed_at')}"
                + (
                    f": digest {short_digest(d['from']['digest'])} -> {short_digest(d['to']['digest'])}"
                    if d.get("digest_changed")
                    else ": same digest"
                )
            )
        for r in i.reasons:
            lines.append(f"         - {r}")
        if d.get("layers", {}).get("added") and not any(r.startswith("layers") for r in i.reasons):
            lines.append(
                f"         layers replaced: {len(d['layers']['removed'])} removed, "
                f"{len(d['layers']['added'])} added"
            )
        pk = d.get("packages")
        if pk and pk["changed"]:
            shown = 0
            for kind, sign in (("added", "+"), ("removed", "-"), ("upgraded", "^"), ("downgraded", "v")):
                for name, v in pk[kind].items():
                    if shown >= max_packages:
                        break
                    text = f"{v['before']} -> {v['after']}" if isinstance(v, dict) else v
                    lines.append(f"           {sign} {name} {text}")
                    shown += 1
            if pk["changed"] > shown:
                lines.append(f"           ... and {pk['changed'] - shown} more (--json lists all)")
        pp = d.get("python_packages")
        if pp and pp["changed"]:
            for kind, sign in (("added", "+"), ("removed", "-"), ("upgraded", "^"), ("downgraded", "v")):
                for name, v in list(pp[kind].items())[:max_packages]:
                    text = f"{v['before']} -> {v['after']}" if isinstance(v, dict) else v
                    lines.append(f"           {sign} {name} {text} (python)")
    return "\n".join(lines)


def run_drift(
    images: list[str] | None,
    results_dir: Path,
    *,
    json_out: bool = False,
    thresholds: Thresholds | None = None,
    registry: RegistryClient | None = None,
    client: Any = None,
    local: bool = False,
) -> tuple[int, str]:
    """What `imagebench drift` does: (exit code, text to print). `images` None = default_images().
    `local`: observe the images in the local engine (no registry, no network: `observe_local`)."""
    notes: list[str] = []
    if not images:
        images, notes = default_images()
        if local:
            images = [i for i in images if "/" in i and ("." in i.split("/")[0] or ":" in i.split("/")[0])]
    skipped: list[str] = []
    report = drift(
        images, results_dir, thresholds, registry=registry, client=client, on_skip=skipped.append, local=local
    )
    report.notes = notes + skipped
    if json_out:
        return report.exit_code, json.dumps(report.to_dict(), indent=1, sort_keys=False)
    return report.exit_code, render_text(report)


# --------------------------------------------------------------------------- published history


def load_published(data_dir: Path | None = None) -> list[dict]:
    """The published history of `python:*` tags (docker-library/repo-info, linux/amd64) as
    observations with source "published": digest, index digest, image ID, compressed bytes, layers
    (digests and sizes), Python version and the date (the newest layer's Last-Modified). No
    package lists or uncompressed sizes: repo-info does not publish them."""
    from harness.report.published import load_published_history, load_published_layers

    try:
        tags = load_published_history(Path(data_dir) / "python-tags.csv" if data_dir else None)
        layers = load_published_layers(Path(data_dir) / "python-layers.csv" if data_dir else None)
    except (OSError, ValueError, KeyError) as exc:
        raise EnvironmentProblem(f"cannot read the published history: {exc}") from None
    by_snapshot: dict[tuple[str, str], list] = {}
    for row in layers.itertuples(index=False):
        by_snapshot.setdefault((row.tag, row.repo_info_commit), []).append(
            (row.layer_digest, int(row.layer_bytes))
        )
    out = []
    for row in tags.itertuples(index=False):
        layer_list = by_snapshot.get((row.tag, row.repo_info_commit), [])
        out.append(
            {
                "schema": SCHEMA,
                "schema_version": SCHEMA_VERSION,
                "image": f"python:{row.tag}",
                "registry": DOCKER_HUB,
                "repository": "library/python",
                "tag": row.tag,
                "digest": row.manifest_digest,
                "index_digest": row.index_digest,
                "image_id": row.image_id,
                "compressed_bytes": int(row.compressed_bytes),
                "uncompressed_bytes": None,
                "layers": int(row.layer_count),
                "layer_digests": [d for d, _ in layer_list],
                "layer_sizes": [s for _, s in layer_list],
                "package_manager": None,
                "packages": None,
                "python_version": str(row.python_version),
                "observed_at": row.observed_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "source": "published",
                "base_distro": row.base_distro,
                "repo_info_commit": row.repo_info_commit,
                "errors": [],
            }
        )
    return sorted(out, key=lambda o: (o["image"], o["observed_at"]))


HISTORY_COLUMNS = [
    "observed_at",
    "image",
    "source",
    "digest",
    "compressed_bytes",
    "uncompressed_bytes",
    "layers",
    "python_version",
    "packages",
    "digest_changed",
    "tag",
    "flavour",
]


def history(
    image: str,
    results_dir: Path | None = None,
    *,
    data_dir: Path | None = None,
    published: list[dict] | None = None,
):
    """Size over time of one image: published snapshots plus recorded observations, oldest first.

    Repeated snapshots of one unchanged image (same source, digest and date) collapse to one row.
    Columns: observed_at (UTC datetime), image, source (published|registry), digest,
    compressed_bytes, uncompressed_bytes (NaN where unknown), layers, python_version, packages
    (count, NaN where unknown), digest_changed (vs the previous row), tag and flavour (as
    `harness.report.plots.published_history()` reads them: `3.12-slim`, `slim`). Recorded observations of the
    lab stand-ins are separate images: pass their lab reference to see them.
    """
    import pandas as pd

    key = canonical(image)
    rows = [
        o
        for o in (published if published is not None else load_published(data_dir))
        if canonical(o["image"]) == key
    ]
    if results_dir is not None:
        rows += [o for o in load_observations(results_dir, image) if canonical(o.get("image", "")) == key]
    records = [
        {
            "observed_at": o["observed_at"],
            "image": key,
            "source": o.get("source", "registry"),
            "digest": o.get("digest"),
            "compressed_bytes": o.get("compressed_bytes"),
            "uncompressed_bytes": o.get("uncompressed_bytes"),
            "layers": o.get("layers"),
            "python_version": o.get("python_version"),
            "packages": len(o["packages"]) if isinstance(o.get("packages"), dict) else None,
        }
        for o in rows
    ]
    df = pd.DataFrame.from_records(records, columns=HISTORY_COLUMNS[:-3])
    df["observed_at"] = pd.to_datetime(df["observed_at"], utc=True)
    for col in ("compressed_bytes", "uncompressed_bytes", "layers", "packages"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    # repo-info snapshots of an unchanged tag repeat the same facts: keep one row per image version
    df = df.drop_duplicates(["source", "digest", "observed_at"], keep="first")
    df = df.sort_values("observed_at", kind="stable").reset_index(drop=True)
    prev = df["digest"].shift()
    df["digest_changed"] = prev.notna() & (prev != df["digest"])
    # the columns harness.report.plots.published_history() reads
    from harness.report.published import flavour

    df["tag"] = _python_tag(key) or key
    df["flavour"] = flavour(df["tag"].iloc[0]) if len(df) else "full"
    return df


def run_history(image: str, results_dir: Path | None, *, json_out: bool = False) -> tuple[int, str]:
    """What a `imagebench drift history IMAGE` would print: (exit code, text). One line per image
    version, published and observed, oldest first; exit 2 when nothing is known about the image."""
    from harness.report.format import human_bytes, short_digest

    df = history(image, results_dir)
    if df.empty:
        known = ", ".join(published_images())
        raise UsageError(f"no history of {image}: not in the published data ({known}) and never observed")
    if json_out:
        records = df.assign(observed_at=df["observed_at"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")).to_dict(
            "records"
        )
        clean = [{k: (None if isinstance(v, float) and v != v else v) for k, v in r.items()} for r in records]
        return int(ExitStatus.OK), json.dumps(clean, indent=1)
    lines = [
        f"{canonical(image)}: {len(df)} version(s), {df['observed_at'].min():%Y-%m-%d} to "
        f"{df['observed_at'].max():%Y-%m-%d}"
    ]
    for r in df.itertuples(index=False):
        disk = human_bytes(r.uncompressed_bytes) if r.uncompressed_bytes == r.uncompressed_bytes else "–"
        lines.append(
            f"{r.observed_at:%Y-%m-%d %H:%M}  {r.source:9}  {short_digest(r.digest)}  "
            f"{human_bytes(r.compressed_bytes):>8} compressed  {disk:>8} on disk  "
            f"{int(r.layers) if r.layers == r.layers else '–'} layers  python {r.python_version or '–'}"
            + ("  (new digest)" if r.digest_changed else "")
        )
    return int(ExitStatus.OK), "\n".join(lines)


def _python_tag(image: str) -> str | None:
    """`3.12-slim` for python:3.12-slim (an official python image), else None."""
    try:
        ref = parse_ref(image)
    except HarnessError:
        return None
    return ref.tag if ref.registry == DOCKER_HUB and ref.repository == "library/python" else None


def published_images(data_dir: Path | None = None) -> list[str]:
    """The images the published history covers (python:3.12-slim, ...)."""
    return sorted({o["image"] for o in load_published(data_dir)})
