"""The ci scenario's pure parts on generated data: buildx cache flags per strategy, the time split
and bytes read from a rawjson stream, blob-set byte accounting, the engine command line and the
`cache` variant field's validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.ci import accounting, strategy
from harness.ci.engine import containerd_config, engine_command
from harness.engine.events import parse_stream
from harness.errors import SchemaError, UsageError
from harness.experiment import CACHE_STRATEGIES, load_experiment
from harness.probes.tls import dockerd_command

WHERE = strategy.Where(registry="127.0.0.1:5000", repo="imagebench-ci/x-1", local_dir=Path("/tmp/c"))
BASE = "sha256:" + "b" * 64
CACHE_BLOB = "sha256:" + "c" * 64


def ts(seconds: float) -> str:
    """An RFC 3339 timestamp `seconds` after 2026-01-01T00:00:00Z (nanosecond digits, as BuildKit writes)."""
    whole = int(seconds)
    frac = round((seconds - whole) * 1e9)
    return f"2026-01-01T00:{whole // 60:02d}:{whole % 60:02d}.{frac:09d}Z"


def vertex(d: str, name: str, start: float, end: float, cached: bool = False) -> dict:
    v = {"digest": d, "name": name, "started": ts(start), "completed": ts(end)}
    if cached:
        v["cached"] = True
    return v


def stream(*objs: dict) -> str:
    """A rawjson stream as buildx 0.13 writes it (pretty-printed objects, one after another)."""
    return "\n".join(json.dumps(o, indent=2) for o in objs) + "\n"


def ci_stream() -> str:
    """A job: import 0.5 s, a reused deps step (its layer downloaded under its vertex), an executed
    app step (the base downloaded under it), image export+push 1.5 s, cache export 2 s."""
    return stream(
        {"vertexes": [vertex("sha256:imp", "importing cache manifest from r/cache:ci", 0, 0.5)]},
        {
            "vertexes": [
                vertex("sha256:from", "[builder 1/3] FROM docker.io/library/debian@sha256:x", 0.5, 0.6)
            ]
        },
        {"vertexes": [vertex("sha256:copy", "[builder 2/3] COPY deps.txt /deps.txt", 0.6, 0.6, cached=True)]},
        {"vertexes": [vertex("sha256:deps", "[builder 3/3] RUN pip wheel", 0.6, 1.0)]},
        {"statuses": [{"id": CACHE_BLOB, "vertex": "sha256:deps", "total": 700, "current": 700}]},
        {"statuses": [{"id": BASE, "vertex": "sha256:app", "total": 100, "current": 50}]},
        {"statuses": [{"id": BASE, "vertex": "sha256:app", "total": 1000, "current": 1000}]},
        {"statuses": [{"id": "extracting " + BASE, "vertex": "sha256:app"}]},
        {"vertexes": [vertex("sha256:app", "[stage-1 2/2] COPY app.py /app.py", 1.0, 3.0)]},
        {"vertexes": [vertex("sha256:img", "exporting to image", 3.0, 4.0)]},
        {"vertexes": [vertex("sha256:psh", "pushing r/app:ci with docker", 4.0, 4.5)]},
        {"vertexes": [vertex("sha256:exp", "exporting cache to registry", 4.5, 6.5)]},
    )


# -- strategy ----------------------------------------------------------------------------------


def test_cache_flags_per_strategy():
    """Each strategy's --cache-from/--cache-to; the first pipeline run imports nothing."""
    assert strategy.cache_flags("none", WHERE) == []
    assert strategy.cache_flags("inline", WHERE) == [
        "--cache-from",
        "type=registry,ref=127.0.0.1:5000/imagebench-ci/x-1/app:ci",
        "--cache-to",
        "type=inline",
    ]
    for mode in ("min", "max"):
        ref = "127.0.0.1:5000/imagebench-ci/x-1/cache:ci"
        assert strategy.cache_flags(f"registry-{mode}", WHERE) == [
            "--cache-from",
            f"type=registry,ref={ref}",
            "--cache-to",
            f"type=registry,ref={ref},mode={mode}",
        ]
    assert strategy.cache_flags("local", WHERE, import_cache=False) == [
        "--cache-to",
        "type=local,dest=/tmp/c,mode=max",
    ]
    assert strategy.cache_flags("local", WHERE)[:2] == ["--cache-from", "type=local,src=/tmp/c"]
    assert strategy.output_flags(WHERE) == [
        "--output",
        "type=image,name=127.0.0.1:5000/imagebench-ci/x-1/app:ci,push=true",
    ]


def test_cache_locations_and_repos():
    """Where each strategy keeps its cache, and the two repositories a pipeline writes."""
    assert WHERE.repos() == ("imagebench-ci/x-1/app", "imagebench-ci/x-1/cache")
    assert WHERE.cache_location("none") is None
    assert WHERE.cache_location("inline") == WHERE.image_ref
    assert WHERE.cache_location("registry-max") == WHERE.cache_ref
    assert WHERE.cache_location("local") == "/tmp/c"


def test_unknown_strategy_is_one_line_usage_error():
    """An unknown strategy, or local without a directory: one-line UsageError naming the allowed ones."""
    with pytest.raises(UsageError) as exc:
        strategy.cache_flags("gha", WHERE)
    assert "\n" not in str(exc.value) and "'gha'" in str(exc.value) and "registry-max" in str(exc.value)
    with pytest.raises(UsageError, match="cache directory"):
        strategy.cache_flags("local", strategy.Where("r:5000", "x"))


# -- accounting --------------------------------------------------------------------------------


def test_time_split_from_vertices():
    """import, cache export and image push from their vertices; build is the rest of the wall time."""
    events = parse_stream(ci_stream())
    split = accounting.time_split(events, 8.0)
    assert split["import"] == pytest.approx(0.5)
    assert split["export"] == pytest.approx(2.0)
    assert split["push"] == pytest.approx(1.5)
    assert split["build"] == pytest.approx(4.0)
    assert accounting.time_split(events, 1.0)["build"] == 0.0  # never negative


def test_downloads_keep_each_blobs_largest_total():
    """A blob's last (largest) total counts once; 'extracting ...' statuses are not downloads."""
    down = accounting.downloads(ci_stream())
    assert down == {CACHE_BLOB: 700, BASE: 1000}
    assert accounting.pulled_bytes(down, [BASE]) == {"base": 1000, "cache": 700, "total": 1700}
    assert accounting.pulled_bytes({}, [BASE]) == {"base": 0, "cache": 0, "total": 0}


def test_downloads_stop_at_plain_text_tail():
    """JSON after buildx's plain-text error tail is not read as a download."""
    text = ci_stream() + "ERROR: failed to solve\n" + json.dumps({"statuses": [{"id": BASE, "total": 9}]})
    assert accounting.downloads(text)[BASE] == 1000


def test_reused_steps_count_loaded_ones_that_buildkit_calls_not_cached():
    """Reported cached, or a non-base blob downloaded under the step: reused. A step under which only
    the base was downloaded ran."""
    text = ci_stream()
    events = parse_stream(text)
    assert accounting.cached_steps(events) == ["[builder 2/3] COPY deps.txt /deps.txt"]
    assert accounting.loading_vertices(text, [BASE]) == {"sha256:deps"}
    assert sorted(accounting.reused_steps(events, text, [BASE])) == [
        "[builder 2/3] COPY deps.txt /deps.txt",
        "[builder 3/3] RUN pip wheel",
    ]


def test_manifest_blobs_index_children_and_cache_index():
    """An image index's manifests are descended into; a BuildKit cache index lists layers as blobs."""
    index = {
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:m1", "size": 400},
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:l1", "size": 5000},
            {"mediaType": "application/vnd.buildkit.cacheconfig.v0", "digest": "sha256:cfg", "size": 300},
        ],
    }
    blobs, children = accounting.manifest_blobs(index, "sha256:idx", 900)
    assert blobs == {"sha256:idx": 900, "sha256:m1": 400, "sha256:l1": 5000, "sha256:cfg": 300}
    assert children == ["sha256:m1"]
    manifest = {
        "config": {"digest": "sha256:c", "size": 10},
        "layers": [{"digest": "sha256:l1", "size": 5000}, {"digest": "sha256:l2", "size": 7}],
    }
    blobs, children = accounting.manifest_blobs(manifest, "sha256:m1", 400)
    assert blobs == {"sha256:m1": 400, "sha256:c": 10, "sha256:l1": 5000, "sha256:l2": 7}
    assert children == []


def test_pushed_bytes_are_new_blobs_only():
    """Only blobs reachable after and not before count as pushed."""
    before = {"sha256:a": 100, "sha256:b": 20}
    after = {"sha256:a": 100, "sha256:b": 20, "sha256:c": 3, "sha256:d": 4000}
    assert accounting.pushed_bytes(before, after) == 4003
    assert accounting.pushed_bytes(after, before) == 0
    assert accounting.pushed_bytes({}, {}) == 0


def test_directory_blobs_and_bytes(tmp_path):
    """An OCI layout's blobs by digest and the directory's size; a missing directory is empty."""
    assert accounting.dir_blobs(tmp_path / "none") == {} and accounting.dir_bytes(tmp_path / "none") == 0
    (tmp_path / "blobs" / "sha256").mkdir(parents=True)
    (tmp_path / "blobs" / "sha256" / ("a" * 64)).write_bytes(b"x" * 123)
    (tmp_path / "blobs" / "sha256" / ("b" * 64)).write_bytes(b"y" * 7)
    (tmp_path / "index.json").write_text("{}")
    assert accounting.dir_blobs(tmp_path) == {"sha256:" + "a" * 64: 123, "sha256:" + "b" * 64: 7}
    assert accounting.dir_bytes(tmp_path) == 132


def test_job_metrics_carry_every_registered_ci_metric():
    """One job's metrics: the split, bytes, reused and rebuilt steps; every name is in harness.metrics."""
    from harness.metrics import METRICS

    text = ci_stream()
    m = accounting.job_metrics(
        parse_stream(text), 8.0, text, [BASE], {"sha256:a": 1}, {"sha256:a": 1, "sha256:n": 50}
    )
    assert m["ci_job_seconds"] == m["build_seconds"] == 8.0
    assert m["ci_pulled_bytes"] == 1700 and m["ci_base_pulled_bytes"] == 1000
    assert m["ci_pushed_bytes"] == 50 and m["ci_cache_bytes"] == 51
    assert m["steps_total"] == 3 and m["steps_cached"] == 1
    assert m["ci_steps_reused"] == 2 and m["ci_steps_rebuilt"] == 1
    assert set(m) <= set(METRICS)


# -- the engine's command line -----------------------------------------------------------------


def test_engine_config_and_command(tmp_path):
    """containerd image store on, the lab registry as mirror; the overlayfs snapshotter, own namespaces."""
    assert containerd_config("127.0.0.1:5000") == {
        "registry-mirrors": ["http://127.0.0.1:5000"],
        "features": {"containerd-snapshotter": True},
    }
    cmd = engine_command(dockerd_command(tmp_path, 2400, None, "ibtls0"), "/usr/sbin/dockerd", "ns1")
    assert cmd[0] == "/usr/sbin/dockerd"
    assert "--storage-driver=overlayfs" in cmd and "--storage-driver=vfs" not in cmd
    assert cmd.count("--containerd-namespace") == 1 and cmd[cmd.index("--containerd-namespace") + 1] == "ns1"
    assert cmd[cmd.index("--containerd-plugins-namespace") + 1] == "ns1-plugins"


# -- the variant field -------------------------------------------------------------------------

EXP = """\
practice = "p"
claim = "c"
scenarios = [{scen}]

[edits]
source = ["app.txt"]
deps = "deps.txt"

[[variants]]
name = "a"
dockerfile = "Dockerfile"
{cache}
"""


def _exp(tmp_path: Path, scen: str, cache: str) -> Path:
    folder = tmp_path / "demo"
    (folder / "context").mkdir(parents=True, exist_ok=True)
    (folder / "Dockerfile").write_text("FROM debian:trixie-slim\n")
    (folder / "experiment.toml").write_text(EXP.format(scen=scen, cache=cache))
    return folder


@pytest.mark.parametrize("cache", CACHE_STRATEGIES)
def test_cache_field_accepts_each_strategy(tmp_path, cache):
    """Every known strategy loads on a ci variant and is recorded in the definition."""
    exp = load_experiment(_exp(tmp_path, '"ci", "ci-deps", "ci-none"', f'cache = "{cache}"'))
    assert exp.variants[0].cache == cache and exp.variants[0].scenarios == ("ci", "ci-deps", "ci-none")
    assert exp.to_dict()["variants"][0].get("cache", "none") == cache


@pytest.mark.parametrize(
    ("scen", "cache", "message"),
    [
        ('"ci"', 'cache = "s3"', "unknown cache strategy 's3'"),
        ('"ci"', "cache = 3", "must be str"),
        ('"cold"', 'cache = "inline"', "applies to the ci scenarios only"),
    ],
)
def test_cache_field_errors_are_one_line(tmp_path, scen, cache, message):
    """Unknown value, wrong type, or cache on a variant without a ci scenario: one line naming the key."""
    with pytest.raises(SchemaError) as exc:
        load_experiment(_exp(tmp_path, scen, cache))
    text = str(exc.value)
    assert message in text and "variants[0].cache" in text and "\n" not in text


def test_ci_scenarios_need_their_edits(tmp_path):
    """ci-deps without [edits] deps is refused like edit-deps is."""
    folder = _exp(tmp_path, '"ci-deps"', "")
    toml = folder / "experiment.toml"
    toml.write_text(toml.read_text().replace('deps = "deps.txt"\n', ""))
    with pytest.raises(SchemaError, match=r"scenario 'ci-deps' needs \[edits\] deps"):
        load_experiment(folder)
