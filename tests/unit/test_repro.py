"""Reproducible-build options and the own-layer re-pack, without a daemon."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from harness.engine.buildx import BuildSpec, build_command
from harness.engine.inspect import split_compressed
from harness.engine.repro import DEFAULT_EPOCH, clamp_layer, pyc_source, support


def _layer(mtime: float, *, xattr: bool = True) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:", format=tarfile.PAX_FORMAT) as tar:
        d = tarfile.TarInfo("app")
        d.type, d.mode, d.mtime = tarfile.DIRTYPE, 0o755, mtime
        tar.addfile(d)
        f = tarfile.TarInfo("app/blob")
        f.size, f.mode, f.mtime, f.uid = 5, 0o640, mtime, 1000
        f.pax_headers = {"atime": str(mtime), "ctime": str(mtime)}
        if xattr:
            f.pax_headers["SCHILY.xattr.security.capability"] = "x"
        tar.addfile(f, io.BytesIO(b"hello"))
        w = tarfile.TarInfo("etc/.wh.old")
        w.mtime = mtime
        tar.addfile(w, io.BytesIO(b""))
    return out.getvalue()


def test_clamped_layers_of_two_builds_are_byte_identical():
    """Two layers that differ only in build-time mtimes re-pack to the same bytes."""
    a = clamp_layer(_layer(1_800_000_000.123), DEFAULT_EPOCH)
    b = clamp_layer(_layer(1_900_000_000.5), DEFAULT_EPOCH)
    assert a == b
    assert clamp_layer(_layer(1_800_000_000.123), DEFAULT_EPOCH) == a  # deterministic


def test_clamp_keeps_content_owner_mode_xattrs_and_older_mtimes():
    """Only mtimes after the epoch move; everything else survives, atime/ctime are dropped."""
    data = clamp_layer(_layer(1_000_000_000), DEFAULT_EPOCH)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar}
        blob = members["app/blob"]
        assert tar.extractfile(blob).read() == b"hello"
        assert (blob.mode, blob.uid, blob.mtime) == (0o640, 1000, 1_000_000_000)
        assert blob.pax_headers.get("SCHILY.xattr.security.capability") == "x"
        assert "atime" not in blob.pax_headers and "ctime" not in blob.pax_headers
        assert "etc/.wh.old" in members  # whiteouts stay
    with_xattr = clamp_layer(_layer(1_000_000_000), DEFAULT_EPOCH)
    assert with_xattr != clamp_layer(_layer(1_000_000_000, xattr=False), DEFAULT_EPOCH)


def _pyc(recorded: int, flags: int = 0) -> bytes:
    """A .pyc body: magic, flags, recorded source mtime (or hash), source size, then marshalled code."""
    return (
        b"\xf3\r\r\n"
        + flags.to_bytes(4, "little")
        + recorded.to_bytes(4, "little")
        + (7).to_bytes(4, "little")
        + b"code"
    )


def _pip_layer(installed_at: int, base_source_mtime: int) -> bytes:
    """What `pip install` leaves: a source and its .pyc recording the source's install-time mtime,
    a hash-based .pyc, and pip's own .pyc whose source lives in the base (not in this layer)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:", format=tarfile.PAX_FORMAT) as tar:
        files = {
            "site-packages/pkg/mod.py": b"x = 1\n",
            "site-packages/pkg/__pycache__/mod.cpython-313.pyc": _pyc(installed_at),
            "site-packages/pkg/__pycache__/mod.cpython-313.opt-1.pyc": _pyc(installed_at),
            "site-packages/pkg/__pycache__/hashed.cpython-313.pyc": _pyc(0x12345678, flags=3),  # source hash
            "site-packages/pkg/hashed.py": b"y = 2\n",
            "site-packages/pip/__pycache__/__init__.cpython-313.pyc": _pyc(base_source_mtime),
        }
        for name, body in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(body), installed_at
            tar.addfile(info, io.BytesIO(body))
    return out.getvalue()


def _bodies(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isreg()}


def test_pyc_headers_of_two_pip_installs_clamp_to_the_same_bytes():
    """pip's .pyc record their source's install-time mtime: clamped with it, so two installs are
    byte-identical and each .pyc still matches its (clamped) source."""
    a = clamp_layer(_pip_layer(1_800_000_000, 1_790_000_000), DEFAULT_EPOCH)
    b = clamp_layer(_pip_layer(1_800_000_321, 1_790_000_000), DEFAULT_EPOCH)
    assert a == b
    bodies = _bodies(a)
    for name in ("mod.cpython-313.pyc", "mod.cpython-313.opt-1.pyc"):
        assert bodies[f"site-packages/pkg/__pycache__/{name}"][8:12] == DEFAULT_EPOCH.to_bytes(4, "little")
    # a hash-based .pyc has no mtime; a .pyc of a source in a lower layer keeps that source's mtime
    assert bodies["site-packages/pkg/__pycache__/hashed.cpython-313.pyc"] == _pyc(0x12345678, flags=3)
    assert bodies["site-packages/pip/__pycache__/__init__.cpython-313.pyc"] == _pyc(1_790_000_000)


def test_pyc_source_paths():
    """PEP 3147 and legacy .pyc paths map to their sources."""
    assert pyc_source("a/b/__pycache__/m.cpython-313.pyc") == "a/b/m.py"
    assert pyc_source("a/__pycache__/m.cpython-313.opt-2.pyc") == "a/m.py"
    assert pyc_source("__pycache__/m.cpython-313.pyc") == "m.py"
    assert pyc_source("a/m.pyc") == "a/m.py"


def test_support_records_what_the_builder_honours():
    """The docker driver ignores rewrite-timestamp; BuildKit >= 0.11 honours SOURCE_DATE_EPOCH."""
    docker = support("docker", "v0.13.x")
    assert docker["source_date_epoch_supported"] and docker["rewrite_timestamp_option"]
    assert not docker["rewrite_timestamp_honoured"] and "4986" in docker["why"]
    assert support("docker-container", "v0.13.2")["rewrite_timestamp_honoured"]
    old = support("docker", "v0.10.6")
    assert not old["source_date_epoch_supported"] and old["source_date_epoch"] is None


def test_build_command_pins_source_date_epoch_unless_the_experiment_sets_it(tmp_path: Path):
    """SOURCE_DATE_EPOCH is added as a build arg; an experiment's own value wins; rewrite only off-driver."""
    spec = BuildSpec(context=tmp_path, dockerfile=tmp_path / "Dockerfile", source_date_epoch=DEFAULT_EPOCH)
    cmd = build_command(spec, tmp_path / "m", tmp_path / "i")
    assert f"SOURCE_DATE_EPOCH={DEFAULT_EPOCH}" in cmd and "--output" not in cmd
    own = spec.with_overrides(build_args={"SOURCE_DATE_EPOCH": "5"})
    assert "SOURCE_DATE_EPOCH=5" in build_command(own, tmp_path / "m", tmp_path / "i")
    other = spec.with_overrides(builder="bk", rewrite_timestamp=True)
    cmd = build_command(other, tmp_path / "m", tmp_path / "i")
    assert cmd[cmd.index("--output") + 1] == "type=docker,rewrite-timestamp=true" and "--load" not in cmd


def test_compressed_bytes_split_at_the_base_layer_count():
    """Registry layer sizes split into base and own parts by the base's layer count."""
    assert split_compressed([400, 150, 50], 1) == {"base_bytes_compressed": 400, "own_bytes_compressed": 200}
    assert split_compressed([400], 1) == {"base_bytes_compressed": 400, "own_bytes_compressed": 0}
    assert split_compressed([400], 2) == {}
