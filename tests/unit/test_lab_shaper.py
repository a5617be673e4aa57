"""The server-side shaper: token bucket arithmetic and the rate measured on loopback."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest

from harness.errors import LabError
from harness.lab import index, shaper


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_token_bucket_is_a_link():
    """The token bucket queues sends like a link of the given rate, no credit beyond the burst."""
    now = [0.0]
    b = shaper.TokenBucket(8_000_000, burst_bytes=0, clock=lambda: now[0])  # 1 MB/s
    assert b.reserve(500_000) == pytest.approx(0.5)
    assert b.reserve(500_000) == pytest.approx(1.0)  # queued behind the first
    now[0] = 5.0  # idle: no credit beyond the burst
    assert b.reserve(1_000_000) == pytest.approx(1.0)


def test_unlimited_bucket_never_waits():
    """An unlimited token bucket never waits."""
    assert shaper.TokenBucket(0, 0).reserve(10**9) == 0.0


def test_profiles():
    """Network profiles give rate and latency; an unknown profile is a LabError listing the known ones."""
    p = shaper.get_profile("100mbit")
    assert p.rate_bps == 100e6 and p.latency_s == pytest.approx(0.020)
    with pytest.raises(LabError, match=r"unknown network profile 'fast'.*unlimited"):
        shaper.get_profile("fast")


def test_parse_route():
    """parse_route reads listen:port and listen:host:port routes; junk is a ValueError."""
    assert shaper.parse_route("3141:13141") == (3141, "127.0.0.1", 13141)
    assert shaper.parse_route("1:10.0.0.2:2") == (1, "10.0.0.2", 2)
    with pytest.raises(ValueError):
        shaper.parse_route("x")


def test_within():
    """within accepts a measured rate within 15 % of the profile's; unlimited accepts anything."""
    assert shaper.within(90e6, 100e6) and not shaper.within(80e6, 100e6)
    assert shaper.within(5e9, 0)  # unlimited: anything goes


@pytest.fixture
def shaped(tmp_path):
    """index on a free port, shaper (20mbit, 40 ms) in front, in a thread with its own loop."""
    backend, front = _free_port(), _free_port()
    srv = index.make_server(tmp_path, backend, upstream=None)
    index.serve_in_thread(srv)
    profile = shaper.get_profile("20mbit")
    loop = asyncio.new_event_loop()
    s = shaper.Shaper(profile, [(front, "127.0.0.1", backend)])
    loop.run_until_complete(s.start())
    t = threading.Thread(target=loop.run_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{front}", profile
    loop.call_soon_threadsafe(loop.stop)
    t.join(5)
    srv.shutdown()
    srv.server_close()


def test_measured_rate_within_15_percent(shaped):
    """Through the shaper a download runs within 15 % of the profile's rate, with its latency."""
    url, profile = shaped
    m = shaper.measure(f"{url}/-/blob", 4 * 1024 * 1024)
    assert shaper.within(m["measured_bps"], profile.rate_bps), m
    assert m["ttfb_s"] >= profile.latency_s * 0.9


def test_latency_per_request(shaped):
    """The shaper adds the profile's latency to every request."""
    url, profile = shaped
    t0 = time.perf_counter()
    for _ in range(3):
        shaper.measure(f"{url}/-/blob", 10)
    assert time.perf_counter() - t0 >= 3 * profile.latency_s
