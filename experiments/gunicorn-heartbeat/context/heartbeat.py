"""gunicorn's worker heartbeat, measured: a temp file (created, then unlinked, like gunicorn's
WorkerTmp) whose metadata is updated every few milliseconds (os.fchmod, gunicorn <= 19; os.utime
on the fd, gunicorn >= 20), while a disk writer (dd with O_DSYNC, bounded in time and size) runs
in the same container. Prints one JSON line with the latency distribution.

  python heartbeat.py DIR [--seconds 5] [--interval-ms 10] [--op fchmod|utime]
                          [--writer-dir /var/tmp] [--writer-mib 64] [--no-writer]
"""

import argparse
import json
import os
import re
import subprocess
import tempfile
import time

p = argparse.ArgumentParser()
p.add_argument("dir")
p.add_argument("--seconds", type=float, default=5.0)
p.add_argument("--interval-ms", type=float, default=10.0)
p.add_argument("--op", choices=["fchmod", "utime"], default="fchmod")
p.add_argument("--writer-dir", default="/var/tmp")
p.add_argument("--writer-mib", type=int, default=64)
p.add_argument("--no-writer", action="store_true")
a = p.parse_args()

fd, name = tempfile.mkstemp(prefix="wgunicorn-", dir=a.dir)
os.unlink(name)

writer = None
if not a.no_writer:
    target = os.path.join(a.writer_dir, "imagebench-fill")
    script = (
        f'end=$(( $(date +%s) + {int(a.seconds) + 1} )); '
        f'while [ "$(date +%s)" -lt "$end" ]; do '
        f'dd if=/dev/zero of={target} bs=1M count={a.writer_mib} oflag=dsync 2>&1 | tail -n 1; '
        f'rm -f {target}; done'
    )
    writer = subprocess.Popen(["sh", "-c", script], stdout=subprocess.PIPE, text=True)
    time.sleep(0.3)  # let the writer get going

lat = []
spinner = 0
end = time.perf_counter() + a.seconds
while time.perf_counter() < end:
    spinner = 1 - spinner
    t0 = time.perf_counter()
    if a.op == "fchmod":
        os.fchmod(fd, spinner)
    else:
        now = time.monotonic()
        os.utime(fd, (now, now))
    lat.append(time.perf_counter() - t0)
    time.sleep(a.interval_ms / 1000.0)

written = 0
if writer is not None:
    try:
        out, _ = writer.communicate(timeout=a.seconds + 30)
    except subprocess.TimeoutExpired:
        writer.kill()
        out, _ = writer.communicate()
    written = sum(int(n) for n in re.findall(r"^(\d+) bytes", out, re.M))
    try:
        os.unlink(os.path.join(a.writer_dir, "imagebench-fill"))
    except OSError:
        pass

lat.sort()


def pct(q):
    return lat[min(len(lat) - 1, max(0, int(round(q / 100 * len(lat))) - 1))]


print(json.dumps({"n": len(lat), "p50": pct(50), "p99": pct(99), "max": lat[-1],
                  "mean": sum(lat) / len(lat), "writer_bytes": written, "dir": a.dir, "op": a.op}))
