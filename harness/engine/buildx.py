"""Run one BuildKit build: `docker buildx build --progress=rawjson --metadata-file --iidfile`.

docker-py cannot drive BuildKit, so builds go through the buildx CLI; its rawjson event stream
(stderr) is parsed while it arrives by harness.engine.events. `--builder NAME` passes through, so
any buildx builder can carry the work.

Reproducible builds: `source_date_epoch` adds `--build-arg SOURCE_DATE_EPOCH=N` (image config and
history timestamps pinned; BuildKit >= 0.11) unless the experiment sets it itself, and
`rewrite_timestamp` asks the exporter to clamp file mtimes in new layers (`rewrite-timestamp=true`,
BuildKit >= 0.13). The docker driver's exporter ignores the latter, so the runner only asks for it on
other drivers and re-packs our layers itself otherwise (harness/engine/repro.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypedDict, Unpack, cast

from harness.engine.events import BuildEvents, EventParser
from harness.records import JSONObject


class BuildOverrides(TypedDict, total=False):
    """The fields of a BuildSpec a copy may replace (`BuildSpec.with_overrides`)."""

    context: Path
    dockerfile: Path
    tag: str | None
    target: str | None
    build_args: dict[str, str]
    build_contexts: dict[str, str]
    labels: dict[str, str]
    secrets: list[str]
    network: str | None
    builder: str | None
    no_cache: bool
    flags: list[str]
    source_date_epoch: int | None
    rewrite_timestamp: bool
    timeout: float


@dataclass
class BuildSpec:
    context: Path
    dockerfile: Path
    tag: str | None = None
    target: str | None = None
    build_args: dict[str, str] = field(default_factory=dict)
    build_contexts: dict[str, str] = field(default_factory=dict)  # name -> docker-image://...
    labels: dict[str, str] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)
    network: str | None = "host"
    builder: str | None = None
    no_cache: bool = False
    flags: list[str] = field(default_factory=list)
    source_date_epoch: int | None = None
    rewrite_timestamp: bool = False
    timeout: float = 1800.0

    def with_overrides(self, **overrides: Unpack[BuildOverrides]) -> BuildSpec:
        """A copy with fields replaced; build_args and build_contexts are merged, not replaced."""
        known = cast(
            BuildOverrides, {k: v for k, v in overrides.items() if k in BuildSpec.__dataclass_fields__}
        )
        spec = replace(self, **known)
        if "build_args" in overrides:
            spec.build_args = {**self.build_args, **overrides["build_args"]}
        if "build_contexts" in overrides:
            spec.build_contexts = {**self.build_contexts, **overrides["build_contexts"]}
        return spec


@dataclass
class BuildResult:
    ok: bool
    returncode: int
    seconds: float  # wall time of the build command
    events: BuildEvents
    image_id: str | None
    metadata: JSONObject  # the --metadata-file, as buildx writes it
    error: str  # one line summary ('' when ok)
    error_text: str  # BuildKit's plain-text error tail
    command: list[str]


def build_command(spec: BuildSpec, metadata_file: Path, iid_file: Path) -> list[str]:
    cmd = ["docker", "buildx", "build"]
    if spec.builder:
        # Non-default builders (docker-container, kubernetes, remote) keep results in their own
        # cache unless asked to load the image into the engine that inspects and runs it.
        cmd += ["--builder", spec.builder]
        cmd += ["--output", "type=docker,rewrite-timestamp=true"] if spec.rewrite_timestamp else ["--load"]
    cmd += [
        "--progress=rawjson",
        "--metadata-file",
        str(metadata_file),
        "--iidfile",
        str(iid_file),
        "-f",
        str(spec.dockerfile),
    ]
    if spec.tag:
        cmd += ["-t", spec.tag]
    if spec.target:
        cmd += ["--target", spec.target]
    if spec.network:
        cmd += ["--network", spec.network]
    if spec.no_cache:
        cmd.append("--no-cache")
    build_args = dict(spec.build_args)
    if spec.source_date_epoch is not None:
        build_args.setdefault("SOURCE_DATE_EPOCH", str(int(spec.source_date_epoch)))
    for k, v in sorted(build_args.items()):
        cmd += ["--build-arg", f"{k}={v}"]
    for k, v in sorted(spec.build_contexts.items()):
        cmd += ["--build-context", f"{k}={v}"]
    for k, v in sorted(spec.labels.items()):
        cmd += ["--label", f"{k}={v}"]
    for s in spec.secrets:
        cmd += ["--secret", s]
    cmd += list(spec.flags)
    cmd.append(str(spec.context))
    return cmd


def _summary(error_text: str, events: BuildEvents, rc: int) -> str:
    for line in reversed(error_text.strip().splitlines()):
        if line.startswith("ERROR:"):
            return line[len("ERROR:") :].strip()
    for step in events.steps:
        if step.error:
            return f"{step.name}: {step.error}"
    tail = error_text.strip().splitlines()
    return tail[-1] if tail else f"docker buildx build exited with {rc}"


def run_build(spec: BuildSpec, *, redact: set[str] | None = None) -> BuildResult:
    """Run the build, parsing events as they stream; never raises for a failed build."""
    with tempfile.TemporaryDirectory(prefix="imagebench-build-") as tmp:
        meta = Path(tmp) / "metadata.json"
        iid = Path(tmp) / "iid"
        cmd = build_command(spec, meta, iid)
        parser = EventParser()
        t0 = time.perf_counter()
        rc = _stream(cmd, parser, spec.timeout)
        seconds = time.perf_counter() - t0
        events = parser.close()
        metadata, image_id = _read_outputs(meta, iid)
    ok = rc == 0
    error, error_text = _errors(events, rc, redact or set())
    return BuildResult(
        ok=ok,
        returncode=rc,
        seconds=seconds,
        events=events,
        image_id=image_id or events.image_id or _config_digest(metadata),
        metadata=metadata,
        error=error,
        error_text=error_text,
        command=cmd,
    )


def _config_digest(metadata: JSONObject) -> str | None:
    """The image config digest buildx's metadata file names, if it names one."""
    digest = metadata.get("containerimage.config.digest")
    return digest if isinstance(digest, str) else None


def _build_env() -> dict[str, str]:
    """The environment of the build command: no default attestations, no BUILDKIT_PROGRESS override."""
    env = dict(os.environ)
    env.setdefault("BUILDX_NO_DEFAULT_ATTESTATIONS", "1")
    env.pop("BUILDKIT_PROGRESS", None)
    return env


def _stream(cmd: list[str], parser: EventParser, timeout: float) -> int:
    """Run the build command, feeding its stderr (rawjson events) to `parser` as it arrives; its exit code.

    SIGTERM after `timeout` seconds; an interruption terminates (then kills) the build and re-raises."""
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=_build_env(),
        text=True,
        encoding="utf-8",
        errors="replace",
        start_new_session=False,
    )
    timer = threading.Timer(timeout, lambda: proc.send_signal(signal.SIGTERM))
    timer.start()
    try:
        assert proc.stderr is not None
        while True:
            chunk = proc.stderr.read(65536)
            if not chunk:
                break
            parser.feed(chunk)
        return proc.wait()
    except BaseException:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        raise
    finally:
        timer.cancel()


def _read_outputs(meta: Path, iid: Path) -> tuple[JSONObject, str | None]:
    """(metadata file as JSON, {} when missing or unreadable; image id from the iid file, or None)."""
    metadata: JSONObject = {}
    if meta.is_file():
        try:
            metadata = cast(JSONObject, json.loads(meta.read_text()))
        except json.JSONDecodeError:
            metadata = {}
    image_id = iid.read_text().strip() if iid.is_file() else None
    return metadata, image_id


def _errors(events: BuildEvents, rc: int, redact: set[str]) -> tuple[str, str]:
    """(one-line summary, BuildKit's error text with the failed step's log first), secrets redacted."""
    ok = rc == 0
    error_text = events.error_text
    if not ok and events.failed_log:
        error_text = f"{events.failed_log}\n{error_text}"
    error = "" if ok else _summary(error_text, events, rc)
    for secret in redact:
        error = error.replace(secret, "<redacted>")
        error_text = error_text.replace(secret, "<redacted>")
    return error, error_text
