"""Filling the lab index's wheelhouse with the host's pip, from one lock (experiments/packages.lock)
plus the sdists that experiments compile (experiments/sdists.txt).

Wheels are fetched for each lab base's Python and platform (not the host's), uploaded before the
instant in experiments/index.toml (`pip download --uploaded-prior-to`; the index serves the same
cut).  A stamp (hash of the lock files, that instant and the download recipe) makes a second `lab up`
skip the download.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path

from harness.errors import LabError
from harness.lab.index import IndexFiles, normalize, parse_instant, project_of, upstream_default
from harness.lab.state import WheelhouseRecord
from harness.paths import experiments_dir

# Newest first; the bases' glibc is 2.36 (bookworm) and 2.41 (trixie).
PLATFORMS = (
    "manylinux_2_36_x86_64",
    "manylinux_2_35_x86_64",
    "manylinux_2_34_x86_64",
    "manylinux_2_31_x86_64",
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_24_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
    "manylinux2010_x86_64",
    "manylinux1_x86_64",
)
# musl bases (the python:*-alpine stand-in): musl 1.2 -> musllinux_1_2 and older tags
MUSL_PLATFORMS = ("musllinux_1_2_x86_64", "musllinux_1_1_x86_64")
RECIPE = 1


def split_target(target: str) -> tuple[str, tuple[str, ...]]:
    """Pure: a wheelhouse target ('3.13' glibc, '3.13-musl') -> (python version, platform tags)."""
    py, _, libc = target.partition("-")
    if libc not in ("", "musl"):
        raise LabError(f"unknown wheelhouse target {target!r}", hint="use 3.X or 3.X-musl")
    return py, (MUSL_PLATFORMS if libc == "musl" else PLATFORMS)


# pip settings of the host that must not leak into the lab's downloads
_DROP_ENV = (
    "PIP_FIND_LINKS",
    "PIP_EXTRA_INDEX_URL",
    "PIP_CONSTRAINT",
    "PIP_NO_INDEX",
    "PIP_REQUIREMENT",
    "PIP_ONLY_BINARY",
    "PIP_NO_BINARY",
    "PIP_TARGET",
    "PIP_USER",
)


def lock_paths() -> tuple[Path, Path]:
    d = experiments_dir()
    return d / "packages.lock", d / "sdists.txt"


#: pip learned `--uploaded-prior-to` in 26.0
PIP_CUTOFF_MAJOR = 26


def index_settings_path() -> Path:
    return experiments_dir() / "index.toml"


def uploaded_before(path: Path | None = None) -> str | None:
    """The lab index's cutoff instant from experiments/index.toml (None when the file is absent).

    Returned as written (normalized to ISO 8601 with an offset); a value that is not an ISO 8601
    instant with a time zone, or any other key, is refused in one line naming the file."""
    path = path or index_settings_path()
    if not path.exists():
        return None
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise LabError(f"{path}: not valid TOML ({exc})", hint="restore it from git") from None
    unknown = sorted(set(data) - {"uploaded_before"})
    if unknown:
        raise LabError(f"{path}: unknown key {unknown[0]!r} (allowed: uploaded_before)")
    value = data.get("uploaded_before")
    if value is None:
        return None
    try:
        return parse_instant(value).isoformat()
    except ValueError as exc:
        raise LabError(f"{path}: uploaded_before: {exc}", hint='write it as "2026-12-01T00:00:00Z"') from None


def check_pip_cutoff(cutoff: str | None) -> None:
    """The host pip must be able to pin downloads in time when a cutoff is set."""
    if cutoff is None:
        return
    version = metadata.version("pip")
    if int(version.split(".")[0]) < PIP_CUTOFF_MAJOR:
        raise LabError(
            f"pip {version} cannot download packages uploaded before {cutoff} (--uploaded-prior-to needs pip >= 26)",
            hint=f"{sys.executable} -m pip install --upgrade pip",
        )


def read_requirements(path: Path) -> list[str]:
    """Pure-ish: requirement lines without comments/blanks; every one must be pinned with ==."""
    if not path.exists():
        return []
    reqs = []
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        spec = line.split(";", 1)[
            0
        ]  # an environment marker may follow: `numpy==2.5.5; python_version >= "3.12"`
        if "==" not in spec or any(op in spec for op in (">=", "<=", "~=", "!=")):
            raise LabError(f"{path}:{n}: {line!r} is not pinned with ==", hint="pin every lock entry exactly")
        reqs.append(line)
    return reqs


def for_python(reqs: list[str], python: str) -> list[str]:
    """Pure: the lock lines whose environment marker holds for `python` (markers stripped)."""
    try:
        from packaging.markers import Marker
    except ImportError:  # pragma: no cover - pip always vendors it
        from pip._vendor.packaging.markers import Marker  # type: ignore[assignment]  # the same class, vendored
    env = {
        "python_version": python,
        "python_full_version": f"{python}.0",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": "x86_64",
        "os_name": "posix",
    }
    out = []
    for line in reqs:
        spec, _, marker = line.partition(";")
        if not marker.strip() or Marker(marker.strip()).evaluate(env):
            out.append(spec.strip())
    return out


def stamp(
    lock_text: str,
    sdists_text: str,
    pythons: list[str],
    platforms: Iterable[str] = PLATFORMS,
    cutoff: str | None = None,
) -> str:
    """Pure: what the wheelhouse content depends on."""
    fields = {
        "lock": lock_text,
        "sdists": sdists_text,
        "pythons": sorted(pythons),
        "platforms": list(platforms),
        "recipe": RECIPE,
    }
    if any(p.endswith("-musl") for p in pythons):  # glibc-only stamps stay what they were
        fields["musl_platforms"] = list(MUSL_PLATFORMS)
    if cutoff is not None:  # stamps without a cutoff stay what they were
        fields["uploaded_before"] = cutoff
    blob = json.dumps(fields, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()


def stamp_file(root: Path) -> Path:
    return root / ".stamp.json"


def is_current(root: Path, want: str) -> bool:
    f = stamp_file(root)
    if not f.exists():
        return False
    try:
        data = json.loads(f.read_text())
    except ValueError:
        return False
    files = root / "files"
    return data.get("stamp") == want and files.is_dir() and any(files.iterdir())


def pip_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DROP_ENV}
    env["PIP_CONFIG_FILE"] = os.devnull  # the host's pip.conf (constraints, extra indexes) stays out
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def download_argv(
    dest: Path, lock: Path, python: str, index_url: str | None, cutoff: str | None = None
) -> list[str]:
    """Pure: the host pip command fetching binary wheels of the lock for one target (3.X or 3.X-musl)."""
    python, platforms = split_target(python)
    argv = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--dest",
        str(dest),
        "--requirement",
        str(lock),
        "--only-binary=:all:",
        "--implementation",
        "cp",
        "--python-version",
        python,
        "--abi",
        f"cp{python.replace('.', '')}",
    ]
    for p in platforms:
        argv += ["--platform", p]
    if index_url:
        argv += ["--index-url", index_url]
    if cutoff:
        argv += ["--uploaded-prior-to", cutoff]
    return argv


def sdist_filename_matches(filename: str, project: str, version: str) -> bool:
    """Pure: is `filename` the sdist of project==version (PEP 625 or legacy naming)?"""
    if not filename.endswith((".tar.gz", ".zip")) or project_of(filename) != normalize(project):
        return False
    stem = filename[: -len(".tar.gz")] if filename.endswith(".tar.gz") else filename[: -len(".zip")]
    return stem.rpartition("-")[2] == version


def fetch_sdists(root: Path, requirements: list[str], upstream: str) -> list[str]:
    """Fetch sdists through the index's own mirror code (pip download would build their metadata)."""
    house = IndexFiles(root, upstream, ttl=0)
    got = []
    for req in requirements:
        name, _, version = (part.strip() for part in req.partition("=="))
        name = name.split("[", 1)[0]
        listing = house.upstream_files(normalize(name))
        match = [
            f["filename"]
            for f in listing
            if sdist_filename_matches(f["filename"], name, version) and not f.get("yanked")
        ]
        if not match:
            raise LabError(f"no sdist of {name}=={version} on {upstream}", hint="fix experiments/sdists.txt")
        match.sort(key=lambda fn: not fn.endswith(".tar.gz"))
        try:
            house.fetch(match[0])
        except OSError as exc:
            raise LabError(f"download of {match[0]} failed: {exc}", hint="check that the host reaches PyPI")
        got.append(match[0])
    return got


def _run(argv: list[str], what: str, timeout: float = 1800.0) -> float:
    t0 = time.perf_counter()
    try:
        cp = subprocess.run(argv, capture_output=True, text=True, env=pip_env(), timeout=timeout)
    except subprocess.TimeoutExpired:
        raise LabError(f"pip download of {what} took longer than {timeout:.0f} s", hint="check PyPI access")
    if cp.returncode != 0:
        lines = [ln for ln in (cp.stderr or cp.stdout).splitlines() if ln.strip()]
        err = next(
            (ln for ln in lines if ln.lstrip().lower().startswith("error")),
            lines[-1] if lines else "no output",
        )
        raise LabError(
            f"pip download of {what} failed: {err.split(' (from versions')[0].strip()}",
            hint="check experiments/packages.lock and that the host reaches PyPI",
        )
    return time.perf_counter() - t0


def fill(
    root: Path, pythons: list[str], progress: Callable[[str], None] = print, force: bool = False
) -> WheelhouseRecord:
    """Download the lock's wheels for each Python and the sdists; skip when the stamp matches."""
    lock, sdists = lock_paths()
    if not lock.exists():
        raise LabError(f"{lock} is missing", hint="restore it from git")
    reqs = read_requirements(lock)
    src = read_requirements(sdists)
    cutoff = uploaded_before()
    want = stamp(lock.read_text(), sdists.read_text() if sdists.exists() else "", pythons, cutoff=cutoff)
    files = root / "files"
    files.mkdir(parents=True, exist_ok=True)
    if not force and is_current(root, want):
        return {"skipped": True, "stamp": want, "files": count_files(root), "seconds": 0.0}
    check_pip_cutoff(cutoff)
    index_url = os.environ.get("IMAGEBENCH_UPSTREAM_INDEX") or None
    timings: dict[str, float] = {}
    skipped: dict[str, list[str]] = {}
    for py in sorted(set(pythons)):
        mine = for_python(reqs, split_target(py)[0])
        progress(f"wheelhouse: downloading {len(mine)} locked packages for Python {py}")
        t0 = time.perf_counter()
        skipped[py] = download_for_python(root, files, mine, py, index_url, progress, cutoff)
        timings[py] = round(time.perf_counter() - t0, 2)
    if src:
        progress(f"wheelhouse: downloading {len(src)} sdists")
        t0 = time.perf_counter()
        fetch_sdists(root, src, index_url or upstream_default() or "https://pypi.org/simple/")
        timings["sdists"] = round(time.perf_counter() - t0, 2)
    unavailable = {py: v for py, v in skipped.items() if v}
    record = {
        "stamp": want,
        "pythons": sorted(set(pythons)),
        "requirements": reqs,
        "sdists": src,
        "uploaded_before": cutoff,
        "unavailable": unavailable,
        "timings_s": timings,
        "at": time.time(),
    }
    tmp = stamp_file(root).with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2))
    tmp.replace(stamp_file(root))
    return {
        "skipped": False,
        "stamp": want,
        "files": count_files(root),
        "seconds": sum(timings.values()),
        "unavailable": unavailable,
    }


def download_for_python(
    root: Path,
    files: Path,
    reqs: list[str],
    py: str,
    index_url: str | None,
    progress: Callable[[str], None] = print,
    cutoff: str | None = None,
) -> list[str]:
    """Download all of reqs for one Python; if that fails, line by line, returning the lines that fail.

    One lock serves every base's Python: a pin that has no wheel for an older Python (numpy 2.5 on
    3.11) must not keep the others out.  Mark such lines `; python_version >= "3.12"` to be explicit.
    """
    if not reqs:
        return []
    tmp = root / f".lock-{py}.txt"
    tmp.write_text("\n".join(reqs) + "\n")
    try:
        _run(download_argv(files, tmp, py, index_url, cutoff), f"the lock for Python {py}")
        return []
    except LabError as whole:
        progress(f"wheelhouse: {whole.message}; retrying line by line")
    failed = []
    for line in reqs:
        tmp.write_text(line + "\n")
        try:
            _run(download_argv(files, tmp, py, index_url, cutoff), f"{line} for Python {py}")
        except LabError as exc:
            failed.append(line)
            progress(f"wheelhouse: warning: {exc.message}")
    tmp.unlink(missing_ok=True)
    if len(failed) == len(reqs):
        raise LabError(
            f"pip download failed for every locked package for Python {py}",
            hint="check that the host reaches PyPI (pip download flask)",
        )
    return failed


def count_files(root: Path) -> int:
    files = root / "files"
    return (
        sum(1 for p in files.iterdir() if p.is_file() and not p.name.startswith(".")) if files.is_dir() else 0
    )


def count_projects(root: Path) -> int:
    files = root / "files"
    if not files.is_dir():
        return 0
    return len({project_of(p.name) for p in files.iterdir() if project_of(p.name)})
