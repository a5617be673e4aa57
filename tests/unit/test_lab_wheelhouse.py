"""Lock reading, the stamp that makes a second lab up skip downloads, pip command lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import LabError
from harness.lab import wheelhouse


def test_read_requirements(tmp_path):
    """read_requirements keeps pinned lines only; unpinned is a LabError; a missing file is empty."""
    f = tmp_path / "lock"
    f.write_text("# comment\nflask==3.1.3  # web\n\nrequests==2.34.2\n")
    assert wheelhouse.read_requirements(f) == ["flask==3.1.3", "requests==2.34.2"]
    f.write_text("flask>=3\n")
    with pytest.raises(LabError, match="not pinned"):
        wheelhouse.read_requirements(f)
    assert wheelhouse.read_requirements(tmp_path / "missing") == []


def test_repo_lock_is_pinned():
    """The repository's package lock is fully pinned and has the packages experiments install."""
    lock, sdists = wheelhouse.lock_paths()
    reqs = wheelhouse.read_requirements(lock)
    names = {r.split("==")[0].lower() for r in reqs}
    assert {"flask", "gunicorn", "requests", "setuptools", "wheel"} <= names
    wheelhouse.read_requirements(sdists)


def test_stamp_depends_on_inputs():
    """The wheelhouse stamp changes with the lock, sdists and Python versions, not their order."""
    a = wheelhouse.stamp("flask==1\n", "", ["3.13", "3.11"])
    assert a == wheelhouse.stamp("flask==1\n", "", ["3.11", "3.13"])
    assert a != wheelhouse.stamp("flask==2\n", "", ["3.13", "3.11"])
    assert a != wheelhouse.stamp("flask==1\n", "x==1\n", ["3.13", "3.11"])
    assert a != wheelhouse.stamp("flask==1\n", "", ["3.13"])


def test_is_current(tmp_path):
    """The wheelhouse is current only with files and a stamp that matches."""
    assert not wheelhouse.is_current(tmp_path, "s")
    (tmp_path / "files").mkdir()
    wheelhouse.stamp_file(tmp_path).write_text(json.dumps({"stamp": "s"}))
    assert not wheelhouse.is_current(tmp_path, "s")  # no files: download again
    (tmp_path / "files" / "a-1.0-py3-none-any.whl").write_bytes(b"")
    assert wheelhouse.is_current(tmp_path, "s")
    assert not wheelhouse.is_current(tmp_path, "other")


def test_fill_skips_when_stamp_matches(tmp_path, monkeypatch):
    """fill downloads nothing when the stamp matches and again when the lock changes."""
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "packages.lock").write_text("flask==3.1.3\n")
    monkeypatch.setenv("IMAGEBENCH_EXPERIMENTS", str(exp))
    root = tmp_path / "wh"
    (root / "files").mkdir(parents=True)
    (root / "files" / "flask-3.1.3-py3-none-any.whl").write_bytes(b"")
    want = wheelhouse.stamp("flask==3.1.3\n", "", ["3.13"])
    wheelhouse.stamp_file(root).write_text(json.dumps({"stamp": want}))
    calls = []
    monkeypatch.setattr(wheelhouse, "_run", lambda *a, **_k: calls.append(a) or 0.0)
    out = wheelhouse.fill(root, ["3.13"], progress=lambda _m: None)
    assert out["skipped"] and not calls
    (exp / "packages.lock").write_text("flask==3.1.2\n")
    out = wheelhouse.fill(root, ["3.13"], progress=lambda _m: None)
    assert not out["skipped"] and len(calls) == 1


def test_download_argv_targets_the_image_python(tmp_path):
    """pip download targets the image's Python, ABI and manylinux platforms, binaries only."""
    argv = wheelhouse.download_argv(tmp_path, tmp_path / "lock", "3.13", None)
    assert argv[argv.index("--python-version") + 1] == "3.13"
    assert argv[argv.index("--abi") + 1] == "cp313"
    assert "--only-binary=:all:" in argv
    assert "manylinux_2_17_x86_64" in argv and "manylinux2014_x86_64" in argv


def test_pip_env_drops_host_settings(monkeypatch):
    """pip_env drops the host's find-links but keeps its certificate."""
    monkeypatch.setenv("PIP_FIND_LINKS", "/opt/wheels")
    monkeypatch.setenv("PIP_CERT", "/x.pem")
    env = wheelhouse.pip_env()
    assert "PIP_FIND_LINKS" not in env and env["PIP_CERT"] == "/x.pem"


def test_sdist_filename_matches():
    """sdist_filename_matches accepts the project's sdist of that version only (names normalised)."""
    assert wheelhouse.sdist_filename_matches("psutil-7.2.2.tar.gz", "psutil", "7.2.2")
    assert wheelhouse.sdist_filename_matches("MarkupSafe-3.0.4.tar.gz", "markupsafe", "3.0.4")
    assert not wheelhouse.sdist_filename_matches("psutil-7.2.1.tar.gz", "psutil", "7.2.2")
    assert not wheelhouse.sdist_filename_matches("psutil-7.2.2-cp36-abi3-any.whl", "psutil", "7.2.2")


def test_markers_select_lines_per_python(tmp_path):
    """Environment markers in the lock select lines per Python version."""
    f = tmp_path / "lock"
    f.write_text('flask==3.1.3\nnumpy==2.5.5; python_version >= "3.12"\n')
    reqs = wheelhouse.read_requirements(f)
    assert wheelhouse.for_python(reqs, "3.13") == ["flask==3.1.3", "numpy==2.5.5"]
    assert wheelhouse.for_python(reqs, "3.11") == ["flask==3.1.3"]


def test_line_by_line_fallback(tmp_path, monkeypatch):
    """A failed batch download retries line by line, reporting only the failing lines; all failing is an error."""

    def fake_run(argv, what, **_kw):
        text = Path(argv[argv.index("--requirement") + 1]).read_text()
        if "numpy" in text:
            raise LabError(f"pip download of {what} failed: no numpy")
        return 0.0

    monkeypatch.setattr(wheelhouse, "_run", fake_run)
    failed = wheelhouse.download_for_python(
        tmp_path, tmp_path, ["flask==1", "numpy==2"], "3.11", None, progress=lambda _m: None
    )
    assert failed == ["numpy==2"]
    monkeypatch.setattr(wheelhouse, "_run", lambda *_a, **_k: (_ for _ in ()).throw(LabError("x")))
    with pytest.raises(LabError, match="failed for every locked package"):
        wheelhouse.download_for_python(tmp_path, tmp_path, ["a==1"], "3.11", None, progress=lambda _m: None)


def test_musl_target_downloads_musllinux_wheels(tmp_path):
    """A 3.13-musl target asks pip for musllinux wheels of CPython 3.13 and no manylinux ones."""
    argv = wheelhouse.download_argv(tmp_path, tmp_path / "lock", "3.13-musl", None)
    assert argv[argv.index("--python-version") + 1] == "3.13"
    assert argv[argv.index("--abi") + 1] == "cp313"
    plats = [argv[i + 1] for i, a in enumerate(argv) if a == "--platform"]
    assert plats == ["musllinux_1_2_x86_64", "musllinux_1_1_x86_64"]
    with pytest.raises(LabError, match="unknown wheelhouse target"):
        wheelhouse.split_target("3.13-bionic")


def test_stamp_of_glibc_targets_unchanged_by_musl_support():
    """Adding musl targets did not move the stamp of a glibc-only wheelhouse (no needless re-download)."""
    a = wheelhouse.stamp("lock", "", ["3.13"])
    assert a == wheelhouse.stamp("lock", "", ["3.13"])
    assert a != wheelhouse.stamp("lock", "", ["3.13", "3.13-musl"])
