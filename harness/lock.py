"""An exclusive lock on the daemon for the whole run: a concurrent prune would ruin both runs."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypedDict, cast

from harness import clock
from harness.errors import LockBusy
from harness.paths import state_dir


def lock_path() -> Path:
    """One lock file per daemon endpoint (DOCKER_HOST), so runs against other daemons don't wait."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    key = hashlib.sha256(host.encode()).hexdigest()[:12]
    return state_dir() / f"daemon-{key}.lock"


class Holder(TypedDict, total=False):
    """What the lock file says about the run holding it."""

    pid: int
    owner: str
    since: str


def holder(path: Path | None = None) -> Holder | None:
    path = path or lock_path()
    try:
        return cast(Holder | None, json.loads(path.read_text() or "null"))
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def daemon_lock(
    *,
    wait: bool = True,
    owner: str = "",
    on_wait: Callable[[str], None] | None = None,
    timeout: float | None = None,
) -> Iterator[Path]:
    """Hold the daemon lock. With wait=False raise LockBusy at once when another run holds it."""
    path = lock_path()
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            info = holder(path) or {}
            who = f"pid {info.get('pid')} ({info.get('owner', '?')}) since {info.get('since', '?')}"
            if not wait:
                raise LockBusy(
                    f"another imagebench run holds the daemon lock: {who}",
                    hint="wait for it, or drop --no-wait to queue",
                ) from None
            if on_wait:
                on_wait(f"waiting for the daemon lock held by {who}")
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if deadline is not None and time.monotonic() > deadline:
                        raise LockBusy(f"gave up waiting for the daemon lock held by {who}") from None
                    time.sleep(0.5)
        os.ftruncate(fd, 0)
        os.pwrite(
            fd,
            json.dumps(
                {
                    "pid": os.getpid(),
                    "owner": owner,
                    "since": clock.utcnow(micro=False),
                }
            ).encode(),
            0,
        )
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing releases the flock
