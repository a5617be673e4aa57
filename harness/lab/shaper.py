"""Network profiles, applied by a server-side shaper: an asyncio TCP proxy in front of the lab's
index and apt proxy, with one token bucket (one "link") on the downstream bytes and a delay
before each request is forwarded.

    python -m harness.lab.shaper --profile 100mbit --route 3141:13141 --route 3142:13142

The public ports stay fixed while the profile changes (restart the shaper only).  This kernel
has no netem, so latency comes from the server side anyway (see lab-facts.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import signal
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from harness.errors import LabError
from harness.lab.state import Measurement, ProfileRecord

READ_CHUNK = 16 * 1024


@dataclass(frozen=True)
class Profile:
    name: str
    rate_bps: float  # bits per second on the downstream; 0 = unlimited
    latency_s: float  # added before each request is forwarded
    burst_bytes: int = 32 * 1024

    def to_dict(self) -> ProfileRecord:
        return ProfileRecord(
            name=self.name, rate_bps=self.rate_bps, latency_s=self.latency_s, burst_bytes=self.burst_bytes
        )


PROFILES: dict[str, Profile] = {
    "unlimited": Profile("unlimited", 0.0, 0.0),
    "100mbit": Profile("100mbit", 100e6, 0.020),
    "20mbit": Profile("20mbit", 20e6, 0.040),
}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise LabError(f"unknown network profile {name!r}", hint=f"use one of: {', '.join(PROFILES)}")


class TokenBucket:
    """A shared link: reserve(n) returns how long to wait before sending n bytes."""

    def __init__(self, rate_bps: float, burst_bytes: int, clock: Callable[[], float] = time.monotonic):
        self.rate = rate_bps / 8.0  # bytes per second
        self.burst = burst_bytes
        self.clock = clock
        self._t = clock()  # the time at which the link is free again

    def reserve(self, nbytes: int) -> float:
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        start = max(self._t, now - self.burst / self.rate)
        self._t = start + nbytes / self.rate
        return max(0.0, self._t - now)


class Shaper:
    def __init__(self, profile: Profile, routes: list[tuple[int, str, int]], host: str = "127.0.0.1"):
        self.profile = profile
        self.routes = routes  # (listen_port, upstream_host, upstream_port)
        self.host = host
        self.bucket = TokenBucket(profile.rate_bps, profile.burst_bytes)
        self.servers: list[asyncio.base_events.Server] = []

    async def start(self) -> None:
        for listen, up_host, up_port in self.routes:
            srv = await asyncio.start_server(
                functools.partial(self._handle, host=up_host, port=up_port),
                self.host,
                listen,
                reuse_address=True,
            )
            self.servers.append(srv)

    async def close(self) -> None:
        for s in self.servers:
            s.close()
            await s.wait_closed()

    async def _handle(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter, host: str, port: int) -> None:
        try:
            ur, uw = await asyncio.open_connection(host, port)
        except OSError:
            cw.close()
            return
        state = {"awaiting_request": True}
        up = asyncio.create_task(self._upstream(cr, uw, state))
        down = asyncio.create_task(self._downstream(ur, cw, state))
        _done, pending = await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
        # let the response finish after the client half-closes; stop when either side ends
        if down in pending:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(down, timeout=600)
        for t in (up, down):
            t.cancel()
        for w in (uw, cw):
            with contextlib.suppress(Exception):
                w.close()

    async def _upstream(
        self, cr: asyncio.StreamReader, uw: asyncio.StreamWriter, state: dict[str, bool]
    ) -> None:
        """client -> server: delay the first bytes of each request by the profile's latency."""
        while True:
            data = await cr.read(READ_CHUNK)
            if not data:
                with contextlib.suppress(Exception):
                    uw.write_eof()
                return
            if state["awaiting_request"] and self.profile.latency_s > 0:
                await asyncio.sleep(self.profile.latency_s)
            state["awaiting_request"] = False
            uw.write(data)
            await uw.drain()

    async def _downstream(
        self, ur: asyncio.StreamReader, cw: asyncio.StreamWriter, state: dict[str, bool]
    ) -> None:
        """server -> client: through the shared token bucket."""
        while True:
            data = await ur.read(READ_CHUNK)
            if not data:
                return
            state["awaiting_request"] = True
            delay = self.bucket.reserve(len(data))
            if delay > 0:
                await asyncio.sleep(delay)
            cw.write(data)
            await cw.drain()


def parse_route(text: str) -> tuple[int, str, int]:
    """'3141:13141' or '3141:127.0.0.1:13141' -> (3141, '127.0.0.1', 13141)."""
    parts = text.split(":")
    if len(parts) == 2:
        return int(parts[0]), "127.0.0.1", int(parts[1])
    if len(parts) == 3:
        return int(parts[0]), parts[1], int(parts[2])
    raise ValueError(f"bad route {text!r}: want LISTEN:PORT or LISTEN:HOST:PORT")


async def _run(profile: Profile, routes: list[tuple[int, str, int]], host: str) -> None:
    shaper = Shaper(profile, routes, host)
    await shaper.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"imagebench shaper {profile.name}: {routes}", flush=True)
    await stop.wait()
    await shaper.close()


def measure(url: str, nbytes: int = 16 * 1024 * 1024, timeout: float = 120.0) -> Measurement:
    """Download nbytes from the index's /-/blob through the shaper: rate and time to first byte."""
    sep = "&" if "?" in url else "?"
    t0 = time.perf_counter()
    got = 0
    with urllib.request.urlopen(f"{url}{sep}bytes={nbytes}", timeout=timeout) as r:
        first = r.read(1)
        t1 = time.perf_counter()
        got = len(first)
        for block in iter(lambda: r.read(READ_CHUNK), b""):
            got += len(block)
    t2 = time.perf_counter()
    if got != nbytes:
        raise LabError(f"network measurement got {got} of {nbytes} bytes from {url}")
    transfer = max(t2 - t1, 1e-9)
    return {
        "bytes": got,
        "seconds": round(t2 - t0, 4),
        "ttfb_s": round(t1 - t0, 4),
        "measured_bps": round((got - 1) * 8 / transfer, 1),
    }


def within(measured_bps: float, nominal_bps: float, tolerance: float = 0.15) -> bool:
    return nominal_bps <= 0 or abs(measured_bps - nominal_bps) <= tolerance * nominal_bps


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.lab.shaper", description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="unlimited", choices=sorted(PROFILES))
    ap.add_argument(
        "--route",
        action="append",
        required=True,
        type=parse_route,
        help="LISTEN:UPSTREAM_PORT or LISTEN:HOST:PORT (repeatable)",
    )
    ap.add_argument("--host", default="127.0.0.1")
    args = ap.parse_args(argv)
    asyncio.run(_run(PROFILES[args.profile], args.route, args.host))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
