"""`pip install -e .` prints no setuptools deprecation: the licence is an SPDX string."""

from __future__ import annotations

import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent.parent / "pyproject.toml"


def test_license_is_an_spdx_string() -> None:
    """`project.license` is a plain SPDX string (the TOML table form is deprecated in setuptools)."""
    data = tomllib.loads(PYPROJECT.read_text())
    assert isinstance(data["project"]["license"], str)
    assert data["project"]["license"] == "MIT"


def test_build_requires_a_setuptools_that_reads_spdx() -> None:
    """The build needs setuptools >= 77, the first release that accepts an SPDX licence string."""
    requires = tomllib.loads(PYPROJECT.read_text())["build-system"]["requires"]
    assert "setuptools>=77" in requires
