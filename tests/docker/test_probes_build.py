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

import pytest

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENTS = ROOT / "experiments"
BUSYBOX = "imagebench-test/busybox:latest"
LAB_SLIM = "imagebench-lab/python:3.13-slim-trixie"


def _docker():
    docker = pytest.importorskip("docker")
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except Exception as exc:  # pragma: no cover - environment
        pytest.skip(f"no Docker engine: {exc}")
    return client


@pytest.fixture(scope="module")
def client():
    return _docker()


def _image_exists(client, ref: str) -> bool:
    try:
        client.images.get(ref)
        return True
    except Exception:
        return False


@pytest.fixture(scope="module")
def busybox(client) -> str:
    if not _image_exists(client, BUSYBOX):
        script = ROOT / "tests" / "fixtures" / "make_busybox_base.sh"
        if not script.is_file():
            pytest.skip("no busybox test base and no tests/fixtures/make_busybox_base.sh")
        subprocess.run(["bash", str(script)], check=True, capture_output=True, timeout=300)
    return BUSYBOX


@pytest.fixture(scope="module")
def slim(client, busybox) -> str:
    """The image `python:3.13-slim` stands for in these tests."""
    return LAB_SLIM if _image_exists(client, LAB_SLIM) else busybox


@dataclass
class Trial:
    """What the runner does for one trial, small enough to read."""

    client: Any
    experiment: str
    variant: str
    base: str
    tmp: Path
    extra_args: dict[str, str] = field(default_factory=dict)
    lab: Any = None
    logs: list[str] = field(default_factory=list)

    def run(self, *probe_names: str) -> tuple[dict[str, float], dict[str, Any], Any]:
        from harness.engine.buildx import BuildSpec, run_build
        from harness.experiment import load_experiment
        from harness.probes import BuildExtras, ProbeContext, get_probe

        exp = load_experiment(EXPERIMENTS / self.experiment)
        v = exp.variant(self.variant)
        nonce = uuid.uuid4().hex[:12]
        work = self.tmp / f"{self.variant}-{nonce}"
        work.mkdir(parents=True)
        ctx_dir = work / "context"
        shutil.copytree(exp.path / v.context, ctx_dir, symlinks=True)
        dockerfile = work / "Dockerfile"
        shutil.copyfile(exp.file(v.dockerfile), dockerfile)
        di = exp.path / (v.dockerfile + ".dockerignore")
        if di.is_file():
            shutil.copyfile(di, work / "Dockerfile.dockerignore")
        labels = {"imagebench.run": f"test-{nonce}", "imagebench.experiment": exp.name}
        tag = f"imagebench-test/{exp.name}:{v.name}-{nonce}"
        spec = BuildSpec(context=ctx_dir, dockerfile=dockerfile, tag=tag, target=v.target,
                         build_args={**v.build_args, **self.extra_args},
                         build_contexts={"python:3.13-slim": f"docker-image://{self.base}"}, labels=labels,
                         timeout=600)
        redact: set[str] = set()
        tracked: list[tuple[str, str]] = []

        def build(**overrides):
            from dataclasses import replace

            s = replace(spec, **{k: x for k, x in overrides.items() if k in BuildSpec.__dataclass_fields__})
            if "build_args" in overrides:
                s.build_args = {**spec.build_args, **overrides["build_args"]}
            if "build_contexts" in overrides:
                s.build_contexts = {**spec.build_contexts, **overrides["build_contexts"]}
            res = run_build(s, redact=redact)
            self.logs.append(res.error_text)
            if res.image_id:
                tracked.append(("image", res.image_id))
            return res

        probes = [get_probe(n) for n in probe_names]
        ctx = ProbeContext(client=self.client, experiment=exp, variant=v, scenario="cold", trial=0, nonce=nonce,
                           workdir=work, context=ctx_dir, dockerfile=dockerfile, labels=labels, lab=self.lab,
                           tag=tag, build=build, track=lambda k, i: tracked.append((k, i)), redact=redact)
        metrics: dict[str, float] = {}
        try:
            extras = BuildExtras()
            for p in probes:
                e = p.before_build(ctx)
                extras.build_args.update(e.build_args)
                extras.secrets += e.secrets
                extras.flags += e.flags
                redact |= e.redact
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
            for kind, ident in reversed(tracked):
                with contextlib.suppress(Exception):
                    if kind == "container":
                        self.client.api.remove_container(ident, force=True, v=True)
                    elif kind == "image":
                        self.client.api.remove_image(ident, force=True)
                    elif kind == "network":
                        self.client.api.remove_network(ident)
                    elif kind == "volume":
                        self.client.api.remove_volume(ident, force=True)
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
        f"{root / 'data'}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n")
    proc = subprocess.Popen([exe, "serve", str(root / "config.yml")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
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


@pytest.mark.parametrize("variant,leaks,places", [
    ("env", True, {"image_config", "history"}),
    ("arg", True, {"history"}),
    ("arg-stage", False, set()),
    ("mount", False, set()),
    ("runtime-env", True, {"container_inspect"}),
])
def test_secrets_canary(client, slim, tmp_path, variant, leaks, places):
    t = Trial(client, "secrets", variant, slim, tmp_path)
    metrics, details, _ = t.run("secrets")
    d = details["secrets"]
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
    if (client.info().get("Swarm") or {}).get("LocalNodeState") not in ("inactive", "active"):
        pytest.skip("engine in an unusual swarm state")
    before = (client.info().get("Swarm") or {}).get("LocalNodeState")
    t = Trial(client, "secrets", "swarm", slim, tmp_path)
    metrics, details, _ = t.run("secrets")
    assert metrics["secret_delivered"] == 1, details
    assert metrics["secret_leaks"] == 0, details
    assert {"container_inspect", "service_inspect", "secret_inspect"} <= set(details["secrets"]["searched"])
    assert (client.info().get("Swarm") or {}).get("LocalNodeState") == before
