"""Prints the arguments it got, then stays up for a moment (so PID 1 can be inspected)."""

import json
import signal
import sys
import time


def on_term(signum, frame):
    raise SystemExit(0)


signal.signal(signal.SIGTERM, on_term)
print("app argv:", json.dumps(sys.argv), flush=True)
time.sleep(0.5)
