"""Wheel availability for musl vs glibc: a pure function over simple-index file names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.lab import wheelcheck as wc

FIXTURE = Path(__file__).parents[1] / "fixtures" / "wheelcheck" / "listings.json"


@pytest.mark.parametrize(
    ("filename", "libc", "fits"),
    [
        ("numpy-2.5.5-cp313-cp313-musllinux_1_2_x86_64.whl", "musl", True),
        ("numpy-2.5.5-cp313-cp313-musllinux_1_2_x86_64.whl", "glibc", False),
        ("numpy-2.5.5-cp313-cp313-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl", "glibc", True),
        ("numpy-2.5.5-cp313-cp313-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl", "musl", False),
        ("numpy-2.5.5-cp312-cp312-musllinux_1_2_x86_64.whl", "musl", False),
        ("numpy-2.5.5-cp313-cp313-musllinux_1_2_aarch64.whl", "musl", False),
        ("cryptography-50.0.2-cp311-abi3-musllinux_1_2_x86_64.whl", "musl", True),
        ("cryptography-50.0.2-cp314-abi3-musllinux_1_2_x86_64.whl", "musl", False),
        ("flask-3.1.3-py3-none-any.whl", "musl", True),
        ("flask-3.1.3-py3-none-any.whl", "glibc", True),
        ("not-a-wheel.tar.gz", "musl", False),
    ],
)
def test_wheel_fits(filename, libc, fits):
    """A wheel fits CPython 3.13 x86_64 only with its libc's platform tag and a matching ABI."""
    assert wc.wheel_fits(filename, "3.13", libc) is fits


def test_classify_judges_the_newest_stable_release():
    """The newest non-yanked stable version decides; pre-releases and yanked files are ignored."""
    files = [
        {"filename": "pkg-1.0-cp313-cp313-musllinux_1_2_x86_64.whl"},
        {"filename": "pkg-1.0-cp313-cp313-manylinux_2_17_x86_64.whl"},
        {"filename": "pkg-1.1-cp313-cp313-manylinux_2_17_x86_64.whl"},
        {"filename": "pkg-1.1.tar.gz"},
        {"filename": "pkg-1.2-cp313-cp313-musllinux_1_2_x86_64.whl", "yanked": True},
        {"filename": "pkg-2.0rc1-cp313-cp313-musllinux_1_2_x86_64.whl"},
    ]
    row = wc.classify("pkg", files, "3.13")
    assert row["version"] == "1.1"
    assert row["manylinux"] and not row["musllinux"] and row["sdist"] and not row["pure"]


def test_classify_sdist_only_has_neither():
    """A project that ships only an sdist (psycopg2) has no wheel for either libc."""
    row = wc.classify("psycopg2", [{"filename": "psycopg2-2.9.13.tar.gz"}], "3.13")
    assert row["version"] == "2.9.13" and not row["manylinux"] and not row["musllinux"]


def test_summarize_counts_compiled_packages_only():
    """Pure-Python packages fit every libc and stay out of the fractions."""
    rows = [
        {"project": "a", "version": "1", "pure": True, "manylinux": True, "musllinux": True},
        {"project": "b", "version": "1", "pure": False, "manylinux": True, "musllinux": False},
        {"project": "c", "version": "1", "pure": False, "manylinux": True, "musllinux": True},
        {"project": "d", "version": "1", "pure": False, "manylinux": False, "musllinux": False},
        {"project": "e", "version": None, "error": "listing failed"},
    ]
    s = wc.summarize(rows)
    assert s["compiled_packages"] == 3
    assert (s["with_manylinux"], s["with_musllinux"]) == (2, 1)
    assert s["manylinux_only"] == ["b"] and s["neither"] == ["d"]
    assert s["musllinux_fraction"] == pytest.approx(0.333)


def test_recorded_fixture_finding():
    """On the recorded PyPI listings (2026-11-29) musllinux coverage trails manylinux for cp313."""
    listings = json.loads(FIXTURE.read_text())
    out, _ = wc.run("3.13", list(dict.fromkeys(wc.EXPERIMENT_PACKAGES + wc.POPULAR_COMPILED)), listings, "x")
    pop = out["popular_compiled"]
    assert pop["compiled_packages"] == 28
    assert (pop["with_manylinux"], pop["with_musllinux"]) == (26, 24)
    assert pop["manylinux_only"] == ["scikit-learn", "torch"]
    assert pop["neither"] == ["mysqlclient", "psycopg2"]
    assert out["experiment_packages"]["musllinux_fraction"] == 1.0


def test_trim_keeps_newest_stable_versions():
    """A recorded fixture keeps the newest stable versions and any newer pre-release."""
    files = [{"filename": f"p-{v}.tar.gz"} for v in ("1.0", "1.1", "1.2", "1.3", "2.0rc1")]
    kept = {f["filename"] for f in wc.trim(files, keep=2)}
    assert kept == {"p-1.2.tar.gz", "p-1.3.tar.gz", "p-2.0rc1.tar.gz"}


def test_cli_bad_try_build_is_one_line_error(capsys):
    """--try-build without IMAGE=PACKAGE fails with one line and exit 2."""
    rc = wc.main(["--listings", str(FIXTURE), "--try-build", "nopackage"])
    assert rc == 2
    assert capsys.readouterr().err.strip().startswith("error: --try-build wants IMAGE=PACKAGE")
