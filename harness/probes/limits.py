"""limits: a memory hog and a CPU-bound loop, with and without --memory / --cpus.

memory: runs `mem_command` (allocates `mem_mib` MiB in 8 MiB steps, printing "allocated N"),
polls the container's cgroup peak (cgroup v1 memory.max_usage_in_bytes, v2 memory.peak; the
stats API as a fallback) until it exits (bounded), then records peak_memory_bytes,
allocated_bytes (what the app reported before it stopped), oom_killed (State.OOMKilled) and
exit_code.

cpu: runs `cpu_command` (a busy loop for `cpu_seconds`, printing "ops N rate R cpu S") and records
cpu_ops_per_second and cpu_share (CPU seconds per wall second: the limit's direct effect, robust to
other load on the host); with a CPU limit it also runs the same loop once without limits (the
reference) and records cpu_throughput_ratio = limited / reference (1.0 without a limit).

neighbour: what the article says limits are for -- keeping one container from starving the
others. A neighbour container (no limits) runs a fixed CPU-bound loop in `neighbour_workers`
processes (default: the engine's CPU count) for `neighbour_seconds`, alone, then beside a hog
container running the same loop in `hog_workers` processes (default: twice the CPU count) under
the variant's limits, then alone again. neighbour_throughput_ratio = its iterations/s beside the
hog / the mean of its two runs alone: an observation that can come out anywhere from 0 to 1 (the
kernel shares CPU between containers, so an unlimited hog takes about its fair share of a busy
host; a limit caps it below that). neighbour_ops_per_second is the rate beside the hog.
neighbour_cpu_alone is the CPU the neighbour got alone per CPU it asked for (CPU seconds per wall
second / workers): near 1 on a free host; well below, other load decides the ratios, not limits.

Limits come from run options `memory = "64m"`, `cpus = 0.5` (docker run flags, swap disabled:
memswap = memory) or, with `compose = true`, from a Compose file's deploy.resources.limits.
Other options: mem_mib = 256, cpu_seconds = 2, workloads = ["mem", "cpu"] (or "neighbour"),
neighbour_workers, hog_workers, neighbour_seconds = 3, timeout = 60.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from harness.probes import ProbeContext, register
from harness.probes._containers import (
    ComposeService,
    ContainerProbe,
    Owned,
    RunOptions,
    compose_command,
    image_ref,
    parse_bytes,
    wait_exit,
    wait_log,
)

if TYPE_CHECKING:
    from docker.models.containers import Container


class Spin(TypedDict, total=False):
    """The neighbour workload: workers of the neighbour and of the hog, seconds, the engine's CPUs."""

    neighbour_workers: int
    hog_workers: int
    seconds: float
    engine_cpus: int


MEM_COMMAND = ["python", "/app/hog.py", "mem", "{mem_mib}"]
CPU_COMMAND = ["python", "/app/hog.py", "cpu", "{cpu_seconds}"]
SPIN_COMMAND = ["python", "/app/hog.py", "spin", "{workers}", "{seconds}"]


def throughput_ratio(beside: float, alone: list[float]) -> float | None:
    """The neighbour's rate beside the hog over the mean of its rates alone (pure); None without both."""
    ok = [a for a in alone if a > 0]
    if not ok or beside < 0:
        return None
    return beside / (sum(ok) / len(ok))


def cgroup_peak_files(cid: str) -> list[Path]:
    root = Path("/sys/fs/cgroup")
    return [
        root / "memory" / "docker" / cid / "memory.max_usage_in_bytes",  # v1, cgroupfs driver
        root / "memory" / "system.slice" / f"docker-{cid}.scope" / "memory.max_usage_in_bytes",  # v1, systemd
        root / "system.slice" / f"docker-{cid}.scope" / "memory.peak",  # v2, systemd
        root / "docker" / cid / "memory.peak",  # v2, cgroupfs
    ]


def parse_hog_output(text: str) -> dict[str, float]:
    """'allocated 64' lines (MiB) and an 'ops N rate R' line -> values (pure)."""
    out: dict[str, float] = {}
    alloc = [int(m) for m in re.findall(r"^allocated (\d+)", text, re.M)]
    if alloc:
        out["allocated_bytes"] = float(max(alloc) * 1024 * 1024)
    m = re.search(r"^ops (\d+) rate ([\d.]+)(?: cpu ([\d.]+))?", text, re.M)
    if m:
        out["ops"] = float(m.group(1))
        out["cpu_ops_per_second"] = float(m.group(2))
        if m.group(3):
            out["cpu_share"] = float(m.group(3))
    return out


def fill(cmd: list[str], values: Mapping[str, object]) -> list[str]:
    return [str(part).format(**values) for part in cmd]


class PeakSampler:
    """Polls a container's cgroup peak memory in a thread until stopped."""

    def __init__(self, container: Any, interval: float = 0.05) -> None:
        self.container = container
        self.interval = interval
        self.peak = 0
        self.source = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _read(self) -> int | None:
        for f in cgroup_peak_files(self.container.id):
            try:
                value = int(f.read_text().strip())
                self.source = str(f.parent.parent.name) + "/" + f.name
                return value
            except (OSError, ValueError):
                continue
        try:
            stats = self.container.stats(stream=False, one_shot=True)
            mem = stats.get("memory_stats") or {}
            usage = mem.get("max_usage") or mem.get("usage")
            if usage:
                self.source = "stats"
                return int(usage)
        except Exception:  # noqa: BLE001 - no stats (container gone): no peak from this source
            pass
        return None

    def _run(self) -> None:
        while not self._stop.is_set():
            value = self._read()
            if value:
                self.peak = max(self.peak, value)
            self._stop.wait(self.interval)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(timeout=5)
        return self.peak


@register
class LimitsProbe(ContainerProbe):
    name = "limits"

    def _limits(self, opts: RunOptions) -> dict[str, object]:
        kw: dict[str, object] = {}
        mem = parse_bytes(opts.get("memory"))
        if mem:
            kw["mem_limit"] = mem
            kw["memswap_limit"] = parse_bytes(opts.get("memory_swap")) or mem
        if opts.get("cpus"):
            kw["nano_cpus"] = int(float(opts["cpus"]) * 1e9)
        return kw

    def _containers(
        self,
        ctx: ProbeContext,
        owned: Owned,
        opts: RunOptions,
        commands: dict[str, list[str]],
        details: dict[str, object],
    ) -> dict[str, Container]:
        image = image_ref(ctx)
        if opts.get("compose"):
            limits: dict[str, str] = {}
            if opts.get("memory"):
                limits["memory"] = str(opts["memory"])
            if opts.get("cpus"):
                limits["cpus"] = str(opts["cpus"])
            services: dict[str, ComposeService] = {}
            for name, cmd in commands.items():
                svc: ComposeService = {"image": image, "command": cmd}
                if limits:
                    svc["deploy"] = {"resources": {"limits": limits}}
                    if "memory" in limits:
                        svc["memswap_limit"] = limits["memory"]
                services[name] = svc
            ids = owned.compose_up(services, start=False)
            details["how"] = "compose deploy.resources.limits"
            return {name: ctx.client.containers.get(cid) for name, cid in ids.items()}
        details["how"] = "docker run flags" if self._limits(opts) else "no limits"
        return {
            name: owned.create(image, command=cmd, **self._limits(opts)) for name, cmd in commands.items()
        }

    def after_build(self, ctx: ProbeContext) -> dict[str, float]:
        opts, owned, details = self.start(ctx)
        if opts.get("compose") and compose_command() is None:
            details["not_measured"] = "docker compose (v2) is not available"
            return {}
        fmt = {"mem_mib": int(opts.get("mem_mib", 256)), "cpu_seconds": float(opts.get("cpu_seconds", 2))}
        workloads = list(opts.get("workloads") or ["mem", "cpu"])
        commands = {}
        if "mem" in workloads:
            commands["mem"] = fill(list(opts.get("mem_command") or MEM_COMMAND), fmt)
        if "cpu" in workloads:
            commands["cpu"] = fill(list(opts.get("cpu_command") or CPU_COMMAND), fmt)
        timeout = float(opts.get("timeout", 60))
        spin: Spin = {}
        if "neighbour" in workloads:
            ncpu = int(ctx.client.info().get("NCPU") or 1)
            seconds = float(opts.get("neighbour_seconds", 3))
            spin = {
                "neighbour_workers": int(opts.get("neighbour_workers") or ncpu),
                "hog_workers": int(opts.get("hog_workers") or 2 * ncpu),
                "seconds": seconds,
                "engine_cpus": ncpu,
            }
            hog_seconds = 3 * seconds + timeout  # outlasts the three neighbour runs; killed after them
            commands["hog"] = fill(SPIN_COMMAND, {"workers": spin["hog_workers"], "seconds": hog_seconds})
        containers = self._containers(ctx, owned, opts, commands, details)
        values: dict[str, float] = {}
        if "mem" in containers:
            values.update(self._mem(containers["mem"], timeout, details))
        if "cpu" in containers:
            values.update(self._cpu(ctx, owned, containers["cpu"], commands["cpu"], timeout, details))
        if "hog" in containers:
            values.update(self._neighbour(ctx, owned, containers["hog"], spin, timeout, details))
        return values

    def _neighbour(
        self,
        ctx: ProbeContext,
        owned: Owned,
        hog: Any,
        spin: Spin,
        timeout: float,
        details: dict[str, object],
    ) -> dict[str, float]:
        """The neighbour's throughput alone, beside the (limited or unlimited) hog, and alone again."""
        command = fill(SPIN_COMMAND, {"workers": spin["neighbour_workers"], "seconds": spin["seconds"]})
        hog.reload()
        hc = hog.attrs.get("HostConfig", {})
        runs: list[dict[str, object]] = []
        info: dict[str, object] = {
            **spin,
            "hog_nano_cpus": hc.get("NanoCpus") or None,
            "hog_cpu_quota": hc.get("CpuQuota") or None,
            "runs": runs,
        }
        details["neighbour"] = info

        def run(label: str) -> dict[str, float]:
            c = owned.create(image_ref(ctx), command=command)
            c.start()
            code = wait_exit(c, timeout)
            out = parse_hog_output(c.logs().decode("utf-8", "replace"))
            runs.append({"when": label, "exit_code": code, **out})
            c.remove(force=True)
            return out

        alone = [run("alone")]
        hog.start()
        if not wait_log(hog, "spinning", 20):
            info["error"] = "the hog never started spinning"
            return {}
        time.sleep(0.5)
        beside = run("beside the hog")
        hog.reload()
        info["hog_status"] = hog.attrs.get("State", {}).get("Status")
        if info["hog_status"] != "running":
            info["error"] = f"the hog was {info['hog_status']} after the neighbour's run beside it"
            return {}
        hog.kill()
        alone.append(run("alone"))
        rates = [a["cpu_ops_per_second"] for a in alone if "cpu_ops_per_second" in a]
        if "cpu_ops_per_second" not in beside or not rates:
            info["error"] = "a neighbour run printed no rate"
            return {}
        ratio = throughput_ratio(beside["cpu_ops_per_second"], rates)
        values = {"neighbour_ops_per_second": beside["cpu_ops_per_second"]}
        shares = [a["cpu_share"] for a in alone if "cpu_share" in a]
        if shares:  # how much of the CPUs it asked for the neighbour got alone: is the host free?
            values["neighbour_cpu_alone"] = sum(shares) / len(shares) / spin["neighbour_workers"]
        if ratio is not None:
            values["neighbour_throughput_ratio"] = ratio
        return values

    def _mem(self, c: Any, timeout: float, details: dict[str, object]) -> dict[str, float]:
        """The memory hog under its limit: OOM kill, exit code, sampled peak and what it allocated."""
        values: dict[str, float] = {}
        c.reload()
        hc = c.attrs.get("HostConfig", {})
        details["memory_limit_bytes"] = hc.get("Memory") or None
        sampler = PeakSampler(c)
        c.start()
        sampler.start()
        code = wait_exit(c, timeout)
        peak = sampler.stop()
        c.reload()
        st = c.attrs.get("State", {})
        out = parse_hog_output(c.logs().decode("utf-8", "replace"))
        details["mem"] = {"exit_code": code, "peak_source": sampler.source, "timed_out": code is None}
        values["oom_killed"] = float(bool(st.get("OOMKilled")))
        if code is not None:
            values["exit_code"] = float(code)
        if peak:
            values["peak_memory_bytes"] = float(peak)
        if "allocated_bytes" in out:
            values["allocated_bytes"] = out["allocated_bytes"]
        return values

    def _cpu(
        self,
        ctx: ProbeContext,
        owned: Any,
        c: Any,
        command: list[str],
        timeout: float,
        details: dict[str, object],
    ) -> dict[str, float]:
        """The CPU loop under its limit: its share and rate, and its throughput against an
        unlimited reference container (1.0 when it was not limited)."""
        values: dict[str, float] = {}
        c.reload()
        nano = c.attrs.get("HostConfig", {}).get("NanoCpus") or 0
        quota = c.attrs.get("HostConfig", {}).get("CpuQuota") or 0
        limited = bool(nano or quota)
        c.start()
        wait_exit(c, timeout)
        out = parse_hog_output(c.logs().decode("utf-8", "replace"))
        cpu: dict[str, object] = {"nano_cpus": nano or None, "ops": out.get("ops")}
        details["cpu"] = cpu
        if "cpu_share" in out:
            values["cpu_share"] = out["cpu_share"]
        if "cpu_ops_per_second" not in out:
            return values
        values["cpu_ops_per_second"] = out["cpu_ops_per_second"]
        if not limited:
            values["cpu_throughput_ratio"] = 1.0
            return values
        ref = owned.create(image_ref(ctx), command=command)
        ref.start()
        wait_exit(ref, timeout)
        ref_out = parse_hog_output(ref.logs().decode("utf-8", "replace"))
        if ref_out.get("cpu_ops_per_second"):
            cpu["reference_ops_per_second"] = ref_out["cpu_ops_per_second"]
            values["cpu_throughput_ratio"] = out["cpu_ops_per_second"] / ref_out["cpu_ops_per_second"]
        return values
