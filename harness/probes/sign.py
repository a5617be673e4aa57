"""sign: does `cosign verify` accept the image a tag points to?

Variant option `run = { sign = "none" | "key" | "tampered" }`:

  none      the image is pushed to the lab registry unsigned
  key       pushed, then signed by digest with a key pair generated for this trial
  tampered  pushed and signed, then a different image (the built one plus a file, via
            `docker commit`) is pushed under the same tag, as an attacker with push rights would

Then `cosign verify --key cosign.pub --insecure-ignore-tlog <registry>/<repo>:<tag>`:
verify_ok = 1 when cosign accepts it. No transparency log is reachable offline: signing uses
`--tlog-upload=false` and verification `--insecure-ignore-tlog` (the signature and key are checked;
the log inclusion is not).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

from harness.errors import EnvironmentProblem, ProbeFailed, UsageError
from harness.probes import Probe, ProbeContext, register
from harness.probes.tags import push, registry_of

TIMEOUT = 120.0
MODES = ("none", "key", "tampered")


def cosign(args: list[str], home: Path, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("cosign")
    if exe is None:
        raise EnvironmentProblem(
            "cosign is not on PATH", hint="scripts/install-tools.sh (apt-get install cosign/trixie)"
        )
    env = {
        **os.environ,
        "COSIGN_PASSWORD": "",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home),
        "TUF_ROOT": str(home / "tuf"),
        "SIGSTORE_NO_CACHE": "1",
    }
    try:
        return subprocess.run(
            [exe, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=home,
            env=env,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise ProbeFailed(f"cosign {args[0]} took more than {timeout:.0f} s") from None


def last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


@register
class SignProbe(Probe):
    name = "sign"
    needs = ("cosign",)

    def __init__(self) -> None:
        self._containers: list[str] = []

    def after_build(self, ctx: ProbeContext) -> dict[str, float]:
        if not ctx.image:
            return {}
        mode = (ctx.variant.run or {}).get("sign", "")
        if mode not in MODES:
            raise UsageError(
                f"experiment {ctx.experiment.name}, variant {ctx.variant.name}: run.sign must be "
                f"one of {', '.join(MODES)}"
            )
        home = ctx.workdir / "cosign"
        home.mkdir(exist_ok=True)
        gen = cosign(["generate-key-pair"], home)
        if gen.returncode != 0:
            raise ProbeFailed(f"cosign generate-key-pair failed: {last_line(gen.stderr)}")
        repo = f"{registry_of(ctx)}/imagebench-sign/app-{ctx.nonce}"
        tag = "v1"
        digest = push(ctx.client, ctx.image, repo, tag)
        details: dict[str, object] = {"mode": mode, "signed_digest": None, "tag_digest_at_verify": digest}
        if mode in ("key", "tampered"):
            s = cosign(
                ["sign", "--yes", "--key", "cosign.key", "--tlog-upload=false", f"{repo}@{digest}"], home
            )
            if s.returncode != 0:
                raise ProbeFailed(f"cosign sign failed: {last_line(s.stderr)}")
            details["signed_digest"] = digest
        if mode == "tampered":
            c = ctx.client.containers.create(
                ctx.image, command=["true"], labels=ctx.labels, network_disabled=True
            )
            self._containers.append(c.id)
            ctx.track("container", c.id)
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w") as tf:
                data = b"#!/bin/sh\necho backdoor\n"
                ti = tarfile.TarInfo("usr/local/bin/backdoor")
                ti.size, ti.mode = len(data), 0o755
                tf.addfile(ti, io.BytesIO(data))
            c.put_archive("/", buf.getvalue())
            evil = c.commit(changes=[f"LABEL {k}={v}" for k, v in ctx.labels.items()])
            ctx.track("image", evil.id)
            details["tag_digest_at_verify"] = push(ctx.client, evil.id, repo, tag)  # same tag, other image
        v = cosign(["verify", "--key", "cosign.pub", "--insecure-ignore-tlog", f"{repo}:{tag}"], home)
        details["verify_message"] = last_line(v.stderr) or last_line(v.stdout)
        details["tag_moved"] = details["tag_digest_at_verify"] != digest
        ctx.details[self.name] = details
        return {"verify_ok": 1.0 if v.returncode == 0 else 0.0}

    def cleanup(self, ctx: ProbeContext) -> None:
        for cid in self._containers:
            with contextlib.suppress(Exception):
                ctx.client.api.remove_container(cid, force=True, v=True)
        key = ctx.workdir / "cosign" / "cosign.key"
        with contextlib.suppress(OSError):
            key.unlink()
