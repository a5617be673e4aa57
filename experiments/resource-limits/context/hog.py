"""Runaway workloads.

  python hog.py mem MIB      allocate MIB MiB in 8 MiB steps (pages touched), print "allocated N"
  python hog.py cpu SECONDS  busy loop for SECONDS, print "ops N rate R cpu S"
                           (S = CPU seconds per wall second)
"""

import sys
import time

STEP = 8


def mem(limit_mib: int) -> None:
    hoard = []
    allocated = 0
    while allocated < limit_mib:
        hoard.append(b"\x01" * (STEP * 1024 * 1024))  # written, so the pages really count
        allocated += STEP
        print(f"allocated {allocated}", flush=True)
    print(f"done {allocated}", flush=True)
    time.sleep(0.3)


def cpu(seconds: float) -> None:
    ops = 0
    c0 = time.process_time()
    t0 = time.perf_counter()
    end = t0 + seconds
    while True:
        for _ in range(10000):
            ops += 1
        if time.perf_counter() >= end:
            break
    elapsed = time.perf_counter() - t0
    share = (time.process_time() - c0) / elapsed  # CPU seconds per wall second
    print(f"ops {ops} rate {ops / elapsed:.1f} cpu {share:.4f}", flush=True)


if __name__ == "__main__":
    kind, amount = sys.argv[1], sys.argv[2]
    if kind == "mem":
        mem(int(amount))
    else:
        cpu(float(amount))
