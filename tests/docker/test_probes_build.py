"""Build-side probes against real builds and containers (secrets, downloads, addsource, ignore, lint,
tags, sign, tls, layers, gcc).

Each test runs one probe the way the runner does (before_build -> build -> after_build -> cleanup)
on the experiment's own Dockerfiles, with `python:3.13-slim` mapped to the lab's stand-in when the
lab exists, else to the tiny busybox test base. Everything a test creates is removed.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import pytest

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENTS = ROOT / "experiments"
LAB_SLIM = "imagebench-lab/python:3.13-slim-trixie"


def _image_exists(client, ref: str) -> bool:
    try:
        client.images.get(ref)
        return True
    except docker.errors.ImageNotFound:
        return False


@pytest.fixture(scope="module")
def busybox(busybox_base) -> str:
    """The tiny busybox test base (tests/docker/conftest.py makes it when missing)."""
    return busybox_base


@pytest.fixture(scope="module")
def slim(client, busybox) -> str:
    """The image `python:3.13-slim` stands for in these tests."""
    return LAB_SLIM if _image_exists(client, LAB_SLIM) else busybox


@dataclass
class Trial:
    """What the runner does for one trial, small enough to read."""

    client: Any
    experiment: str | Path  # a name under experiments/ or a folder
    variant: str
    base: str
    tmp: Path
    extra_args: dict[str, str] = field(default_factory=dict)
    lab: Any = None
    logs: list[str] = field(default_factory=list)
    append: dict[str, str] = field(default_factory=dict)  # context file -> line appended before the build
    replace: dict[str, str] = field(default_factory=dict)  # context file -> new content
    no_cache: bool = False  # the runner prunes the build cache (cold); tests may not, so they skip it

    def run(self, *probe_names: str) -> tuple[dict[str, float], dict[str, Any], Any]:
        from harness.engine.buildx import BuildSpec, run_build
        from harness.engine.inspect import remove_tracked
        from harness.experiment import load_experiment
        from harness.probes import ProbeContext, collect_extras, get_probe

        exp = load_experiment(
            self.experiment if isinstance(self.experiment, Path) else EXPERIMENTS / self.experiment
        )
        v = exp.variant(self.variant)
        nonce = uuid.uuid4().hex[:12]
        work = self.tmp / f"{self.variant}-{nonce}"
        work.mkdir(parents=True)
        ctx_dir = work / "context"
        shutil.copytree(exp.path / v.context, ctx_dir, symlinks=True)
        for rel, text in self.replace.items():
            (ctx_dir / rel).write_text(text)
        for rel, line in self.append.items():
            with open(ctx_dir / rel, "a", encoding="utf-8") as fh:
                fh.write(f"\n{line}\n")
        dockerfile = work / "Dockerfile"
        shutil.copyfile(exp.file(v.dockerfile), dockerfile)
        di = exp.path / (v.dockerfile + ".dockerignore")
        if di.is_file():
            shutil.copyfile(di, work / "Dockerfile.dockerignore")
        labels = {"imagebench.run": f"test-{nonce}", "imagebench.experiment": exp.name}
        tag = f"imagebench-test/{exp.name}:{v.name}-{nonce}"
        spec = BuildSpec(
            context=ctx_dir,
            dockerfile=dockerfile,
            tag=tag,
            target=v.target,
            build_args={
                **(self.lab.build_args() if hasattr(self.lab, "build_args") else {}),
                **v.build_args,
                **self.extra_args,
            },
            build_contexts={"python:3.13-slim": f"docker-image://{self.base}"},
            labels=labels,
            timeout=600,
            no_cache=self.no_cache,
        )
        redact: set[str] = set()
        tracked: list[tuple[str, str]] = []

        def build(**overrides):
            res = run_build(spec.with_overrides(**overrides), redact=redact)
            self.logs.append(res.error_text)
            if res.image_id:
                tracked.append(("image", res.image_id))
            return res

        probes = [get_probe(n) for n in probe_names]
        ctx = ProbeContext(
            client=self.client,
            experiment=exp,
            variant=v,
            scenario="cold",
            trial=0,
            nonce=nonce,
            workdir=work,
            context=ctx_dir,
            dockerfile=dockerfile,
            labels=labels,
            lab=self.lab,
            tag=tag,
            build=build,
            track=lambda k, i: tracked.append((k, i)),
            redact=redact,
        )
        metrics: dict[str, float] = {}
        try:
            extras = collect_extras(probes, ctx)
            spec.build_args.update(extras.build_args)
            spec.secrets, spec.flags = extras.secrets, extras.flags
            result = run_build(spec, redact=redact)
            self.logs.append(result.error_text + result.error)
            if result.image_id:
                tracked.append(("image", result.image_id))
            assert result.ok, f"build failed: {result.error}\n{result.error_text[-2000:]}"
            ctx.image = result.image_id
            for p in probes:
                metrics.update(p.after_build(ctx))
            return metrics, ctx.details, result
        finally:
            for p in probes:
                with contextlib.suppress(Exception):
                    p.cleanup(ctx)
            remove_tracked(tracked)
            with contextlib.suppress(Exception):
                self.client.api.remove_image(tag, force=True)
            self.redacted = set(redact)
            shutil.rmtree(work, ignore_errors=True)


def _leftovers(client, run_prefix: str = "test-") -> list[str]:
    out = []
    for c in client.containers.list(all=True, filters={"label": "imagebench.run"}):
        if c.labels.get("imagebench.run", "").startswith(run_prefix):
            out.append(c.name)
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class _Lab:
    registry: str


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """A throw-away registry on 127.0.0.1 (the lab's is not needed for these tests)."""
    exe = shutil.which("docker-registry")
    if exe is None:
        pytest.skip("docker-registry (Debian package) not installed")
    root = tmp_path_factory.mktemp("registry")
    port = _free_port()
    (root / "config.yml").write_text(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: "
        f"{root / 'data'}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n"
    )
    proc = subprocess.Popen(
        [exe, "serve", str(root / "config.yml")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
            time.sleep(0.1)
        else:
            pytest.fail("registry did not start")
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        if proc.poll() is None:
            proc.kill()


# ---------------------------------------------------------------------------------------- secrets


@pytest.mark.parametrize(
    "variant,leaks,places",
    [
        ("env", True, {"image_config", "history"}),
        ("arg", True, {"history"}),
        ("arg-stage", False, set()),
        ("mount", False, set()),
        ("runtime-env", True, {"container_inspect"}),
    ],
)
def test_secrets_canary(client, slim, tmp_path, variant, leaks, places):
    """The secrets probe finds the canary exactly where each variant leaks it, and never reports the canary itself."""
    # no cache: a secret mount is not part of the cache key, so a cached step would hold an older canary
    t = Trial(client, "secrets", variant, slim, tmp_path, no_cache=True)
    metrics, details, _ = t.run("secrets")
    d = details["secrets"]
    if variant in ("env", "arg", "arg-stage"):
        assert metrics["secret_in_build_output"] == 1, d  # RUN lines are printed with ARG values
    if variant == "mount":
        assert metrics["secret_in_build_output"] == 0, d
    assert metrics["secret_delivered"] == 1, d
    assert (metrics["secret_leaks"] > 0) == leaks, d
    assert places <= set(d["places"]), d
    if not leaks:
        assert d["places"] == []
    (canary,) = t.redacted
    everything = json.dumps([metrics, details]) + "".join(t.logs)
    assert canary not in everything
    assert not _leftovers(client)


def test_secrets_swarm(client, slim, tmp_path):
    """A swarm secret is delivered without leaking into container, service or secret inspect; swarm state restored."""
    if (client.info().get("Swarm") or {}).get("LocalNodeState") not in ("inactive", "active"):
        pytest.skip("engine in an unusual swarm state")
    before = (client.info().get("Swarm") or {}).get("LocalNodeState")
    t = Trial(client, "secrets", "swarm", slim, tmp_path)
    metrics, details, _ = t.run("secrets")
    assert metrics["secret_delivered"] == 1, details
    assert metrics["secret_leaks"] == 0, details
    assert {"container_inspect", "service_inspect", "secret_inspect"} <= set(details["secrets"]["searched"])
    assert (client.info().get("Swarm") or {}).get("LocalNodeState") == before


# ---------------------------------------------------------------------------------------- copy-vs-add


@pytest.mark.usefixtures("daemon_to_ourselves")
def test_addsource_tar_extraction(client, slim, tmp_path):
    """ADD of a local tar extracts it and COPY keeps it whole; neither busts the cache on rebuild."""
    m_add, d_add, _ = Trial(client, "copy-vs-add", "add-tar", slim, tmp_path).run("addsource")
    m_copy, d_copy, _ = Trial(client, "copy-vs-add", "copy-tar", slim, tmp_path).run("addsource")
    assert m_add["auto_extracted"] == 1, d_add
    assert m_copy["auto_extracted"] == 0, d_copy
    assert d_copy["addsource"]["tar_kept"] is True
    assert m_add["cache_busted"] == 0 and m_copy["cache_busted"] == 0
    assert m_copy["added_bytes"] == (ROOT / "experiments/copy-vs-add/context/payload.tar").stat().st_size
    assert m_add["added_bytes"] >= 65536 + 21 + 31


@pytest.mark.usefixtures("daemon_to_ourselves")
@pytest.mark.parametrize("variant", ["add-url", "add-url-plain"])
def test_addsource_url_cache(client, slim, tmp_path, variant):
    """ADD <url> refetches nothing with ETag (304) and the whole file without; a changed file re-runs ADD."""
    from harness.probes.addsource import PAYLOAD_BYTES

    metrics, details, _ = Trial(client, "copy-vs-add", variant, slim, tmp_path).run("addsource")
    d = details["addsource"]
    if variant == "add-url-plain":
        # no ETag: every build downloads the whole file to compare; the step itself stays cached
        assert metrics["add_refetch_bytes"] == PAYLOAD_BYTES, d
        assert metrics["cache_busted"] == 0, d
        assert metrics["add_change_detected"] == 1, d
        return
    # ETag server: the unchanged rebuild asks with If-None-Match, gets 304, sends no body
    assert metrics["add_refetch_bytes"] == 0, d
    assert metrics["cache_busted"] == 0, d
    assert d["first_build_bytes"] == PAYLOAD_BYTES
    assert d["image_changed_unchanged_source"] is False
    assert metrics["add_change_detected"] == 1, d  # changed file: ADD runs again, new image
    assert d["image_changed_after_edit"] is True
    assert metrics["added_bytes"] == PAYLOAD_BYTES


# ---------------------------------------------------------------------------------------- dockerignore


@pytest.mark.usefixtures("daemon_to_ourselves")
def test_ignore(client, slim, tmp_path):
    """Without .dockerignore .env and .git land in the image and bust the cache; with it neither, and less context is sent."""
    m_without, d_without, r_without = Trial(client, "dockerignore", "without", slim, tmp_path).run("ignore")
    m_with, d_with, r_with = Trial(client, "dockerignore", "with", slim, tmp_path).run("ignore")
    assert m_without["env_file_in_image"] == 1 and m_without["git_dir_in_image"] == 1
    assert m_with["env_file_in_image"] == 0 and m_with["git_dir_in_image"] == 0
    assert m_without["cache_busted"] == 1, d_without
    assert m_with["cache_busted"] == 0, d_with
    # the generated 4 MiB .git pack and 1 MiB log are sent only without .dockerignore
    assert r_without.events.context_sent_bytes > 5 * 1024 * 1024
    assert r_with.events.context_sent_bytes < 64 * 1024


# ---------------------------------------------------------------------------------------- layers / gcc

_SYNTH = {
    "split": "FROM python:3.13-slim\nRUN head -c 3145728 /dev/urandom > /blob.bin\nRUN echo v1 > /etc/app.conf\n"
    "RUN rm /blob.bin\n",
    "combined": "FROM python:3.13-slim\nRUN head -c 3145728 /dev/urandom > /blob.bin && rm /blob.bin "
    "&& echo v1 > /etc/app.conf\n",
    "overwrite": "FROM python:3.13-slim\nRUN head -c 1048576 /dev/urandom > /blob.bin\n"
    "RUN head -c 1024 /dev/urandom > /blob.bin\n",
}


@pytest.fixture()
def synthetic_layers(tmp_path) -> Path:
    """A throw-away experiment with a known amount of waste (the real one uses apt-get)."""
    d = tmp_path / "exp" / "layers-synthetic"
    (d / "context").mkdir(parents=True)
    toml = ['name = "layers-synthetic"', 'practice = "test"', 'claim = "test"', 'probes = ["layers", "gcc"]']
    for name, text in _SYNTH.items():
        (d / f"{name}.Dockerfile").write_text(text)
        toml += ["[[variants]]", f'name = "{name}"', f'dockerfile = "{name}.Dockerfile"']
    (d / "experiment.toml").write_text("\n".join(toml) + "\n")
    return d


def test_layers_wasted_bytes(client, busybox, tmp_path, synthetic_layers):
    """The layers probe counts bytes deleted or overwritten in a later layer as wasted; no gcc in these images."""
    out = {}
    for name in _SYNTH:
        m, d, _ = Trial(client, synthetic_layers, name, busybox, tmp_path).run("layers", "gcc")
        out[name] = (m, d)
    assert out["split"][0]["wasted_bytes"] == 3145728, out["split"][1]
    assert out["combined"][0]["wasted_bytes"] == 0, out["combined"][1]
    assert out["overwrite"][0]["wasted_bytes"] == 1048576
    assert out["split"][1]["layers"]["largest"][0]["path"] == "blob.bin"
    assert all(m["gcc_present"] == 0 for m, _ in out.values())


# ---------------------------------------------------------------------------------------- pip-cache


@pytest.mark.usefixtures("daemon_to_ourselves")
def test_downloads_pip_cache(client, lab, tmp_path):
    """Bytes counted at the lab index: plain pip downloads everything on every (cache-busted) build;
    with a cache mount the second build finds the wheels in the mount. (The experiment installs
    pandas + numpy; the test installs one small wheel to stay quick.)"""
    wheel = 348210  # tzdata-2026.6-py2.py3-none-any.whl

    def once(variant: str) -> dict[str, float]:
        nonce = uuid.uuid4().hex[:8]  # a new requirements.txt: the install step cannot be cached
        t = Trial(
            client,
            "pip-cache",
            variant,
            LAB_SLIM,
            tmp_path,
            lab=lab,
            replace={"requirements.txt": f"tzdata==2026.6\n# test {nonce}\n", "app.py": "print(1)\n"},
        )
        return t.run("downloads")[0]

    # the daemon lock keeps runs (which reset the index counters and prune cache mounts) out meanwhile
    plain = once("plain")
    assert plain["download_bytes"] >= wheel, plain
    assert plain["download_files"] == 1, plain
    no_cache = once("no-cache-dir")
    assert no_cache["download_bytes"] >= wheel and no_cache["pip_cache_in_image"] == 0, no_cache
    # the lab index lets pip cache /files/ (tests/unit/test_lab_index.py pins the header)
    assert plain["pip_cache_in_image"] >= wheel, plain

    once("cache-mount")  # fills the mount (or finds it filled by an earlier run)
    again = once("cache-mount")
    assert again["pip_cache_in_image"] == 0, again
    assert again["download_files"] == 0, again


# ---------------------------------------------------------------------------------------- version-tags / sign


@pytest.mark.parametrize(
    "variant,metric,expected",
    [
        ("base-latest", "output_changed", 1),
        ("base-digest", "output_changed", 0),
        ("own-latest", "rollback_possible", 0),
        ("own-commit", "rollback_possible", 1),
    ],
)
def test_tags(client, slim, tmp_path, registry, variant, metric, expected):
    """Pulling :latest gives changed output while a digest pin does not; only a commit tag allows a rollback."""
    metrics, details, _ = Trial(client, "version-tags", variant, slim, tmp_path, lab=_Lab(registry)).run(
        "tags"
    )
    assert metrics[metric] == expected, details
    assert not client.images.list(name=f"{registry}/imagebench-tags/*")


@pytest.mark.parametrize("variant,expected", [("unsigned", 0), ("signed", 1), ("tampered", 0)])
def test_sign(client, busybox, tmp_path, registry, variant, expected):
    """cosign verify passes for the signed image only; a tampered tag fails verification and is seen as moved."""
    if shutil.which("cosign") is None:
        pytest.skip("cosign not installed (scripts/install-tools.sh)")
    metrics, details, _ = Trial(client, "sign-verify", variant, busybox, tmp_path, lab=_Lab(registry)).run(
        "sign"
    )
    assert metrics["verify_ok"] == expected, details
    assert details["sign"]["tag_moved"] is (variant == "tampered")


# ---------------------------------------------------------------------------------------- daemon-tls


def _second_daemons() -> list[str]:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return [ln for ln in out.splitlines() if ln.startswith("dockerd") and "/ib-dockerd-" in ln]


@pytest.mark.parametrize(
    "variant,expected",
    [
        ("plain-tcp", {"no_cert": 1}),
        ("tls-verify", {"no_cert": 0, "wrong_ca": 0, "right_cert": 1, "plain_http": 0}),
    ],
)
def test_tls(client, busybox, tmp_path, variant, expected):
    """A plain-TCP daemon admits clients without a cert; a TLS-verify daemon admits only the right cert; all cleaned up."""
    if shutil.which("dockerd") is None or shutil.which("openssl") is None:
        pytest.skip("needs dockerd and openssl")
    metrics, details, _ = Trial(client, "daemon-tls", variant, busybox, tmp_path).run("tls")
    got = {
        k.removeprefix("client_admitted_"): v for k, v in metrics.items() if k.startswith("client_admitted_")
    }
    assert got == expected, details
    assert metrics["client_admitted"] == expected["no_cert"]
    assert not _second_daemons()
    assert not list(Path("/tmp").glob("ib-dockerd-*"))
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert "ibtls" not in links  # its own bridge is gone
    assert " docker0:" in links  # and the first engine's bridge was never touched
