"""Which packages have a musllinux wheel for this Python, against a manylinux one (the article's
alpine warning, measured), and what a build that needs a missing one does.

    python -m harness.lab.wheelcheck [--python 3.13] [--out results/wheel-availability.json]
        [--record FIXTURE.json | --listings FIXTURE.json] [--try-build IMAGE:PACKAGE ...]

Listings come from the upstream simple index (PEP 691 JSON) the host reaches (PyPI, or
IMAGEBENCH_UPSTREAM_INDEX); `classify` and `summarize` are pure functions over file names.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import TypedDict, cast

from packaging.utils import InvalidWheelFilename, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from harness.errors import HarnessError
from harness.lab.index import JSON_ACCEPT, normalize, parse_upstream, upstream_default


class ListedFile(TypedDict):
    """A file of a project's listing, as far as classifying needs it (and as a fixture records it)."""

    filename: str
    yanked: bool


class ProjectRow(TypedDict, total=False):
    """What fits of a project's newest stable release (`classify`), or why it is unknown (`error`)."""

    project: str
    version: str | None
    error: str
    pure: bool
    manylinux: bool
    musllinux: bool
    sdist: bool
    files: int


class Summary(TypedDict):
    """Fractions over the compiled packages found (`summarize`)."""

    compiled_packages: int
    with_manylinux: int
    with_musllinux: int
    manylinux_fraction: float | None
    musllinux_fraction: float | None
    manylinux_only: list[str]
    neither: list[str]


class BuildTry(TypedDict):
    """One `pip install` of a package in an image (`try_build`)."""

    image: str
    package: str
    ok: bool
    exit_code: int
    seconds: float
    error: list[str]
    tail: list[str]


class Finding(TypedDict, total=False):
    """The whole check for one Python (`run`; `builds` when --try-build asked for some)."""

    python: str
    platform: str
    index: str
    at: float
    experiment_packages: Summary
    popular_compiled: Summary
    packages: list[ProjectRow]
    builds: list[BuildTry]


# the experiments' own packages (base-image's requirements and the lab lock's compiled ones)
EXPERIMENT_PACKAGES = ("flask", "gunicorn", "markupsafe", "charset-normalizer", "numpy", "pandas", "pyzmq")
# popular packages with compiled code (the ones an alpine user meets first)
POPULAR_COMPILED = (
    "numpy",
    "pandas",
    "psycopg2",
    "psycopg2-binary",
    "cryptography",
    "lxml",
    "pillow",
    "grpcio",
    "scipy",
    "pyyaml",
    "orjson",
    "pydantic-core",
    "uvloop",
    "psutil",
    "matplotlib",
    "scikit-learn",
    "pyarrow",
    "mysqlclient",
    "greenlet",
    "regex",
    "msgpack",
    "bcrypt",
    "cffi",
    "pyzmq",
    "torch",
    "h5py",
    "shapely",
    "tokenizers",
)
ARCH = "x86_64"


def _cp(python: str) -> tuple[int, int]:
    major, minor = python.split(".")[:2]
    return int(major), int(minor)


def wheel_fits(filename: str, python: str, libc: str) -> bool:
    """Pure: can CPython `python` on x86_64 Linux with `libc` ('glibc' | 'musl') install this wheel?"""
    try:
        _n, _v, _b, tags = parse_wheel_filename(filename)
    except InvalidWheelFilename:
        return False
    major, minor = _cp(python)
    for t in tags:
        interp, abi, plat = t.interpreter, t.abi, t.platform
        if plat == "any":
            plat_ok = True
        elif libc == "musl":
            plat_ok = plat.startswith("musllinux_") and plat.endswith(ARCH)
        else:
            plat_ok = (plat.startswith("manylinux") and plat.endswith(ARCH)) or plat == f"linux_{ARCH}"
            plat_ok = plat_ok and not plat.startswith("linux_")  # PyPI refuses linux_* wheels anyway
        if not plat_ok:
            continue
        if abi == f"cp{major}{minor}" and interp == f"cp{major}{minor}":
            return True
        if abi == "abi3" and interp.startswith("cp3") and int(interp[3:] or 0) <= minor:
            return True
        if abi == "none" and interp in (f"py{major}", f"py{major}{minor}", f"cp{major}{minor}"):
            return True
    return False


def _is_pure(filename: str) -> bool:
    try:
        tags = parse_wheel_filename(filename)[3]
    except InvalidWheelFilename:
        return False
    return bool(tags) and all(t.platform == "any" and t.abi == "none" for t in tags)


def _version_of(filename: str) -> Version | None:
    try:
        if filename.endswith(".whl"):
            return Version(str(parse_wheel_filename(filename)[1]))
        stem = filename.removesuffix(".tar.gz").removesuffix(".zip")
        return Version(stem.rpartition("-")[2])
    except (InvalidWheelFilename, InvalidVersion):
        return None


def classify(project: str, files: list[ListedFile], python: str) -> ProjectRow:
    """Pure: newest stable release of a project (from simple-index file entries) -> what fits.

    files: [{"filename", "yanked"?}].  The newest non-yanked, non-prerelease version that has
    any file is judged; `pure` means a py3-none-any wheel (fits every libc).
    """
    by_version: dict[Version, list[str]] = {}
    for f in files:
        if f.get("yanked"):
            continue
        v = _version_of(f["filename"])
        if v is None or v.is_prerelease or v.is_devrelease:
            continue
        by_version.setdefault(v, []).append(f["filename"])
    if not by_version:
        return {"project": project, "version": None, "error": "no stable release listed"}
    version = max(by_version)
    names = by_version[version]
    wheels = [n for n in names if n.endswith(".whl")]
    pure = any(_is_pure(n) for n in wheels)
    return {
        "project": project,
        "version": str(version),
        "pure": pure,
        "manylinux": any(wheel_fits(n, python, "glibc") for n in wheels),
        "musllinux": any(wheel_fits(n, python, "musl") for n in wheels),
        "sdist": any(not n.endswith(".whl") for n in names),
        "files": len(names),
    }


def trim(files: list[ListedFile], keep: int = 3) -> list[ListedFile]:
    """Pure: only the files of the `keep` newest stable versions and newer pre-releases (a small fixture)."""
    versions = sorted({v for f in files if (v := _version_of(f["filename"])) is not None}, reverse=True)
    stable = [v for v in versions if not (v.is_prerelease or v.is_devrelease)]
    oldest = stable[:keep][-1] if stable else None
    wanted = {v for v in versions if oldest is None or v >= oldest}
    return [f for f in files if _version_of(f["filename"]) in wanted]


def summarize(rows: list[ProjectRow]) -> Summary:
    """Pure: fractions over the compiled (non-pure) packages that were found."""
    compiled = [r for r in rows if r.get("version") and not r.get("pure")]
    n = len(compiled)
    many = sum(1 for r in compiled if r["manylinux"])
    musl = sum(1 for r in compiled if r["musllinux"])
    return {
        "compiled_packages": n,
        "with_manylinux": many,
        "with_musllinux": musl,
        "manylinux_fraction": round(many / n, 3) if n else None,
        "musllinux_fraction": round(musl / n, 3) if n else None,
        "manylinux_only": sorted(r["project"] for r in compiled if r["manylinux"] and not r["musllinux"]),
        "neither": sorted(r["project"] for r in compiled if not r["manylinux"] and not r["musllinux"]),
    }


def fetch_listing(project: str, index_url: str, timeout: float = 30.0) -> list[ListedFile]:
    url = f"{index_url.rstrip('/')}/{normalize(project)}/"
    req = urllib.request.Request(url, headers={"Accept": JSON_ACCEPT})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        files = parse_upstream(r.read(), r.headers.get("Content-Type", ""), url)
    return [{"filename": f["filename"], "yanked": f["yanked"]} for f in files]


def try_build(image: str, package: str, index_url: str | None = None, timeout: float = 600.0) -> BuildTry:
    """Install `package` in `image` (host network, the lab index from the image's pip.conf).

    A package without a fitting wheel makes pip build its sdist, which needs a compiler: record
    the outcome and the error's last lines.
    """
    argv = ["docker", "run", "--rm", "--network=host", image, "pip", "install", "--no-cache-dir"]
    if index_url:
        argv += ["--index-url", index_url]
    argv.append(package)
    t0 = time.perf_counter()
    cp = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    lines = [ln for ln in (cp.stdout + cp.stderr).splitlines() if ln.strip()]
    errors = [ln.strip() for ln in lines if "error" in ln.lower()]
    return {
        "image": image,
        "package": package,
        "ok": cp.returncode == 0,
        "exit_code": cp.returncode,
        "seconds": round(time.perf_counter() - t0, 2),
        "error": (errors[:4] + errors[-2:] if len(errors) > 6 else errors) if cp.returncode else [],
        "tail": lines[-12:],
    }


def run(
    python: str,
    packages: list[str],
    listings: dict[str, list[ListedFile]] | None,
    index_url: str,
) -> tuple[Finding, dict[str, list[ListedFile]]]:
    fetched: dict[str, list[ListedFile]] = {}
    rows: list[ProjectRow] = []
    for p in packages:
        files = (listings or {}).get(p)
        if files is None:
            try:
                files = fetch_listing(p, index_url)
            except OSError as exc:
                rows.append({"project": p, "version": None, "error": f"listing failed: {exc}"})
                continue
        fetched[p] = files
        rows.append(classify(p, files, python))
    by = {r["project"]: r for r in rows}
    out: Finding = {
        "python": python,
        "platform": f"linux {ARCH}",
        "index": index_url,
        "at": time.time(),
        "experiment_packages": summarize([by[p] for p in EXPERIMENT_PACKAGES if p in by]),
        "popular_compiled": summarize([by[p] for p in POPULAR_COMPILED if p in by]),
        "packages": rows,
    }
    return out, fetched


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.lab.wheelcheck", description=__doc__.splitlines()[0])
    ap.add_argument("--python", default="3.13")
    ap.add_argument("--out", type=Path, help="write the finding as JSON here")
    ap.add_argument("--listings", type=Path, help="classify recorded listings (no network)")
    ap.add_argument("--record", type=Path, help="record the fetched listings here (a test fixture)")
    ap.add_argument("--index", default=None, help="upstream simple index (default: PyPI)")
    ap.add_argument(
        "--try-build", action="append", default=[], metavar="IMAGE=PACKAGE", help="install PACKAGE in IMAGE"
    )
    a = ap.parse_args(argv)
    index_url = a.index or upstream_default() or "https://pypi.org/simple/"
    listings = cast(dict[str, list[ListedFile]], json.loads(a.listings.read_text())) if a.listings else None
    packages = list(dict.fromkeys(EXPERIMENT_PACKAGES + POPULAR_COMPILED))
    try:
        out, fetched = run(a.python, packages, listings, index_url)
        builds: list[BuildTry] = []
        for spec in a.try_build:
            image, sep, pkg = spec.partition("=")
            if not sep or not image or not pkg:
                raise HarnessError(f"--try-build wants IMAGE=PACKAGE, got {spec!r}")
            builds.append(try_build(image, pkg))
        if builds:
            out["builds"] = builds
    except (HarnessError, subprocess.TimeoutExpired) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if a.record:
        a.record.parent.mkdir(parents=True, exist_ok=True)
        small = {p: trim(files) for p, files in fetched.items()}
        a.record.write_text(json.dumps(small, indent=1, sort_keys=True) + "\n")
    text = json.dumps(out, indent=2)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(text + "\n")
    for key in ("experiment_packages", "popular_compiled"):
        s = out[key]
        print(
            f"{key}: {s['with_musllinux']}/{s['compiled_packages']} compiled packages have a musllinux "
            f"cp{a.python.replace('.', '')} wheel, {s['with_manylinux']}/{s['compiled_packages']} a manylinux one; "
            f"manylinux only: {', '.join(s['manylinux_only']) or 'none'}"
        )
    for b in out.get("builds", []):
        print(
            f"build {b['package']} in {b['image']}: {'ok' if b['ok'] else 'FAILED'} {b['error'][-1:] or ''}"
        )
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
