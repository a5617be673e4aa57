"""The python:*-alpine stand-in built by `lab up`: CPython on musl and busybox, pip picking musllinux wheels."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from harness.lab.basedefs import load_bases

TAG = load_bases().bases["python-3.13-musl"].tag


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", "run", "--rm", "--network=none", TAG, *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.usefixtures("lab")
def test_musl_base_runs_python_with_the_modules_it_was_built_with():
    """sys, ssl, sqlite3, ctypes, zlib, bz2, lzma import; ssl is linked against the OpenSSL compiled into the base."""
    cp = _run(
        "python",
        "-c",
        "import sys, ssl, sqlite3, ctypes, zlib, bz2, lzma, hashlib; print(sys.version); print(ssl.OPENSSL_VERSION);"
        "print(hashlib.sha3_256(b'').hexdigest()[:8]); ssl.create_default_context()",
    )
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout.startswith("3.13.")
    openssl, sha3 = cp.stdout.splitlines()[-2:]
    assert openssl.startswith("OpenSSL 3.") and sha3 == "a7ffc6f8"


@pytest.mark.usefixtures("lab")
def test_pip_debug_reports_musllinux_tags():
    """`pip debug --verbose` (which needs the ssl module) lists musllinux_1_2 tags and no manylinux ones."""
    cp = _run("pip", "debug", "--verbose")
    assert cp.returncode == 0, cp.stderr
    tags = [ln.strip() for ln in cp.stdout.splitlines() if ln.strip().startswith("cp313-cp313-")]
    assert any(t.endswith("musllinux_1_2_x86_64") for t in tags)
    assert not any("manylinux" in t for t in tags)


@pytest.mark.usefixtures("lab")
def test_musl_base_is_musl_and_busybox_without_a_package_manager():
    """musl's loader answers, /bin/sh is busybox, there is no apk or dpkg."""
    cp = _run(
        "sh", "-c", "/lib/ld-musl-x86_64.so.1 2>&1 | head -2; readlink /bin/sh; command -v apk dpkg || true"
    )
    assert "musl libc" in cp.stdout and "/bin/busybox" in cp.stdout
    assert "apk" not in cp.stdout.split("busybox", 1)[1] and "dpkg" not in cp.stdout.split("busybox", 1)[1]


def test_pip_selects_musllinux_wheels(lab):
    """pip's tags (its vendored packaging) are musllinux only; pip.conf names the lab index."""
    cp = _run(
        "python",
        "-c",
        "from pip._vendor.packaging import tags; print(*[str(t) for t in tags.sys_tags()], sep=chr(10))",
    )
    assert cp.returncode == 0, cp.stderr
    tags = [ln.strip() for ln in cp.stdout.splitlines() if ln.strip().startswith("cp313-cp313-")]
    assert any("musllinux_1_2_x86_64" in t for t in tags)
    assert not any("manylinux" in t for t in tags)
    conf = _run("cat", "/etc/pip.conf").stdout
    assert lab.index_url in conf


@pytest.mark.usefixtures("lab")
def test_musl_base_provenance_is_recorded():
    """The lab's record of the base says what it stands in for and what it lacks."""
    status = json.loads(
        subprocess.run(
            [sys.executable, "-m", "harness", "lab", "status", "--json"],
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
    )
    entry = next(b for b in status["bases"] if b["lab_tag"] == TAG)
    prov = entry["provenance"]
    assert entry["present"] and prov["stands_in_for"] == "python:3.13-alpine"
    assert prov["package_manager"] is None and any("apk" in x for x in prov["left_out"])
    assert (prov["openssl"] or "").startswith("OpenSSL 3.") and prov["modules"]["ssl"] is True
