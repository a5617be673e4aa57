"""tls: who can call a Docker daemon's API over TCP, with and without TLS client verification.

The probe starts a SECOND dockerd next to the lab's engine, on 127.0.0.1 only, with its own
--data-root, --exec-root, --pidfile and unix socket in a private temp dir, its own supervised
containerd (under its exec-root), its OWN bridge (`ibtls<hex>`, a /30 from 10.254.0.0/16, created
before and deleted after), --iptables=false, vfs storage and an empty config file; it never runs a
container. Not `--bridge=none`: a daemon started with it deletes the host's `docker0` interface
(moby removeDefaultBridgeInterface), which breaks the first engine's containers. Certificates are made at run time with openssl (EC P-256,
valid one day): a CA, a server certificate for IP 127.0.0.1, a client certificate from that CA, and
a second ("wrong") CA with its own client certificate.

Variant option `run = { daemon = "plain" | "tls" }`:
  plain  -H tcp://127.0.0.1:PORT, no TLS
  tls    --tlsverify with the CA, the server certificate and key

Clients tried (docker SDK, 5 s timeout, `ping` + `version`):
  no_cert     plain mode: http://; tls mode: https:// trusting the CA, no client certificate
  wrong_ca    https:// trusting the CA, client certificate issued by the wrong CA (tls mode only)
  right_cert  https:// trusting the CA, client certificate issued by the CA (tls mode only)
  plain_http  http:// against the TLS port (tls mode only)

client_admitted = admitted(no_cert): can a stranger on the network drive the daemon.
The daemon is stopped and its directories removed at the end of after_build and again in
cleanup, whatever happened.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from harness.errors import EnvironmentProblem, ProbeFailed, UsageError
from harness.probes import Probe, ProbeContext, register
from harness.probes.declared_metrics import TLS_CASES

CASES = TLS_CASES
START_TIMEOUT = 40.0
STOP_TIMEOUT = 15.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _openssl(*args: str, cwd: Path) -> None:
    exe = shutil.which("openssl")
    if exe is None:
        raise EnvironmentProblem("openssl is not on PATH")
    proc = subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise ProbeFailed(f"openssl {args[0]} failed: {proc.stderr.strip()[-300:]}")


_EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def _make_ca(d: Path, name: str) -> None:
    """A self-signed CA `name.pem` (key `name-key.pem`) valid for a day, in `d`."""
    _openssl(
        "req",
        "-x509",
        *_EC_KEY,
        "-keyout",
        f"{name}-key.pem",
        "-out",
        f"{name}.pem",
        "-days",
        "1",
        "-subj",
        f"/CN=imagebench {name}",
        cwd=d,
    )


def _make_leaf(d: Path, name: str, issuer: str, ext: str) -> None:
    """A certificate `name-cert.pem` signed by CA `issuer`, with the X.509 extensions `ext`, in `d`."""
    (d / f"{name}.ext").write_text(ext)
    _openssl(
        "req",
        "-new",
        *_EC_KEY,
        "-keyout",
        f"{name}-key.pem",
        "-out",
        f"{name}.csr",
        "-subj",
        f"/CN=imagebench {name}",
        cwd=d,
    )
    _openssl(
        "x509",
        "-req",
        "-in",
        f"{name}.csr",
        "-CA",
        f"{issuer}.pem",
        "-CAkey",
        f"{issuer}-key.pem",
        "-CAcreateserial",
        "-out",
        f"{name}-cert.pem",
        "-days",
        "1",
        "-extfile",
        f"{name}.ext",
        cwd=d,
    )


def make_certs(d: Path) -> dict[str, Path]:
    """CA, server cert (IP:127.0.0.1), client cert, wrong CA and its client cert, in `d`."""
    d.mkdir(parents=True, exist_ok=True)
    _make_ca(d, "ca")
    _make_ca(d, "wrong-ca")
    _make_leaf(d, "server", "ca", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    _make_leaf(d, "client", "ca", "extendedKeyUsage=clientAuth\n")
    _make_leaf(d, "stranger", "wrong-ca", "extendedKeyUsage=clientAuth\n")
    for p in d.glob("*-key.pem"):
        p.chmod(0o600)
    return {
        k: d / f
        for k, f in {
            "ca": "ca.pem",
            "server_cert": "server-cert.pem",
            "server_key": "server-key.pem",
            "client_cert": "client-cert.pem",
            "client_key": "client-key.pem",
            "stranger_cert": "stranger-cert.pem",
            "stranger_key": "stranger-key.pem",
        }.items()
    }


def dockerd_command(
    root: Path, port: int, certs: dict[str, Path] | None, bridge: str = "ibtls0"
) -> list[str]:
    """Pure: the second daemon's command line (nothing shared with the first daemon).

    `bridge` must exist beforehand (see own_bridge); never --bridge=none (it deletes docker0)."""
    cmd = [
        "dockerd",
        "--data-root",
        str(root / "data"),
        "--exec-root",
        str(root / "exec"),
        "--pidfile",
        str(root / "dockerd.pid"),
        "--config-file",
        str(root / "daemon.json"),
        "-H",
        f"unix://{root / 'docker.sock'}",
        "-H",
        f"tcp://127.0.0.1:{port}",
        f"--bridge={bridge}",
        "--iptables=false",
        "--ip6tables=false",
        "--ip-forward=false",
        "--ip-masq=false",
        "--storage-driver=vfs",
        "--containerd-namespace",
        "imagebench-tls",
        "--containerd-plugins-namespace",
        "imagebench-tls-plugins",
    ]
    if certs is not None:
        cmd += [
            "--tlsverify",
            f"--tlscacert={certs['ca']}",
            f"--tlscert={certs['server_cert']}",
            f"--tlskey={certs['server_key']}",
        ]
    else:
        cmd += ["--tls=false"]
    return cmd


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)


def own_bridge() -> str:
    """Create a bridge only the second daemon uses, with a free /30 from 10.254.0.0/16."""
    if shutil.which("ip") is None:
        raise EnvironmentProblem(
            "the ip command (iproute2) is needed to give the second daemon its own bridge"
        )
    used = _ip("-4", "addr").stdout
    for _ in range(50):
        n = int.from_bytes(os.urandom(2), "big") & 0x3FFC
        addr = f"10.254.{n >> 8}.{(n & 0xFC) + 1}"
        if addr.rsplit(".", 1)[0] + "." not in used:
            break
    name = "ibtls" + os.urandom(4).hex()  # 13 characters (interface names: at most 15)
    r = _ip("link", "add", "name", name, "type", "bridge")
    if r.returncode != 0:
        raise EnvironmentProblem(f"cannot create bridge {name}: {r.stderr.strip()}")
    _ip("addr", "add", f"{addr}/30", "dev", name)
    _ip("link", "set", name, "up")
    return name


def remove_bridge(name: str | None) -> None:
    if name and name.startswith("ibtls"):
        _ip("link", "del", name)


class SecondDaemon:
    """A throw-away dockerd; `stop()` is idempotent and removes everything it made."""

    def __init__(self, root: Path, port: int, certs: dict[str, Path] | None) -> None:
        self.root, self.port, self.certs = root, port, certs
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = root / "dockerd.log"
        self.bridge: str | None = None

    def start(self) -> None:
        exe = shutil.which("dockerd")
        if exe is None:
            raise EnvironmentProblem("dockerd is not on PATH")
        (self.root / "daemon.json").write_text("{}\n")
        self.bridge = own_bridge()
        cmd = dockerd_command(self.root, self.port, self.certs, self.bridge)
        cmd[0] = exe
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        sock = self.root / "docker.sock"
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ProbeFailed(f"second dockerd exited with {self.proc.returncode}: {self.log_tail()}")
            if sock.exists() and self._port_open() and self._unix_ping():
                return
            time.sleep(0.2)
        raise ProbeFailed(f"second dockerd did not answer within {START_TIMEOUT:.0f} s: {self.log_tail()}")

    def _port_open(self) -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
            return True
        return False

    def _unix_ping(self) -> bool:
        import docker  # lazy: the docker SDK costs ~0.8 s to import, and every probe module is loaded to list them

        try:
            c = docker.DockerClient(base_url=f"unix://{self.root / 'docker.sock'}", timeout=5, version="auto")
            try:
                return bool(c.ping())
            finally:
                c.close()
        except Exception:  # noqa: BLE001 - not answering, for any reason: not up
            return False

    def log_tail(self, n: int = 400) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-n:].replace("\n", " | ")
        return ""

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
        # its supervised containerd, should it have outlived dockerd
        pidfile = self.root / "exec" / "containerd" / "containerd.pid"
        with contextlib.suppress(OSError, ValueError, ProcessLookupError):
            os.kill(int(pidfile.read_text().strip()), signal.SIGKILL)
        self._unmount()
        shutil.rmtree(self.root, ignore_errors=True)
        remove_bridge(self.bridge)
        self.bridge = None

    def _unmount(self) -> None:
        with contextlib.suppress(OSError):
            mounts = [ln.split()[1] for ln in Path("/proc/self/mounts").read_text().splitlines()]
            for m in sorted((m for m in mounts if m.startswith(str(self.root))), key=len, reverse=True):
                subprocess.run(["umount", "-l", m], capture_output=True, timeout=10)


def try_client(base_url: str, tls: Any = None) -> tuple[bool, str]:
    """(admitted, what happened): admitted when ping and version both answer."""
    import docker  # lazy: the docker SDK costs ~0.8 s to import, and every probe module is loaded to list them

    try:
        c = docker.DockerClient(base_url=base_url, tls=tls, timeout=5, version="1.45")
        # requests would let REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE replace the CA given here
        c.api.trust_env = False
        try:
            c.ping()
            v = c.version()
            return True, f"API {v.get('ApiVersion')}"
        finally:
            c.close()
    except Exception as exc:  # noqa: BLE001 - refused, for any reason, is the finding (its reason kept)
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return False, f"{type(exc).__name__}: {msg[:160]}"


def try_cases(port: int, certs: dict[str, Path] | None) -> dict[str, tuple[bool, str]]:
    from docker.tls import TLSConfig  # lazy: the docker SDK costs ~0.8 s; listing probes loads this module

    if certs is None:
        return {"no_cert": try_client(f"http://127.0.0.1:{port}")}
    ca = str(certs["ca"])
    https = f"https://127.0.0.1:{port}"
    return {
        "no_cert": try_client(https, TLSConfig(ca_cert=ca, verify=True)),
        "wrong_ca": try_client(
            https,
            TLSConfig(
                client_cert=(str(certs["stranger_cert"]), str(certs["stranger_key"])), ca_cert=ca, verify=True
            ),
        ),
        "right_cert": try_client(
            https,
            TLSConfig(
                client_cert=(str(certs["client_cert"]), str(certs["client_key"])), ca_cert=ca, verify=True
            ),
        ),
        "plain_http": try_client(f"http://127.0.0.1:{port}"),
    }


@register
class TlsProbe(Probe):
    name = "tls"
    needs = ("dockerd", "openssl", "tool:ip")

    def __init__(self) -> None:
        self._daemon: SecondDaemon | None = None

    def after_build(self, ctx: ProbeContext) -> dict[str, float]:
        mode = (ctx.variant.run or {}).get("daemon", "")
        if mode not in ("plain", "tls"):
            raise UsageError(
                f"experiment {ctx.experiment.name}, variant {ctx.variant.name}: run.daemon must be "
                "'plain' or 'tls'"
            )
        # short path: unix socket paths are limited to 107 bytes
        root = Path(tempfile.mkdtemp(prefix="ib-dockerd-", dir="/tmp"))
        try:
            certs = make_certs(root / "certs") if mode == "tls" else None
            port = _free_port()
            self._daemon = SecondDaemon(root, port, certs)
            t0 = time.monotonic()
            self._daemon.start()
            started = time.monotonic() - t0
            cases = try_cases(port, certs)
        finally:
            if self._daemon is not None:
                self._daemon.stop()
            shutil.rmtree(root, ignore_errors=True)
        ctx.details[self.name] = {
            "mode": mode,
            "daemon_start_seconds": round(started, 2),
            "cases": {k: {"admitted": ok, "result": why} for k, (ok, why) in cases.items()},
        }
        out = {f"client_admitted_{k}": 1.0 if ok else 0.0 for k, (ok, _) in cases.items()}
        out["client_admitted"] = out["client_admitted_no_cert"]
        return out

    def cleanup(self, _ctx: ProbeContext) -> None:
        if self._daemon is not None:
            with contextlib.suppress(Exception):
                self._daemon.stop()
            self._daemon = None


def describe(cases: dict[str, tuple[bool, str]]) -> str:
    return json.dumps({k: ok for k, (ok, _) in cases.items()}, sort_keys=True)
