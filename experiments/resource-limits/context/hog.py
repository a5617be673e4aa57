"""Runaway workloads, and the CPU-bound neighbour whose throughput they may take.

python hog.py mem MIB               allocate MIB MiB in 8 MiB steps (pages touched), print "allocated N"
python hog.py cpu SECONDS           busy loop for SECONDS, print "ops N rate R cpu S"
                                    (S = CPU seconds per wall second)
python hog.py spin WORKERS SECONDS  the same fixed loop in WORKERS processes at once; prints
                                    "spinning WORKERS" when they start, then the total
                                    "ops N rate R cpu S" (S summed over the workers)
"""

import multiprocessing as mp
import sys
import time

STEP = 8
CHUNK = 10000


def mem(limit_mib: int) -> None:
    hoard = []
    allocated = 0
    while allocated < limit_mib:
        hoard.append(b"\x01" * (STEP * 1024 * 1024))  # written, so the pages really count
        allocated += STEP
        print(f"allocated {allocated}", flush=True)
    print(f"done {allocated}", flush=True)
    time.sleep(0.3)


def loop(seconds: float) -> tuple[int, float, float]:
    """(iterations, wall seconds, CPU seconds) of the fixed busy loop run for `seconds`."""
    ops = 0
    c0 = time.process_time()
    t0 = time.perf_counter()
    end = t0 + seconds
    while True:
        for _ in range(CHUNK):
            ops += 1
        if time.perf_counter() >= end:
            break
    return ops, time.perf_counter() - t0, time.process_time() - c0


def cpu(seconds: float) -> None:
    ops, elapsed, cpu_s = loop(seconds)
    print(f"ops {ops} rate {ops / elapsed:.1f} cpu {cpu_s / elapsed:.4f}", flush=True)


def _worker(seconds: float, start, out) -> None:
    start.wait()
    out.put(loop(seconds))


def spin(workers: int, seconds: float) -> None:
    start = mp.Event()
    out: mp.Queue = mp.Queue()
    procs = [mp.Process(target=_worker, args=(seconds, start, out)) for _ in range(workers)]
    for p in procs:
        p.start()
    print(f"spinning {workers}", flush=True)
    start.set()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    ops = sum(r[0] for r in results)
    elapsed = max(r[1] for r in results)
    cpu_s = sum(r[2] for r in results)
    print(f"ops {ops} rate {ops / elapsed:.1f} cpu {cpu_s / elapsed:.4f}", flush=True)


if __name__ == "__main__":
    kind = sys.argv[1]
    if kind == "mem":
        mem(int(sys.argv[2]))
    elif kind == "cpu":
        cpu(float(sys.argv[2]))
    elif kind == "spin":
        spin(int(sys.argv[2]), float(sys.argv[3]))
    else:
        raise SystemExit(f"unknown workload {kind!r} (mem, cpu or spin)")
