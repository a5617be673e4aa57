"""Drift without a daemon: probe parsing, version order, diffs, thresholds, the append-only history,
exit codes, the published history, and the registry client against a fake registry on loopback."""

from __future__ import annotations

import hashlib
import json
import threading
import time
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from harness import drift
from harness.errors import ExitStatus, HarnessError, UsageError
from harness.registry_client import (
    MT_DOCKER_MANIFEST,
    MT_OCI_INDEX,
    RegistryClient,
    RegistryError,
    is_loopback,
    parse_ref,
)

# --------------------------------------------------------------------------- helpers


def obs(
    digest="sha256:" + "a" * 64,
    *,
    packages=None,
    compressed=1000,
    uncompressed=3000,
    layers=None,
    python="3.13.5",
    image="127.0.0.1:5000/imagebench-lab/python:3.13-slim-trixie",
    at="2026-11-01T00:00:00Z",
) -> dict:
    layers = layers if layers is not None else ["sha256:" + "1" * 64]
    return {
        "schema": drift.SCHEMA,
        "schema_version": drift.SCHEMA_VERSION,
        "image": image,
        "digest": digest,
        "index_digest": None,
        "image_id": "sha256:" + digest[-64:][::-1],
        "compressed_bytes": compressed,
        "uncompressed_bytes": uncompressed,
        "layers": len(layers),
        "layer_digests": layers,
        "layer_sizes": [compressed],
        "package_manager": "dpkg",
        "packages": dict(
            packages if packages is not None else {"libc6": "2.41-12", "zlib1g": "1:1.3.dfsg-3"}
        ),
        "python_version": python,
        "observed_at": at,
        "source": "registry",
        "errors": [],
    }


class FakeObserver:
    """observe_fn for drift(): returns queued observations per image, or raises."""

    def __init__(self, plan: dict[str, list]):
        self.plan = {k: list(v) for k, v in plan.items()}

    def __call__(self, image):
        item = self.plan[image].pop(0)
        if isinstance(item, Exception):
            raise item
        return item


# --------------------------------------------------------------------------- probe output


def test_parse_probe_dpkg_keeps_installed_packages_only():
    """parse_probe reads dpkg output keeping only installed (ii) packages, plus the Python version."""
    out = (
        "@@pm dpkg\n"
        "ii \tlibc6\t2.41-12\n"
        "rc \told-conf\t1.0-1\n"
        "ii \tpython3.13\t3.13.5-2\n"
        "@@python\n3.13.5\n@@end\n"
    )
    pm, packages, python = drift.parse_probe(out)
    assert pm == "dpkg"
    assert packages == {"libc6": "2.41-12", "python3.13": "3.13.5-2"}
    assert python == "3.13.5"


def test_parse_probe_apk_database_and_no_python():
    """parse_probe reads an apk database; no Python line gives None."""
    out = "@@pm apk\nP:musl\nV:1.2.5-r0\nP:busybox\nV:1.36.1-r29\n@@python\n@@end\n"
    assert drift.parse_probe(out) == ("apk", {"musl": "1.2.5-r0", "busybox": "1.36.1-r29"}, None)


def test_parse_probe_without_package_manager():
    """parse_probe on an image without a package manager gives no packages but the Python version."""
    assert drift.parse_probe("@@pm none\n@@python\n3.12.1\n@@end\n") == (None, None, "3.12.1")


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("1.0", "1.0~rc1", 1),
        ("1.0", "1.0.1", -1),
        ("1:0.1", "2.0", 1),
        ("2.36-9+deb12u4", "2.36-9+deb12u10", -1),
        ("3.0.15-r0", "3.0.15-r1", -1),
        ("1.2.3", "1.2.3", 0),
        ("1.0-1", "1.0-1~bpo1", 1),
        ("10", "9", 1),
        ("1.0+dfsg", "1.0", 1),
        ("1.0~~", "1.0~", -1),
        ("1.0-0", "1.0", 0),
    ],
)
def test_compare_versions_follows_dpkg(a, b, expected):
    """compare_versions orders versions as dpkg does (epochs, tildes, revisions), antisymmetrically."""
    assert drift.compare_versions(a, b) == expected
    assert drift.compare_versions(b, a) == -expected


# --------------------------------------------------------------------------- diff and thresholds


def test_diff_lists_packages_added_removed_upgraded_downgraded():
    """diff lists packages added, removed, upgraded and downgraded, and a changed digest."""
    before = obs(packages={"libc6": "2.41-11", "zlib1g": "1:1.3-1", "curl": "8.14-1", "tzdata": "2025b-4"})
    after = obs(
        "sha256:" + "b" * 64,
        compressed=1500,
        uncompressed=2500,
        python="3.13.7",
        packages={"libc6": "2.41-12", "zlib1g": "1:1.3-1", "tzdata": "2025a-1", "libffi8": "3.4.8-2"},
        layers=["sha256:" + "1" * 64, "sha256:" + "2" * 64],
    )
    d = drift.diff(before, after)
    assert d["digest_changed"] is True
    assert d["packages"]["added"] == {"libffi8": "3.4.8-2"}
    assert d["packages"]["removed"] == {"curl": "8.14-1"}
    assert d["packages"]["upgraded"] == {"libc6": {"before": "2.41-11", "after": "2.41-12"}}
    assert d["packages"]["downgraded"] == {"tzdata": {"before": "2025b-4", "after": "2025a-1"}}
    assert d["packages"]["changed"] == 4
    assert d["compressed_bytes"] == {"before": 1000, "after": 1500, "delta": 500, "pct": 50.0}
    assert d["uncompressed_bytes"]["delta"] == -500
    assert d["layers"]["delta"] == 1 and d["layers"]["added"] == ["sha256:" + "2" * 64]
    assert d["python_version"]["changed"] is True
    reasons = drift.judge(d)
    assert any(r.startswith("packages: 1 added, 1 removed, 1 upgraded, 1 downgraded") for r in reasons)
    assert any(r.startswith("layers 1 -> 2") for r in reasons)
    assert "python 3.13.5 -> 3.13.7" in reasons


def test_diff_of_identical_observations_is_empty():
    """Two identical observations diff to nothing and judge to no findings."""
    d = drift.diff(obs(), obs(at="2026-11-02T00:00:00Z"))
    assert not d["digest_changed"]
    assert d["packages"]["changed"] == 0
    assert drift.judge(d) == []


def test_package_diff_is_none_when_a_side_has_no_list():
    """The package diff is None when one observation has no package list."""
    published = obs(packages={})
    published["packages"] = None
    assert drift.diff(published, obs())["packages"] is None


def test_byte_thresholds_absolute_and_percent():
    """judge flags size changes over the absolute or percent threshold; a new digest only on request."""
    a, b = obs(compressed=100_000, uncompressed=300_000), obs(compressed=100_500, uncompressed=300_000)
    d = drift.diff(a, b)
    assert drift.judge(d, drift.Thresholds(compressed_bytes=500)) == []
    assert drift.judge(d, drift.Thresholds(compressed_bytes=499))  # 1 byte over the threshold
    # both an absolute floor and a percentage: 0.5 % is within 1 %
    assert drift.judge(d, drift.Thresholds(compressed_bytes=0, pct=1.0)) == []
    assert drift.judge(d, drift.Thresholds(compressed_bytes=0, pct=0.4))
    # a rebuild that changed only the digest is reported, flagged only on request
    same = drift.diff(obs(), obs("sha256:" + "c" * 64))
    assert drift.judge(same) == []
    assert drift.judge(same, drift.Thresholds(digest=True)) == ["new digest"]
    with pytest.raises(UsageError):
        drift.Thresholds(layers=-1)


# --------------------------------------------------------------------------- the history file


def test_append_is_line_per_observation_and_corrupt_lines_are_skipped(tmp_path):
    """Observations append one JSON line each; corrupt lines are skipped with a warning."""
    path = tmp_path / "drift" / "x.jsonl"
    drift.append_observation(path, obs(at="2026-11-01T00:00:00Z"))
    with open(path, "a") as fh:
        fh.write('{"schema": "imagebench.drift", "observed_at": "2026-11-0')  # a write cut short
    drift.append_observation(path, obs(at="2026-11-03T00:00:00Z"))
    with open(path, "a") as fh:
        fh.write("not json at all\n")
    lines = path.read_text().splitlines()
    assert len(lines) == 4
    with pytest.warns(UserWarning, match="skipped corrupt observation"):
        got = drift.read_observations(path)
    assert [o["observed_at"] for o in got] == ["2026-11-01T00:00:00Z", "2026-11-03T00:00:00Z"]
    skipped = []
    assert len(drift.read_observations(path, on_skip=skipped.append)) == 2
    assert len(skipped) == 2 and ":2:" in skipped[0]


def test_history_path_slug():
    """history_path turns an image reference into a file-safe slug under drift/ (docker.io/library dropped)."""
    p = drift.history_path(Path("/r"), "127.0.0.1:5000/imagebench-lab/python:3.13-slim-trixie")
    assert p == Path("/r/drift/127.0.0.1_5000_imagebench-lab_python_3.13-slim-trixie.jsonl")
    assert (
        drift.history_path(Path("/r"), "docker.io/library/python:3.12-slim").name == "python_3.12-slim.jsonl"
    )


# --------------------------------------------------------------------------- drift() and exit codes

LAB = "127.0.0.1:5000/imagebench-lab/python:3.13-slim-trixie"


def test_drift_first_then_change_then_nothing(tmp_path):
    """drift records a first observation, then reports a change as DRIFTED with exit 1."""
    changed = obs("sha256:" + "d" * 64, packages={"libc6": "2.41-12"}, at="2026-11-02T00:00:00Z")
    fake = FakeObserver({LAB: [obs(), changed, dict(changed, observed_at="2026-11-03T00:00:00Z")]})

    first = drift.drift([LAB], tmp_path, observe_fn=fake)
    assert first.exit_code == ExitStatus.OK and first.images[0].status == "first"

    second = drift.drift([LAB], tmp_path, observe_fn=fake)
    assert second.exit_code == ExitStatus.FAILURE == 1
    entry = second.images[0]
    assert entry.status == "drifted"
    assert entry.diff["packages"]["removed"] == {"zlib1g": "1:1.3.dfsg-3"}
    text = drift.render_text(second)
    assert "DRIFTED" in text and "- zlib1g 1:1.3.dfsg-3" in text and "(exit 1)" in text

    third = drift.drift([LAB], tmp_path, observe_fn=fake)
    assert third.exit_code == 0 and third.images[0].status == "unchanged"
    assert len(drift.load_observations(tmp_path, LAB)) == 3


def test_drift_error_is_one_line_per_image_and_others_continue(tmp_path):
    """An image that cannot be observed is one ERROR line (exit 3) and the other images still run."""
    fake = FakeObserver(
        {
            "python:3.13-slim": [
                RegistryError("python:3.13-slim: cannot reach registry-1.docker.io: no route")
            ],
            LAB: [obs()],
        }
    )
    report = drift.drift(["python:3.13-slim", LAB], tmp_path, observe_fn=fake)
    assert [i.status for i in report.images] == ["error", "first"]
    assert report.exit_code == ExitStatus.ENVIRONMENT == 3
    text = drift.render_text(report)
    assert "ERROR    python:3.13-slim: cannot reach registry-1.docker.io: no route" in text
    assert not drift.history_path(tmp_path, "python:3.13-slim").exists()
    # drift found wins over an environment problem
    fake = FakeObserver(
        {
            "python:3.13-slim": [RegistryError("python:3.13-slim: down")],
            LAB: [obs("sha256:" + "e" * 64, compressed=5000)],
        }
    )
    assert drift.drift(["python:3.13-slim", LAB], tmp_path, observe_fn=fake).exit_code == 1


def test_partial_observation_keeps_comparing_packages_with_the_last_full_one(tmp_path):
    """After a partial observation (exit 3) packages are compared with the last full one."""
    partial = obs(at="2026-11-02T00:00:00Z")
    partial.update(packages=None, uncompressed_bytes=None, errors=["engine: down"])
    later = obs(packages={"libc6": "2.41-13", "zlib1g": "1:1.3.dfsg-3"}, at="2026-11-03T00:00:00Z")
    fake = FakeObserver({LAB: [obs(), partial, later]})
    drift.drift([LAB], tmp_path, observe_fn=fake)
    assert drift.drift([LAB], tmp_path, observe_fn=fake).exit_code == 3  # partial: environment
    report = drift.drift([LAB], tmp_path, observe_fn=fake)
    assert report.images[0].diff["packages"]["upgraded"] == {
        "libc6": {"before": "2.41-12", "after": "2.41-13"}
    }


def test_run_drift_json_and_text(tmp_path, monkeypatch):
    """run_drift --json gives the exit code, statuses and the observation."""
    fake = FakeObserver({LAB: [obs()]})
    monkeypatch.setattr(drift.track, "observe", lambda image, **_kw: fake(image))  # what drift() calls
    code, text = drift.run_drift([LAB], tmp_path, json_out=True)
    data = json.loads(text)
    assert code == 0 and data["exit_code"] == 0 and data["images"][0]["status"] == "first"
    assert data["images"][0]["observation"]["packages"]["libc6"] == "2.41-12"


def test_default_images_from_environment(monkeypatch):
    """IMAGEBENCH_DRIFT_IMAGES gives the default image list (comma separated)."""
    monkeypatch.setenv("IMAGEBENCH_DRIFT_IMAGES", "python:3.13-slim, 127.0.0.1:5000/a/b:1")
    assert drift.default_images() == (["python:3.13-slim", "127.0.0.1:5000/a/b:1"], [])


# --------------------------------------------------------------------------- published history


def test_published_history_gives_sizes_over_time():
    """The shipped published history gives ordered sizes over time for slim, alpine and full python:3.12."""
    published = drift.load_published()
    images = {o["image"] for o in published}
    assert {"python:3.12-slim", "python:3.12-alpine", "python:3.12"} <= images
    assert all(o["source"] == "published" and o["packages"] is None for o in published)
    ranges = {
        "python:3.12-slim": (43_188_023, 46_175_163),
        "python:3.12-alpine": (18_022_162, 20_601_472),
        "python:3.12": (410_806_025, 410_944_833),
    }
    for image, (low, high) in ranges.items():
        df = drift.history(image, published=published)
        assert len(df) >= 2, image
        assert df["observed_at"].is_monotonic_increasing
        assert df["observed_at"].nunique() >= 2 and df["compressed_bytes"].nunique() >= 2
        assert df["compressed_bytes"].min() == low and df["compressed_bytes"].max() == high
        assert df["digest_changed"].sum() >= 1
        first = next(o for o in published if o["image"] == image)
        assert sum(first["layer_sizes"]) == first["compressed_bytes"]  # layers add up
        assert len(first["layer_digests"]) == first["layers"]


def test_history_merges_published_and_recorded(tmp_path):
    """history merges published snapshots with recorded observations; a published one diffs by size only."""
    published = drift.load_published()
    mine = obs(image="python:3.12-slim", at="2027-01-01T00:00:00Z", compressed=47_000_000)
    drift.append_observation(drift.history_path(tmp_path, "docker.io/library/python:3.12-slim"), mine)
    df = drift.history("python:3.12-slim", tmp_path, published=published)
    assert list(df["source"].unique()) == ["published", "registry"]
    assert df.iloc[-1]["compressed_bytes"] == 47_000_000 and df.iloc[-1]["packages"] == 2
    # a published snapshot diffed against a later observation: no package comparison, but sizes
    d = drift.diff(next(o for o in reversed(published) if o["image"] == "python:3.12-slim"), mine)
    assert d["packages"] is None and d["compressed_bytes"]["delta"] > 0


# --------------------------------------------------------------------------- registry client


def test_parse_ref_normalises_like_docker():
    """parse_ref normalises references as docker does (docker.io/library, :latest, registry with port)."""
    assert str(parse_ref("python")) == "docker.io/library/python:latest"
    r = parse_ref("python:3.13-slim")
    assert (r.registry, r.repository, r.tag, r.api_host) == (
        "docker.io",
        "library/python",
        "3.13-slim",
        "registry-1.docker.io",
    )
    r = parse_ref("127.0.0.1:5000/imagebench-lab/python:3.13-slim-trixie")
    assert (r.registry, r.repository, r.tag) == (
        "127.0.0.1:5000",
        "imagebench-lab/python",
        "3.13-slim-trixie",
    )
    assert parse_ref("localhost:5000/x@sha256:" + "f" * 64).reference == "sha256:" + "f" * 64
    assert parse_ref("docker.io/library/python:3").familiar() == "python:3"
    with pytest.raises(UsageError):
        parse_ref("UPPER/case")
    with pytest.raises(UsageError):
        parse_ref("python:bad tag")
    assert is_loopback("127.0.0.1:5000") and is_loopback("localhost") and is_loopback("[::1]:5000")
    assert not is_loopback("registry-1.docker.io") and not is_loopback("10.0.0.1:5000")


class FakeRegistry:
    """A registry on loopback that wants a bearer token and serves an OCI index -> amd64 manifest."""

    def __init__(self):
        self.config = json.dumps(
            {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}}
        ).encode()
        self.config_digest = "sha256:" + hashlib.sha256(self.config).hexdigest()
        self.manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": MT_DOCKER_MANIFEST,
                "config": {
                    "mediaType": "application/vnd.docker.container.image.v1+json",
                    "size": len(self.config),
                    "digest": self.config_digest,
                },
                "layers": [
                    {"mediaType": "x", "size": 29_792_658, "digest": "sha256:" + "1" * 64},
                    {"mediaType": "x", "size": 12_100_000, "digest": "sha256:" + "2" * 64},
                ],
            }
        ).encode()
        self.manifest_digest = "sha256:" + hashlib.sha256(self.manifest).hexdigest()
        self.index = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": MT_OCI_INDEX,
                "manifests": [
                    {"digest": "sha256:" + "9" * 64, "platform": {"os": "linux", "architecture": "arm64"}},
                    {
                        "digest": "sha256:" + "8" * 64,
                        "platform": {"os": "unknown", "architecture": "unknown"},
                        "annotations": {"vnd.docker.reference.type": "attestation-manifest"},
                    },
                    {"digest": self.manifest_digest, "platform": {"os": "linux", "architecture": "amd64"}},
                ],
            }
        ).encode()
        self.index_digest = "sha256:" + hashlib.sha256(self.index).hexdigest()
        self.requests: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                fake.requests.append(self.path)
                host = f"127.0.0.1:{self.server.server_address[1]}"
                if self.path.startswith("/token"):
                    return self._send(200, json.dumps({"token": "t0k"}).encode(), "application/json")
                if self.headers.get("Authorization") != "Bearer t0k":
                    self.send_response(401)
                    self.send_header(
                        "WWW-Authenticate",
                        f'Bearer realm="http://{host}/token",'
                        f'service="fake",scope="repository:library/python:pull"',
                    )
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                if self.path == "/v2/library/python/manifests/3.13-slim":
                    return self._send(200, fake.index, MT_OCI_INDEX)
                if self.path == f"/v2/library/python/manifests/{fake.manifest_digest}":
                    return self._send(200, fake.manifest, MT_DOCKER_MANIFEST)
                if self.path == f"/v2/library/python/blobs/{fake.config_digest}":
                    return self._send(200, fake.config, "application/octet-stream")
                return self._send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}', "application/json")

            def _send(self, code, body, ctype):
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_registry():
    reg = FakeRegistry()
    yield reg
    reg.close()


def test_registry_resolves_index_to_amd64_with_anonymous_token(fake_registry):
    """RegistryClient resolves an index to the amd64 manifest with an anonymous token; unknown tags fail."""
    client = RegistryClient(timeout=5)
    ref = f"{fake_registry.host}/library/python:3.13-slim"
    info = client.resolve(ref)
    assert info.index_digest == fake_registry.index_digest
    assert info.digest == fake_registry.manifest_digest
    assert info.config_digest == fake_registry.config_digest
    assert info.compressed_bytes == 29_792_658 + 12_100_000 and len(info.layers) == 2
    assert any(p.startswith("/token?") and "scope=repository" in p for p in fake_registry.requests)
    assert client.config(ref, info)["architecture"] == "amd64"
    with pytest.raises(RegistryError, match=r"not found on 127\.0\.0\.1:\d+"):
        client.resolve(f"{fake_registry.host}/library/python:nope")


def test_observe_without_engine_uses_registry_facts(fake_registry):
    """observe without an engine records the registry's digest, compressed size and layers, no packages."""
    o = drift.observe(
        f"{fake_registry.host}/library/python:3.13-slim", registry=RegistryClient(timeout=5), inspect=False
    )
    assert o["digest"] == fake_registry.manifest_digest and o["compressed_bytes"] == 41_892_658
    assert o["layers"] == 2 and o["packages"] is None and o["source"] == "registry"


def test_registry_errors_are_one_line_harness_errors():
    """An unreachable registry is a one-line RegistryError (a HarnessError with exit 3)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        with pytest.raises(RegistryError) as exc:
            RegistryClient(timeout=2).resolve("127.0.0.1:1/x/y:1")
    assert isinstance(exc.value, HarnessError) and exc.value.exit_status == ExitStatus.ENVIRONMENT
    assert "\n" not in str(exc.value) and str(exc.value).startswith(
        "127.0.0.1:1/x/y:1: cannot reach 127.0.0.1:1"
    )


def test_registry_timeout_is_reported():
    """A registry that never answers times out with the timeout named; the next image fails at once."""
    import socket

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)  # accepts the connection, never answers
    client = RegistryClient(timeout=0.5)
    try:
        with pytest.raises(RegistryError, match=r"did not answer in 0\.5 s"):
            client.resolve(f"127.0.0.1:{srv.getsockname()[1]}/x/y:1")
        # the next image on the same registry fails at once with the same reason
        t0 = time.monotonic()
        with pytest.raises(
            RegistryError, match=r"^127\.0\.0\.1:\d+/x/z:2: 127\.0\.0\.1:\d+ did not answer in 0\.5 s"
        ):
            client.resolve(f"127.0.0.1:{srv.getsockname()[1]}/x/z:2")
        assert time.monotonic() - t0 < 0.4
    finally:
        srv.close()


def test_history_plots_as_size_over_time():
    """Published history frames carry tag and flavour and plot as size over time."""
    pd = pytest.importorskip("pandas")
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from harness.report import plots

    published = drift.load_published()
    frames = [
        drift.history(i, published=published)
        for i in ("python:3.12-slim", "python:3.12-alpine", "python:3.12")
    ]
    assert [f["tag"].iloc[0] for f in frames] == ["3.12-slim", "3.12-alpine", "3.12"]
    assert [f["flavour"].iloc[0] for f in frames] == ["slim", "alpine", "full"]
    fig = plots.published_history(pd.concat(frames, ignore_index=True))
    (ax,) = fig.axes
    assert sorted(line.get_label() for line in ax.get_lines()) == [
        "python:3.12",
        "python:3.12-alpine",
        "python:3.12-slim",
    ]
    assert all(len(line.get_xdata()) >= 2 for line in ax.get_lines())


def test_run_history_text_and_json(tmp_path):
    """run_history prints versions as text or JSON rows; an unknown image is a usage error."""
    code, text = drift.run_history("python:3.12-slim", tmp_path)
    assert code == 0 and text.startswith("python:3.12-slim: 4 version(s)") and "published" in text
    code, text = drift.run_history("python:3.12", None, json_out=True)
    rows = json.loads(text)
    assert code == 0 and rows[0]["compressed_bytes"] == 410_806_025 and rows[0]["uncompressed_bytes"] is None
    with pytest.raises(UsageError, match="no history of nope:1"):
        drift.run_history("nope:1", tmp_path)


# --------------------------------------------------------------------------- offline observation (issue 14)


def test_parse_pip_section_lists_distributions_with_versions():
    """The probe's @@pip section becomes {name: version}; no section or no Python gives None."""
    text = "@@pm dpkg\nii\tlibc6\t2.41-12\n@@python\n3.13.5\n@@pip\nflask\t3.1.0\npip\t25.1\n@@end\n"
    assert drift.parse_pip(text) == {"flask": "3.1.0", "pip": "25.1"}
    assert drift.parse_pip("@@pm dpkg\n@@python\n@@pip\n@@end\n") is None
    assert drift.parse_pip("@@pm none\n@@python\n@@end\n") is None


def test_diff_names_the_package_that_changed_inside_a_base():
    """A base rebuilt with tzdata upgraded and libfoo added is reported down to those packages."""
    before = obs(packages={"libc6": "2.41-12", "tzdata": "2025b-1"})
    after = obs("sha256:" + "b" * 64, packages={"libc6": "2.41-12", "tzdata": "2025c-1", "libfoo": "1.0-1"})
    before["python_packages"] = {"pip": "25.1"}
    after["python_packages"] = {"pip": "25.1", "wheel": "0.45.1"}
    d = drift.diff(before, after)
    reasons = drift.judge(d)
    assert "tzdata 2025b-1 -> 2025c-1" in reasons[0] and "+libfoo 1.0-1" in reasons[0]
    assert "python packages: +wheel 0.45.1" in reasons
    report = drift.DriftReport(
        images=[drift.ImageDrift(image="x", status="drifted", observation=after, previous=before, diff=d)],
        thresholds=drift.Thresholds(),
    )
    text = drift.render_text(report)
    assert (
        "^ tzdata 2025b-1 -> 2025c-1" in text
        and "+ libfoo 1.0-1" in text
        and "+ wheel 0.45.1 (python)" in text
    )


def test_engine_and_registry_observations_compare_by_image_id():
    """An engine observation (digest = image id) against a registry one compares image ids, not digests."""
    reg = obs()
    eng = dict(obs(), source="engine", digest=reg["image_id"], compressed_bytes=None)
    assert drift.diff(reg, eng)["digest_changed"] is False
    text = drift.render_text(
        drift.DriftReport(
            images=[drift.ImageDrift(image="x", status="first", observation=eng)],
            thresholds=drift.Thresholds(),
        )
    )
    assert "on disk" in text and "compressed" not in text


def test_parse_probe_without_python_does_not_read_the_pip_marker_as_a_version():
    """An image without Python reports python_version None even though a @@pip section follows."""
    assert drift.parse_probe("@@pm dpkg\nii\tlibc6\t2.41\n@@python\n@@pip\n@@end\n") == (
        "dpkg",
        {"libc6": "2.41"},
        None,
    )
