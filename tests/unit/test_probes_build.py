"""Pure parts of the build-side probes: layer-tar reading and wasted bytes, canary scanning,
hadolint JSON parsing, small helpers. No Docker."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from types import SimpleNamespace

import docker.errors
import pytest

from harness.probes._containers import file_from_image, files_in_image
from harness.probes.addsource import layer_bytes_for, payload, step_of
from harness.probes.downloads import summarize_stats
from harness.probes.layers import (
    Entry,
    gcc_in_layers,
    layer_entries,
    saved_layers,
    stream_contains,
    wasted_bytes,
)
from harness.probes.lint import Finding, parse_hadolint_json, summarize
from harness.probes.secrets import config_keys_with, find_places, in_build_output, scrub
from harness.probes.tags import commit_tag
from harness.probes.tls import dockerd_command


def _tar(members: dict[str, bytes | None]) -> bytes:
    """A layer tar: name -> bytes (file) or None (directory)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for name, data in members.items():
            ti = tarfile.TarInfo(name)
            if data is None:
                ti.type = tarfile.DIRTYPE
                tf.addfile(ti)
            else:
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def _entries(members: dict[str, bytes | None]) -> list[Entry]:
    with tarfile.open(fileobj=io.BytesIO(_tar(members))) as tf:
        return layer_entries(tf)


# ------------------------------------------------------------------------------- layers


def test_layer_entries_kinds_and_names():
    """Layer tar entries are classified as file, dir, whiteout or opaque with normalised paths and sizes."""
    e = _entries(
        {
            "./etc/": None,
            "./etc/app.conf": b"x" * 5,
            "tmp/.wh.big.bin": b"",
            "var/lib/apt/lists/.wh..wh..opq": b"",
            ".env": b"A=1",
        }
    )
    kinds = {x.path: x.kind for x in e}
    assert kinds == {
        "etc": "dir",
        "etc/app.conf": "file",
        "tmp/big.bin": "whiteout",
        "var/lib/apt/lists": "opaque",
        ".env": "file",
    }
    assert next(x for x in e if x.path == "etc/app.conf").size == 5


def test_wasted_bytes_split_cleanup_counts_deleted_file():
    """A file added in one layer and deleted in a later one counts as wasted bytes with its layers."""
    layers = [
        _entries({"bin/": None, "bin/sh": b"s" * 10}),
        _entries({"tmp/": None, "tmp/big.bin": b"b" * 1000}),
        _entries({"tmp/.wh.big.bin": b""}),
    ]
    total, hidden = wasted_bytes(layers)
    assert total == 1000
    assert hidden == [("tmp/big.bin", 1000, 1, 2)]


def test_wasted_bytes_same_layer_cleanup_is_zero():
    """A file created and removed in the same layer wastes nothing."""
    # a file created and removed in one RUN never reaches the tar
    layers = [_entries({"bin/sh": b"s" * 10}), _entries({"etc/app.conf": b"v1"})]
    assert wasted_bytes(layers) == (0, [])


def test_wasted_bytes_overwrite_and_directory_whiteout_and_opaque():
    """Overwritten files, whited-out directories and opaque directories all count their hidden bytes."""
    layers = [
        _entries(
            {
                "data/a": b"a" * 100,
                "data/b": b"b" * 50,
                "lists/x": b"x" * 30,
                "lists/y": b"y" * 20,
                "f": b"1" * 7,
            }
        ),
        _entries({"f": b"2" * 3}),  # overwrite: the 7 earlier bytes are hidden
        _entries({".wh.data": b""}),  # whole directory removed
        _entries({"lists/.wh..wh..opq": b"", "lists/z": b"z" * 4}),  # opaque: x and y hidden, z new
    ]
    total, hidden = wasted_bytes(layers)
    assert total == 100 + 50 + 30 + 20 + 7
    assert {h[0] for h in hidden} == {"data/a", "data/b", "lists/x", "lists/y", "f"}


def test_wasted_bytes_opaque_does_not_hide_files_of_its_own_layer():
    """An opaque whiteout hides earlier layers' files only, not files of its own layer."""
    layers = [_entries({"d/old": b"o" * 9}), _entries({"d/new": b"n" * 5, "d/.wh..wh..opq": b""})]
    total, hidden = wasted_bytes(layers)
    assert total == 9 and hidden[0][0] == "d/old"


def test_gcc_in_layers():
    """gcc_in_layers finds /usr/bin/gcc unless a later layer removed it; docs about gcc do not count."""
    assert gcc_in_layers([_entries({"usr/bin/gcc": b"elf"})])
    assert not gcc_in_layers([_entries({"usr/bin/gcc": b"elf"}), _entries({"usr/bin/.wh.gcc": b""})])
    assert not gcc_in_layers([_entries({"usr/share/doc/gcc/README": b"x"})])


def test_saved_layers_reads_manifest_order(tmp_path: Path):
    """saved_layers reads the layers of a docker save tar in the manifest's order, not the tar's."""
    l1, l2 = _tar({"a": b"1"}), _tar({"b": b"2"})
    outer = tmp_path / "save.tar"
    manifest = [
        {"Config": "blobs/sha256/cfg", "RepoTags": ["x:1"], "Layers": ["blobs/sha256/l1", "blobs/sha256/l2"]}
    ]
    with tarfile.open(outer, "w") as tf:
        for name, data in (
            ("blobs/sha256/l2", l2),
            ("blobs/sha256/l1", l1),
            ("blobs/sha256/cfg", b'{"a": 1}'),
            ("manifest.json", json.dumps(manifest).encode()),
        ):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    saved = saved_layers(outer)
    assert saved.layers == ["blobs/sha256/l1", "blobs/sha256/l2"]
    assert saved.config_json() == {"a": 1}
    names = [[e.path for e in layer_entries(t)] for _, t in saved.layer_tars()]
    assert names == [["a"], ["b"]]


# ------------------------------------------------------------------------------- canary scanning


@pytest.mark.parametrize("chunk", [1, 3, 7, 64, 1 << 20])
def test_stream_contains_across_chunk_boundaries(chunk):
    """stream_contains finds a needle split across any chunk boundary and nothing when it is absent."""
    needle = b"ibcanary0123456789"
    data = b"x" * 1000 + needle + b"y" * 10
    assert stream_contains(io.BytesIO(data), needle, chunk=chunk)
    assert not stream_contains(io.BytesIO(data.replace(needle, b"-" * len(needle))), needle, chunk=chunk)


def test_stream_contains_in_a_layer_tar():
    """stream_contains finds the canary inside a layer tar."""
    needle = b"ibcanaryfeedface"
    layer = _tar({"root/.netrc": b"machine x password " + needle})
    assert stream_contains(io.BytesIO(layer), needle, chunk=100)


def test_find_places_names_places_never_values():
    """find_places names where the canary is (config, history, layers, inspect) without its value."""
    canary = "ibcanary" + "ab" * 16
    config = {"Config": {"Env": [f"API_TOKEN={canary}", "PATH=/usr/bin"], "Labels": {}}}
    history = [{"CreatedBy": f"RUN |1 API_TOKEN={canary} /bin/sh -c x"}, {"CreatedBy": "COPY app.py ."}]
    places = find_places(
        canary,
        config=config,
        history=history,
        layer_hits=[3],
        inspected={"container_inspect": {"Config": {"Env": []}}, "service_inspect": None},
    )
    assert places == ["image_config", "history", "layer 3"]
    assert canary not in json.dumps(places)
    assert config_keys_with(canary, config) == ["Env"]
    assert find_places(canary, config={"Config": {}}, history=[], layer_hits=[], inspected={}) == []


def test_scrub():
    """scrub replaces the canary in text with <redacted>; no canary leaves text alone."""
    assert scrub("error: bad value ibcanaryXYZ here", "ibcanaryXYZ") == "error: bad value <redacted> here"
    assert scrub("text", None) == "text"


# ------------------------------------------------------------------------------- hadolint

HADOLINT_JSON = """[
 {"code":"DL3008","column":1,"file":"bad.Dockerfile","level":"warning","line":6,
  "message":"Pin versions in apt get install."},
 {"code":"DL4000","column":1,"file":"bad.Dockerfile","level":"error","line":4,"message":"MAINTAINER is deprecated"},
 {"code":"DL3015","column":1,"file":"bad.Dockerfile","level":"info","line":6,"message":"Avoid additional packages"},
 {"code":"SC2086","column":1,"file":"bad.Dockerfile","level":"info","line":6,"message":"Double quote"}
]"""


def test_parse_hadolint_json_and_summarize():
    """hadolint JSON findings are sorted by line then code and summarised by rule and level."""
    findings = parse_hadolint_json(HADOLINT_JSON)
    assert [f.code for f in findings] == ["DL4000", "DL3008", "DL3015", "SC2086"]  # by line, then code
    assert findings[0] == Finding("DL4000", "error", 4, "MAINTAINER is deprecated")
    s = summarize(findings)
    assert s == {
        "total": 4,
        "by_rule": {"DL3008": 1, "DL3015": 1, "DL4000": 1, "SC2086": 1},
        "by_level": {"error": 1, "info": 2, "warning": 1},
    }


def test_parse_hadolint_json_empty_and_garbage():
    """Empty hadolint output is no findings; non-JSON output is ProbeFailed."""
    from harness.errors import ProbeFailed

    assert parse_hadolint_json("") == []
    assert parse_hadolint_json("[]") == []
    with pytest.raises(ProbeFailed):
        parse_hadolint_json("hadolint: cannot parse")


# ------------------------------------------------------------------------------- small helpers


def test_step_of_picks_the_copy_vertex_of_add_url():
    """step_of picks the copy vertex (started later) of an ADD <url> step; no steps gives None."""

    def step(name, cached, started, instr="ADD"):
        return SimpleNamespace(name=name, cached=cached, started=started, instruction=instr)

    name = "[1/2] ADD http://127.0.0.1:1/data.bin /opt/data.bin"
    # first seen: the copy (started later); second: the HTTP source (started first)
    events = SimpleNamespace(dockerfile_steps=lambda: (step(name, True, 2.0), step(name, False, 1.0)))
    assert step_of(events).cached is True
    assert step_of(SimpleNamespace(dockerfile_steps=lambda: ())) is None


def test_layer_bytes_for_and_payload():
    """layer_bytes_for gives the history size of the first COPY/ADD layer; payload is deterministic per seed."""
    history = [
        {"CreatedBy": 'CMD ["ls"]', "Size": 0},
        {"CreatedBy": "COPY payload.tar /opt/payload/ # buildkit", "Size": 71680},
        {"CreatedBy": "ADD x y", "Size": 5},
    ]
    assert layer_bytes_for(history, "COPY") == 71680
    assert layer_bytes_for(history, "ADD") == 5
    assert layer_bytes_for(history, "RUN") is None
    assert payload(1000) == payload(1000) and len(payload(1000)) == 1000
    assert payload(64, seed=b"a") != payload(64, seed=b"b")


def test_summarize_stats():
    """summarize_stats gives bytes served, requests and bytes per file from the index stats."""
    stats = {
        "bytes_served": 1234,
        "files": {"a.whl": {"requests": 2, "bytes": 1000}, "b.whl": {"requests": 1, "bytes": 200}},
    }
    assert summarize_stats(stats) == (1234, 3, {"a.whl": 1000, "b.whl": 200})
    assert summarize_stats({}) == (0, 0, {})


def test_commit_tag_is_stable_and_distinct():
    """commit_tag is stable for the same image and trial and distinct across trials."""
    assert commit_tag("sha256:aa", 1) == commit_tag("sha256:aa", 1)
    assert commit_tag("sha256:aa", 1) != commit_tag("sha256:aa", 2)
    assert commit_tag("sha256:aa", 1).startswith("git-")


def test_dockerd_command_shares_nothing_with_the_first_daemon(tmp_path: Path):
    """The second dockerd's roots, socket and bridge are its own; it never touches the first engine's."""
    cmd = dockerd_command(tmp_path, 23456, None)
    joined = " ".join(cmd)
    for flag in ("--data-root", "--exec-root", "--pidfile", "--config-file"):
        assert cmd[cmd.index(flag) + 1].startswith(str(tmp_path))
    assert f"unix://{tmp_path / 'docker.sock'}" in cmd and "tcp://127.0.0.1:23456" in cmd
    assert (
        "--bridge=ibtls0" in cmd
        and "--bridge=none" not in cmd
        and "--iptables=false" in cmd
        and "--tls=false" in cmd
    )
    assert "/var/run/docker" not in joined and "/var/lib/docker" not in joined
    certs = {k: tmp_path / k for k in ("ca", "server_cert", "server_key")}
    tls = dockerd_command(tmp_path, 1, certs)
    assert "--tlsverify" in tls and f"--tlscacert={tmp_path / 'ca'}" in tls


def test_in_build_output_catches_truncated_names():
    """in_build_output counts step names showing the canary, even truncated; a secret mount shows none."""
    canary = "ibcanary" + "cd" * 16
    names = [
        f'[2/4] RUN printf %s "{canary}" | sha256sum',
        f'[fetch 1/2] RUN x "{canary[:20]}',
        "[3/4] COPY app.py .",
    ]
    assert in_build_output(names, canary) == 2
    assert (
        in_build_output(
            ["[1/2] RUN --mount=type=secret,id=api_token sha256sum /run/secrets/api_token"], canary
        )
        == 0
    )


class _FakeContainer:
    def __init__(self, archive: bytes | None) -> None:
        self.id, self.archive, self.removed = "c1", archive, False

    def get_archive(self, path: str):
        if self.archive is None:
            raise docker.errors.NotFound(f"{path} not found")
        return iter([self.archive[:10], self.archive[10:]]), {}

    def remove(self, force: bool = False) -> None:  # noqa: ARG002 - the docker Container's signature
        self.removed = True


def _archive(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_files_are_read_from_an_image_through_one_tracked_container():
    """_containers reads an image's files via a created container it tracks and removes; a missing path is empty."""
    tracked: list[tuple[str, str]] = []
    present = _FakeContainer(_archive({"pip/a.whl": b"x" * 300, "pip/b": b"yz"}))
    client = SimpleNamespace(containers=SimpleNamespace(create=lambda *_a, **_k: present))
    assert files_in_image(client, "img", "/pip", {}, lambda *k: tracked.append(k)) == [
        ("pip/a.whl", 300),
        ("pip/b", 2),
    ]
    assert file_from_image(client, "img", "/pip/b", {}, lambda *_k: None) == b"x" * 300
    assert present.removed and tracked == [("container", "c1")]
    gone = SimpleNamespace(containers=SimpleNamespace(create=lambda *_a, **_k: _FakeContainer(None)))
    assert files_in_image(gone, "img", "/nope", {}, lambda *_k: None) == []
    assert file_from_image(gone, "img", "/nope", {}, lambda *_k: None) is None
