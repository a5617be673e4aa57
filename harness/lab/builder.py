"""Building the stand-in bases offline: mmdebstrap (through the lab's apt proxy) + `docker import`.

A base is imported under a temporary tag and retagged to its lab tag only when complete, so a
half-built base is never tagged.  An image whose label carries the same definition hash is
reused (idempotent `lab up`).
"""

from __future__ import annotations

import hashlib
import json
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

from harness.errors import LabError
from harness.lab.basedefs import BaseDef
from harness.lab.procs import tail_text
from harness.lab.state import BaseFacts, BaseRecord, ImageInspect, ImageSummary, SourceEntry

LABEL_KEY = "org.imagebench.lab.base"
LABEL_DEF = "org.imagebench.lab.definition"
LABEL_FOR = "org.imagebench.lab.stands-in-for"
PATH_ENV = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MERGED_USR_HOOKS = "/usr/share/mmdebstrap/hooks/maybe-merged-usr"
SUITE_PYTHON = {"trixie": "3.13", "bookworm": "3.11", "forky": "3.14"}


def effective_hash(defn: BaseDef, index_url: str) -> str:
    """The definition hash plus what is baked into the image from the lab (pip.conf's index)."""
    return hashlib.sha256(f"{defn.definition_hash()}|{index_url}".encode()).hexdigest()[:16]


def pip_conf(index_url: str) -> str:
    host = index_url.split("//", 1)[-1].split("/", 1)[0].split(":", 1)[0]
    return (
        "# imagebench lab: pip uses the lab's local index (builds run with --network=host)\n"
        "[global]\n"
        f"index-url = {index_url}\n"
        f"trusted-host = {host}\n"
        "disable-pip-version-check = true\n"
    )


NO_VALID_UNTIL = 'Acquire::Check-Valid-Until "false";'
DOCKER_APT_FILES = {
    # the apt configuration of the official debian images (debuerreotype's docker-* snippets)
    "clean": (
        'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb '
        '/var/cache/apt/*.bin || true"; };\n'
        'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb '
        '/var/cache/apt/*.bin || true"; };\n'
        'Dir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\n'
    ),
    "no-languages": 'Acquire::Languages "none";\n',
    "gzip-indexes": 'Acquire::GzipIndexes "true";\n',
    "autoremove-suggests": 'Apt::AutoRemove::SuggestsImportant "false";\n',
}


def mmdebstrap_argv(defn: BaseDef, out_dir: Path, apt_proxy: str | None, index_url: str) -> list[str]:
    """Pure: the mmdebstrap command producing out_dir/rootfs.tar, packages.txt, python.txt."""
    argv = ["mmdebstrap", f"--variant={defn.variant}", "--format=tar", "--quiet"]
    if Path(MERGED_USR_HOOKS).is_dir():  # merged /usr without the usrmerge package (and its perl)
        argv.append(f"--hook-dir={MERGED_USR_HOOKS}")
    if defn.packages:
        argv.append("--include=" + ",".join(defn.packages))
    for pat in defn.dpkg_excludes:
        argv.append(f"--dpkgopt=path-exclude={pat}")
    for pat in defn.dpkg_includes:
        argv.append(f"--dpkgopt=path-include={pat}")
    if apt_proxy:
        argv.append(f'--aptopt=Acquire::http::Proxy "{apt_proxy}"')
    if not defn.check_valid_until:
        argv.append(f"--aptopt={NO_VALID_UNTIL}")
    out = shlex.quote(str(out_dir))
    hooks = []
    if defn.python:
        conf = shlex.quote(pip_conf(index_url))
        hooks += [
            # the official layout: python, pip in /usr/local/bin, pip-owned /usr/local/lib/python3.X/site-packages;
            # --system-site-packages keeps `pip install --user` working (user site visible)
            'chroot "$1" python3 -m venv --system-site-packages /usr/local',
            'rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED',
            f'printf %s {conf} > "$1"/etc/pip.conf',
            f'chroot "$1" python3 -c "import platform; print(platform.python_version())" > {out}/python.txt',
            f'chroot "$1" /usr/local/bin/pip --version > {out}/pip.txt',
        ]
    for pat in defn.remove:
        if not pat.startswith("/") or ".." in pat:
            raise ValueError(f"{defn.key}: remove pattern {pat!r} must be an absolute path without '..'")
        hooks.append(f'rm -rf "$1"{pat}')
    # like the official debian images: downloaded .debs and package caches are deleted after every
    # install, no translations, gzipped indexes
    for name, content in DOCKER_APT_FILES.items():
        hooks.append(f'printf %s {shlex.quote(content)} > "$1"/etc/apt/apt.conf.d/docker-{name}')
    if not defn.check_valid_until:  # builds on the image run `apt-get update` against the same snapshot
        hooks.append(
            f'printf %s {shlex.quote(NO_VALID_UNTIL + chr(10))} > "$1"/etc/apt/apt.conf.d/99imagebench-snapshot'
        )
    hooks += [
        # the proxy was for building only; builds get theirs as the http_proxy build argument
        'rm -f "$1"/etc/apt/apt.conf.d/99mmdebstrap',
        'rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/var/cache/apt/archives/*.deb '
        '"$1"/var/log/apt/* "$1"/tmp/*',
        f"chroot \"$1\" dpkg-query -W -f='${{Package}}=${{Version}}\\n' > {out}/packages.txt",
    ]
    for h in hooks:
        argv.append(f"--customize-hook={h}")
    suite, m, sec = defn.suite, defn.mirror, defn.security_mirror
    argv += [
        suite,
        str(out_dir / "rootfs.tar"),
        f"deb {m} {suite} main",
        f"deb {m} {suite}-updates main",
        f"deb {sec} {suite}-security main",
    ]
    return argv


def import_changes(defn: BaseDef, def_hash: str, python_version: str | None) -> list[str]:
    """Pure: `docker import --change` instructions making the image behave like the official one."""
    env = [f"PATH={PATH_ENV}", "LANG=C.UTF-8"]
    if defn.python:
        env += ["PIP_DISABLE_PIP_VERSION_CHECK=1"]
        if python_version:
            env.append(f"PYTHON_VERSION={python_version}")
    changes = [f"ENV {e}" for e in env]
    changes.append("CMD " + json.dumps(list(defn.cmd)))
    changes.append(
        f'LABEL {LABEL_KEY}="{defn.key}" {LABEL_DEF}="{def_hash}" {LABEL_FOR}="{defn.stands_in_for}"'
    )
    return changes


def _docker(*args: str, timeout: float = 600.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)


def inspect_image(ref: str) -> ImageInspect | None:
    cp = _docker("image", "inspect", ref, timeout=30)
    if cp.returncode != 0:
        return None
    data = cast(list[ImageInspect], json.loads(cp.stdout))
    return data[0] if data else None


def image_summary(info: ImageInspect) -> ImageSummary:
    """Pure: id, bytes, layers, labels of a `docker image inspect` object."""
    return {
        "image_id": info["Id"],
        "bytes": int(info.get("Size") or 0),
        "layers": len((info.get("RootFS") or {}).get("Layers") or []),
        "labels": (info.get("Config") or {}).get("Labels") or {},
        "created": info.get("Created"),
        "repo_digests": info.get("RepoDigests") or [],
    }


def current(defn: BaseDef, def_hash: str) -> ImageSummary | None:
    """The existing lab image for defn if it was built from the same definition, else None."""
    info = inspect_image(defn.tag)
    if not info:
        return None
    s = image_summary(info)
    return s if s["labels"].get(LABEL_DEF) == def_hash else None


def build(
    defn: BaseDef,
    def_hash: str,
    work_root: Path,
    apt_proxy: str | None,
    index_url: str,
    progress: Callable[[str], None] = print,
) -> BaseRecord:
    """Build one base; returns its record.  Never leaves a partial image under the lab tag."""
    if shutil.which("mmdebstrap") is None:
        raise LabError("mmdebstrap is missing", hint="run `imagebench lab up` as root (it installs it)")
    work_root.mkdir(parents=True, exist_ok=True)
    tmp_tag = f"imagebench-lab-tmp/{defn.key}:{def_hash}"
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"base-{defn.key}-", dir=work_root) as tmp:
        out = Path(tmp)
        argv = mmdebstrap_argv(defn, out, apt_proxy, index_url)
        progress(f"bases: building {defn.tag} ({defn.suite}, {len(defn.packages)} packages)")
        cp = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
        (work_root / f"{defn.key}.mmdebstrap.log").write_text(cp.stdout + cp.stderr)
        if cp.returncode != 0:
            raise LabError(
                f"mmdebstrap failed for {defn.tag}: {tail_text(cp.stderr)}",
                hint=f"see {work_root / (defn.key + '.mmdebstrap.log')}",
            )
        t_debootstrap = time.perf_counter() - t0
        python_version = (out / "python.txt").read_text().strip() if defn.python else None
        pip_version = (out / "pip.txt").read_text().split()[1] if defn.python else None
        packages = sorted(ln for ln in (out / "packages.txt").read_text().splitlines() if ln.strip())
        import_argv = ["import", "--message", f"imagebench lab base {defn.key} ({defn.suite})"]
        for ch in import_changes(defn, def_hash, python_version):
            import_argv += ["--change", ch]
        try:
            cp = _docker(*import_argv, str(out / "rootfs.tar"), tmp_tag, timeout=900)
            if cp.returncode != 0:
                raise LabError(f"docker import failed for {defn.tag}: {tail_text(cp.stderr)}")
            cp = _docker("tag", tmp_tag, defn.tag, timeout=60)
            if cp.returncode != 0:
                raise LabError(f"docker tag {defn.tag} failed: {tail_text(cp.stderr)}")
        finally:
            _docker("rmi", tmp_tag, timeout=120)
    info = inspect_image(defn.tag)
    if info is None:
        raise LabError(f"{defn.tag} vanished right after it was built", hint="is something pruning images?")
    s = image_summary(info)
    return {
        "key": defn.key,
        "lab_tag": defn.tag,
        "image_id": s["image_id"],
        "bytes": s["bytes"],
        "layers": s["layers"],
        "suite": defn.suite,
        "python": python_version,
        "pip": pip_version,
        "packages": packages,
        "stands_in_for": defn.stands_in_for,
        "definition_hash": def_hash,
        "build_seconds": round(time.perf_counter() - t0, 2),
        "mmdebstrap_seconds": round(t_debootstrap, 2),
        "built_at": time.time(),
        "mmdebstrap": mmdebstrap_version(),
    }


MUSL_FACTS = r"""
python3 -c 'import json, platform, sys, sysconfig, sqlite3, zlib
mods = {}
for m in ("ssl", "sqlite3", "ctypes", "zlib", "bz2", "lzma", "hashlib", "readline", "curses", "dbm.gnu", "_uuid", "tkinter"):
    try:
        __import__(m); mods[m] = True
    except ImportError:
        mods[m] = False
print(json.dumps({"python": platform.python_version(), "libc": list(platform.libc_ver()),
                  "openssl": (__import__("ssl").OPENSSL_VERSION if mods["ssl"] else None), "sqlite": sqlite3.sqlite_version, "zlib": zlib.ZLIB_RUNTIME_VERSION,
                  "soabi": sysconfig.get_config_var("SOABI"), "modules": mods}))'
pip --version | cut -d" " -f2
/lib/ld-musl-x86_64.so.1 2>&1 | sed -n 2p | cut -d" " -f2
busybox 2>&1 | head -1 | cut -d" " -f2
find / -xdev \( -type f -o -type l \) 2>/dev/null | wc -l
"""


def docker_build_argv(
    defn: BaseDef, def_hash: str, tag: str, apt_proxy: str | None, index_url: str, builder_tag: str
) -> list[str]:
    """Pure: the `docker build` of a kind-dockerfile base (offline: host network, lab apt proxy)."""
    argv = [
        "build",
        "--network=host",
        "--build-arg",
        f"BUILDER={builder_tag}",
        "--build-arg",
        f"INDEX_URL={index_url}",
    ]
    if apt_proxy:
        argv += ["--build-arg", f"http_proxy={apt_proxy}", "--build-arg", "no_proxy=127.0.0.1,localhost"]
    for k, v in defn.recipe_args:  # which source a shared recipe compiles (bases.toml)
        argv += ["--build-arg", f"{k}={v}"]
    labels = {LABEL_KEY: defn.key, LABEL_DEF: def_hash, LABEL_FOR: defn.stands_in_for}
    for k, v in labels.items():
        argv += ["--label", f"{k}={v}"]
    argv += ["-t", tag, str(defn.recipe_dir())]
    return argv


def parse_facts(out: str) -> BaseFacts:
    """Pure: MUSL_FACTS output -> {python, pip, musl, busybox, files, modules, ...}."""
    lines = [ln.strip() for ln in out.strip().splitlines()]
    if len(lines) < 5:
        raise ValueError(f"expected 5 lines of facts, got {len(lines)}")
    facts = cast(BaseFacts, json.loads(lines[0]))
    facts["pip"] = lines[1] or None
    facts["musl"] = lines[2] or None
    facts["busybox"] = lines[3].lstrip("v") or None
    facts["files"] = int(lines[4])
    return facts


def image_facts(tag: str) -> BaseFacts:
    cp = _docker("run", "--rm", "--network=none", "--entrypoint", "sh", tag, "-c", MUSL_FACTS, timeout=120)
    if cp.returncode != 0:
        raise LabError(f"{tag} does not run: {tail_text(cp.stderr or cp.stdout)}")
    try:
        return parse_facts(cp.stdout)
    except (ValueError, KeyError) as exc:
        raise LabError(f"{tag}: unexpected facts output ({exc}): {tail_text(cp.stdout)}")


def build_dockerfile(
    defn: BaseDef,
    def_hash: str,
    work_root: Path,
    apt_proxy: str | None,
    index_url: str,
    builder_tag: str,
    progress: Callable[[str], None] = print,
) -> BaseRecord:
    """Build a kind-dockerfile base (musl) with `docker build`; never leaves a partial image under its tag."""
    work_root.mkdir(parents=True, exist_ok=True)
    tmp_tag = f"imagebench-lab-tmp/{defn.key}:{def_hash}"
    t0 = time.perf_counter()
    progress(f"bases: building {defn.tag} from source ({defn.recipe}/Dockerfile; minutes on 2 cores)")
    cp = _docker(*docker_build_argv(defn, def_hash, tmp_tag, apt_proxy, index_url, builder_tag), timeout=5400)
    log = work_root / f"{defn.key}.build.log"
    log.write_text(cp.stdout + cp.stderr)
    try:
        if cp.returncode != 0:
            raise LabError(f"docker build failed for {defn.tag}: {tail_text(cp.stderr)}", hint=f"see {log}")
        facts = image_facts(tmp_tag)
        cp = _docker("tag", tmp_tag, defn.tag, timeout=60)
        if cp.returncode != 0:
            raise LabError(f"docker tag {defn.tag} failed: {tail_text(cp.stderr)}")
    finally:
        _docker("rmi", tmp_tag, timeout=120)
    info = inspect_image(defn.tag)
    if info is None:
        raise LabError(f"{defn.tag} vanished right after it was built", hint="is something pruning images?")
    s = image_summary(info)
    return {
        **_dockerfile_record(defn, def_hash, s, facts),
        "build_seconds": round(time.perf_counter() - t0, 2),
        "built_at": time.time(),
    }


def _dockerfile_record(defn: BaseDef, def_hash: str, s: ImageSummary, facts: BaseFacts) -> BaseRecord:
    return {
        "key": defn.key,
        "lab_tag": defn.tag,
        "image_id": s["image_id"],
        "bytes": s["bytes"],
        "layers": s["layers"],
        "suite": defn.suite,
        "python": facts.get("python"),
        "pip": facts.get("pip"),
        "packages": [],  # no package database: what is in the image is in `facts` and sources.txt
        "facts": facts,
        "sources": recipe_sources(defn),
        "stands_in_for": defn.stands_in_for,
        "definition_hash": def_hash,
        "build_seconds": None,
        "mmdebstrap_seconds": None,
        "built_at": None,
        "mmdebstrap": None,
    }


def recipe_sources(defn: BaseDef) -> list[SourceEntry]:
    """The recipe's sources.txt as [{name, path, sha256}] (what the base was compiled from)."""
    f = defn.recipe_dir() / "sources.txt"
    if not f.exists():
        return []
    return parse_sources(f.read_text())


def parse_sources(text: str) -> list[SourceEntry]:
    """Pure: `name  pool-path  sha256` lines (comments and blanks skipped)."""
    out: list[SourceEntry] = []
    for ln in text.splitlines():
        parts = ln.split("#", 1)[0].split()
        if len(parts) == 3:
            out.append({"name": parts[0], "path": parts[1], "sha256": parts[2]})
    return out


def record_from_image(defn: BaseDef, def_hash: str, s: ImageSummary) -> BaseRecord:
    """Rebuild a base's record from the image itself (state dir lost, image kept)."""
    if defn.kind == "dockerfile":
        return _dockerfile_record(defn, def_hash, s, image_facts(defn.tag))
    cp = _docker(
        "run",
        "--rm",
        "--network=none",
        "--entrypoint",
        "dpkg-query",
        defn.tag,
        "-W",
        "-f=${Package}=${Version}\n",
        timeout=120,
    )
    packages = sorted(ln for ln in cp.stdout.splitlines() if ln.strip()) if cp.returncode == 0 else []
    python = None
    if defn.python:
        cp = _docker(
            "run",
            "--rm",
            "--network=none",
            defn.tag,
            "python3",
            "-c",
            "import platform; print(platform.python_version())",
            timeout=120,
        )
        python = cp.stdout.strip() or None
    return {
        "key": defn.key,
        "lab_tag": defn.tag,
        "image_id": s["image_id"],
        "bytes": s["bytes"],
        "layers": s["layers"],
        "suite": defn.suite,
        "python": python,
        "pip": None,
        "packages": packages,
        "stands_in_for": defn.stands_in_for,
        "definition_hash": def_hash,
        "build_seconds": None,
        "mmdebstrap_seconds": None,
        "built_at": None,
        "mmdebstrap": None,
    }


def mmdebstrap_version() -> str | None:
    try:
        cp = subprocess.run(["mmdebstrap", "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return cp.stdout.strip().split()[-1] if cp.returncode == 0 and cp.stdout.strip() else None
