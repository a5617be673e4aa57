"""The background worker: does a unit of work every 0.2 s; exits 0 on SIGTERM."""

import signal
import time


def on_term(signum, frame):
    raise SystemExit(0)


signal.signal(signal.SIGTERM, on_term)
print("worker ready", flush=True)
n = 0
while True:
    n += 1
    time.sleep(0.2)
