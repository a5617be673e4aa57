"""Open the rendered index.html in headless Chromium: no console errors, no failed or external
requests, and a screenshot (desktop and phone width) saved under the test's tmp dir.

Needs only Debian's `chromium` (no Docker). Talks to it over the DevTools protocol with
websocket-client; skipped, with the reason, when either is missing.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from harness.report import render_report

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "results"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--hide-scrollbars",
    "--mute-audio",
]

websocket = pytest.importorskip(
    "websocket", reason="websocket-client is not installed (pip install '.[test]')"
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)"
)


class DevTools:
    """The smallest DevTools-protocol client this test needs: send a command, collect events."""

    def __init__(self, ws_url: str) -> None:
        self.ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict] = []

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        my_id = self.next_id
        self.ws.send(json.dumps({"id": my_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def wait_for(self, method: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        for ev in self.events:
            if ev.get("method") == method:
                return ev
        while time.monotonic() < deadline:
            self.ws.settimeout(max(0.1, deadline - time.monotonic()))
            msg = json.loads(self.ws.recv())
            self.events.append(msg)
            if msg.get("method") == method:
                return msg
        raise TimeoutError(method)

    def drain(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.ws.settimeout(max(0.05, end - time.monotonic()))
            try:
                self.events.append(json.loads(self.ws.recv()))
            except websocket.WebSocketTimeoutException:
                break

    def close(self) -> None:
        self.ws.close()


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report")
    return render_report(FIXTURE, out)["html"]


@pytest.fixture
def browser(tmp_path):
    profile = tmp_path / "profile"
    proc = subprocess.Popen(
        [
            CHROMIUM,
            *FLAGS,
            f"--user-data-dir={profile}",
            "--remote-debugging-port=0",
            "--remote-allow-origins=*",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode(errors="replace")[-2000:] if proc.stderr else ""
                pytest.fail(f"chromium did not start: {err}")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
            pages = [t for t in json.load(resp) if t.get("type") == "page"]
        yield pages[0]["webSocketDebuggerUrl"]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def open_page(ws_url: str, html: Path, *, width: int, height: int, mobile: bool) -> tuple[DevTools, dict]:
    dt = DevTools(ws_url)
    for domain in ("Page", "Runtime", "Log", "Network"):
        dt.call(f"{domain}.enable")
    dt.call(
        "Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=mobile
    )
    dt.call("Page.navigate", url=html.as_uri())
    dt.wait_for("Page.loadEventFired")
    dt.drain(0.5)
    metrics = dt.call(
        "Runtime.evaluate",
        returnByValue=True,
        expression=(
            "JSON.stringify({scrollWidth: document.documentElement.scrollWidth,"
            " innerWidth: window.innerWidth, svgs: document.querySelectorAll('svg').length,"
            " sections: document.querySelectorAll('section.experiment').length,"
            " claimRows: document.querySelectorAll('#claims tbody tr').length})"
        ),
    )
    return dt, json.loads(metrics["result"]["value"])


def problems(events: list[dict]) -> list[str]:
    found = []
    for ev in events:
        method, p = ev.get("method"), ev.get("params", {})
        if method == "Runtime.exceptionThrown":
            found.append(f"exception: {p['exceptionDetails'].get('text')}")
        elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            found.append(f"console.{p['type']}: {p.get('args')}")
        elif method == "Log.entryAdded" and p["entry"].get("level") == "error":
            found.append(f"log error: {p['entry'].get('text')} {p['entry'].get('url', '')}")
        elif method == "Network.loadingFailed":
            found.append(f"failed request: {p.get('errorText')} ({p.get('type')})")
        elif method == "Network.requestWillBeSent":
            url = p["request"]["url"]
            if not url.startswith(("file:", "data:", "about:")):
                found.append(f"external request: {url}")
    return found


def screenshot(dt: DevTools, path: Path) -> Path:
    shot = dt.call("Page.captureScreenshot", format="png", captureBeyondViewport=False)
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


def test_report_opens_cleanly_on_desktop(browser, report, tmp_path):
    """The HTML report opens in a headless browser at desktop width with no console errors or broken images."""
    dt, page = open_page(browser, report, width=1280, height=900, mobile=False)
    try:
        assert problems(dt.events) == []
        assert page["svgs"] > 5
        assert page["sections"] >= 7
        assert page["claimRows"] == 8  # one per experiment and machine of the fixture
        shot = screenshot(dt, tmp_path / "report-desktop.png")
        dt.call("Runtime.evaluate", expression="document.getElementById('claims').scrollIntoView()")
        dt.drain(0.3)
        screenshot(dt, tmp_path / "report-desktop-claims.png")
        dt.call(
            "Runtime.evaluate",
            expression="document.querySelector('section.experiment figure').scrollIntoView()",
        )
        dt.drain(0.3)
        screenshot(dt, tmp_path / "report-desktop-plot.png")
    finally:
        dt.close()
    assert shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")


def test_report_fits_a_phone(browser, report, tmp_path):
    """On a phone-width viewport the report has no errors and the page does not scroll sideways."""
    dt, page = open_page(browser, report, width=390, height=844, mobile=True)
    try:
        assert problems(dt.events) == []
        # wide tables scroll inside their own box; the page itself does not scroll sideways
        assert page["scrollWidth"] <= page["innerWidth"] + 1, page
        shot = screenshot(dt, tmp_path / "report-phone.png")
        dt.call("Runtime.evaluate", expression="document.getElementById('claims').scrollIntoView()")
        dt.drain(0.3)
        screenshot(dt, tmp_path / "report-phone-claims.png")
    finally:
        dt.close()
    assert shot.stat().st_size > 5_000
    print(f"screenshot: {shot}")


def test_screenshot_flag_without_devtools(report, tmp_path):
    """The plain CLI route (`--screenshot`) works too, for debugging without a websocket client."""
    shot = tmp_path / "cli.png"
    proc = subprocess.run(
        [
            CHROMIUM,
            *FLAGS,
            f"--user-data-dir={tmp_path / 'p'}",
            f"--screenshot={shot}",
            "--window-size=1280,2000",
            report.as_uri(),
        ],
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    assert shot.exists() and shot.stat().st_size > 10_000
