"""`imagebench` command line: parse, call the library, print, map errors to exit codes.

Library code never prints; every HarnessError becomes one line on stderr and its exit status.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeAlias

from harness import __version__, cliargs
from harness.errors import ExitStatus, HarnessError, SchemaError, UsageError
from harness.experiment import discover, select
from harness.machine import as_reference
from harness.paths import reference_dir
from harness.paths import results_dir as default_results_dir
from harness.results import atomic_write_json, check_results_dir, load_runs, load_table, scan_runs

if TYPE_CHECKING:
    from harness.lab.state import LabStatus
    from harness.records import PlanEntry, RunRecord
    from harness.runner import RunOptions
    from harness.runner.core import Reporter


def _err(text: str) -> None:
    print(f"imagebench: {text}", file=sys.stderr, flush=True)


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2
        _err(f"{message} (see `{self.prog} --help`)")
        raise SystemExit(ExitStatus.USAGE)


Subparsers: TypeAlias = "argparse._SubParsersAction[_Parser]"  # what add_subparsers returns (typeshed)


# --------------------------------------------------------------------------- lab


def cmd_lab(args: argparse.Namespace) -> int:
    from harness import lab  # per command: the lab package takes ~0.5 s to import

    if args.lab_cmd == "up":
        status = lab.lab_up(
            profile=args.profile,
            bases=args.bases,
            progress=(lambda _m: None) if args.json else (lambda m: print(m, flush=True)),
        )
        if args.json:
            _print_json(status)
        else:
            print(_lab_summary(status))
        return 0
    if args.lab_cmd == "status":
        status = lab.lab_status()
        if args.json:
            _print_json(status)
        else:
            print(_lab_summary(status))
        services = (
            ("index", status["index"]),
            ("registry", status["registry"]),
            ("apt_proxy", status["apt_proxy"]),
        )
        down = [k for k, part in services if not part["alive"]]
        engine_error = (status.get("engine") or {}).get("error")
        if engine_error:
            _err(f"engine down: {engine_error}")
        return ExitStatus.ENVIRONMENT if down or engine_error else 0
    if args.lab_cmd == "down":
        res = lab.lab_down()
        _print_json(res) if args.json else print("lab stopped (images and wheelhouse kept)")
        return 0
    raise UsageError("lab needs one of: up, status, down")


def _lab_summary(s: LabStatus) -> str:
    eng = s.get("engine") or {}
    lines = [
        f"engine     {eng.get('engine_version')} (buildx {eng.get('buildx_version')}, "
        f"storage {eng.get('storage_driver')})"
    ]
    for b in s.get("bases") or []:
        size = b.get("bytes")
        lines.append(
            f"base       {b.get('lab_tag')}  {(b.get('image_id') or '')[:19]}  {size / 1e6:.1f} MB"
            if size
            else f"base       {b.get('lab_tag')}  ({'on demand: built by the first run that needs it' if b.get('on_demand') else 'missing'})"
        )
    index = s["index"]
    lines.append(
        f"{'index':<10} {index['url']}  {'up' if index['alive'] else 'DOWN'}, {index['packages']} packages"
    )
    for key, part in (("apt_proxy", s["apt_proxy"]), ("registry", s["registry"])):
        lines.append(f"{key:<10} {part['url']}  {'up' if part['alive'] else 'DOWN'}")
    net = s.get("network") or {}
    mbps = (net.get("measured_bps") or 0) / 1e6  # bits per second
    lines.append(f"network    {net.get('profile')}  measured {mbps:.1f} Mbit/s")
    return "\n".join(lines)


# --------------------------------------------------------------------------- catalog


def cmd_list(args: argparse.Namespace) -> int:
    broken: list[str] = []

    def report_broken(name: str, exc: Exception) -> None:
        broken.append(name)
        _err(f"skipped experiment {name}: {exc}")

    exps = discover(args.experiments, on_error=report_broken)
    if not exps and not broken:
        _err(f"warning: no experiment.toml under {args.experiments or 'experiments/'}")
    status = ExitStatus.SCHEMA if broken else 0
    if args.json:
        _print_json(
            [
                {
                    "name": e.name,
                    "practice": e.practice,
                    "section": e.section,
                    "claim": e.claim,
                    "article": e.article,
                    "default": e.default,
                    "variants": [v.name for v in e.variants],
                    "scenarios": sorted({s for v in e.variants for s in v.scenarios}),
                    "requires": sorted(set(e.requires) | {r for v in e.variants for r in v.requires}),
                    "probes": list(e.probes),
                }
                for e in exps
            ]
        )
        return status
    width = max((len(e.name) for e in exps), default=10)
    for e in exps:
        mark = "*" if e.default else " "
        print(f"{mark} {e.name:<{width}}  {', '.join(v.name for v in e.variants)}")
        print(f"  {'':<{width}}  {e.claim}")
    print("\n* = in the default set (`imagebench run` with no names)")
    return status


# --------------------------------------------------------------------------- run / compare


def _trials_arg(text: str) -> int | str:
    if text == "auto":
        return "auto"
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a positive integer or 'auto'") from None
    if not 1 <= n <= 1000:
        raise argparse.ArgumentTypeError(f"must be between 1 and 1000 or 'auto', got {n}")
    return n


def _shard_arg(text: str) -> tuple[int, int]:
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError("use i/n, e.g. 1/2") from None
    if not (1 <= i <= n):
        raise argparse.ArgumentTypeError("need 1 <= i <= n")
    return i, n


def _run_options(args: argparse.Namespace, argv: Sequence[str]) -> RunOptions:
    from harness.runner import RunOptions  # per command: the runner loads the docker SDK (~0.8 s)

    trials = getattr(args, "trials", None)
    return RunOptions(
        trials=None if trials in (None, "auto") else trials,
        auto=trials == "auto",
        auto_cap=getattr(args, "max_trials", 15),
        quick=getattr(args, "quick", False),
        seed=args.seed,
        warmup=args.warmup,
        keep_images=args.keep_images,
        builder=args.builder,
        results_dir=Path(args.results),
        wait_for_lock=not args.no_wait,
        shard=getattr(args, "shard", None),
        bases=getattr(args, "bases", "lab"),
        command=["imagebench", *argv],
        python_substitute=getattr(args, "python_substitute", "compatible"),
    )


class _ProgressReporter:
    """Adapts harness.progress.Progress (terminal/CI display) to the runner's Reporter callbacks."""

    def __init__(self, results: Path | None = None) -> None:
        from harness.progress import Progress  # per command: rich's live display

        self.progress = Progress()
        self.results = results

    def plan(self, todo: list[PlanEntry]) -> None:
        """The runner's remaining plan: the ETA estimates each trial (priors from earlier run files)."""
        from harness.progress import trial_priors  # per command: rich's live display

        dirs = [d for d in (self.results, reference_dir()) if d is not None]
        cells = {(str(e["experiment"]), str(e["variant"]), str(e["scenario"])) for e in todo}
        self.progress.set_plan(todo, trial_priors(dirs, cells=cells))

    def message(self, text: str) -> None:
        self.progress.message(text)

    def start(self, total: int) -> None:
        self.progress.start(total)

    def trial_started(self, experiment: str, variant: str, scenario: str, trial: int) -> None:
        self.progress.trial_started(experiment, variant, scenario, trial)

    def trial_finished(self, status: str, seconds: float, error: str | None = None) -> None:
        self.progress.trial_finished(status, seconds)
        if error and status != "ok":
            print(f"  {status}: {error}", file=sys.stderr, flush=True)

    def finish(self, run: RunRecord) -> None:
        from harness.tables import summary_rows  # per command: rich tables

        try:
            rows = summary_rows([run])
        except Exception as exc:  # noqa: BLE001 - the summary is a courtesy; results are already on disk
            _err(f"warning: no summary table ({exc})")
            rows = None
        self.progress.finish(rows)


def _reporter(args: argparse.Namespace) -> Reporter:
    return _ProgressReporter(Path(args.results))  # a runner.Reporter (a protocol: the runner is not loaded)


def cmd_run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from harness.runner import run_experiments  # per command: the docker SDK (~0.8 s)

    opts = _run_options(args, argv)
    if args.resume and (args.names or args.all):
        raise UsageError("--resume takes no experiment names; it continues the run's own plan")
    broken: list[str] = []

    def report_broken(name: str, exc: Exception) -> None:
        broken.append(name)
        _err(f"skipped experiment {name}: {exc}")

    if args.resume:
        exps = select([], all_=True, root=args.experiments, on_error=report_broken)
    else:
        exps = select(args.names, all_=args.all, root=args.experiments, on_error=report_broken)
    if not exps and broken:
        raise SchemaError(f"no valid experiment left to run ({len(broken)} broken, see above)")
    outcome = run_experiments(exps, opts, _reporter(args), resume=args.resume)
    print(f"results: {outcome.path}")
    print(
        f"trials: {outcome.ok} ok, {outcome.failed} failed, {outcome.skipped} skipped (not measurable here)"
    )
    if broken:
        _err(f"{len(broken)} experiment(s) skipped as invalid: {', '.join(broken)}")
        return ExitStatus.SCHEMA
    return ExitStatus.FAILURE if outcome.failed else 0


def cmd_compare(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from harness.compare import compare, render_compare  # per command: the docker SDK (~0.8 s)

    opts = _run_options(args, argv)
    outcome, summary = compare(
        Path(args.a),
        Path(args.b),
        context=Path(args.context) if args.context else None,
        opts=opts,
        reporter=_reporter(args),
        scenarios=tuple(dict.fromkeys(args.scenario or ("cold",))),
        edit=tuple(args.edit or ()),
        deps=args.deps,
        probes=tuple(args.probe or ()),
        smoke=args.smoke,
        claims=tuple(args.claim or ()),
    )
    if args.json:
        _print_json(summary)
    else:
        print(render_compare(summary))
        print(f"results: {outcome.path}")
    return ExitStatus.FAILURE if outcome.failed else 0


def cmd_advise(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """`imagebench advise Dockerfile`: every applicable practice rewritten, built, smoke-checked, ranked."""
    from harness.advise.command import advise, plan, render, write  # per command: the docker SDK

    only = [x.strip() for x in args.only.split(",") if x.strip()] if args.only else None
    advice = plan(Path(args.dockerfile), Path(args.context) if args.context else None, only)
    if args.write:
        for p in write(advice, Path(args.write)):
            print(f"wrote {p}")
    if args.dry_run:
        for r in advice.rewrites:
            print(f"{r.name}: {r.reason}")
        return 0
    opts = _run_options(args, argv)
    outcome, summary = advise(advice, smoke=args.smoke, opts=opts, reporter=_reporter(args))
    if args.json:
        _print_json(summary)
    else:
        print(render(summary))
        print(f"results: {outcome.path}")
    return ExitStatus.FAILURE if summary["original"]["status"] not in ("ok", "built") else 0


# --------------------------------------------------------------------------- analysis


def cmd_table(args: argparse.Namespace) -> int:

    results = check_results_dir(Path(args.results))
    runs = load_runs(results, on_skip=lambda m: _err(f"warning: {m}"))
    if not runs:
        _err(f"warning: no valid run file under {results}")
    df = load_table(runs=runs)
    from harness.tables import table_text  # per command: pandas and rich

    sys.stdout.write(table_text(df, args.format))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from harness.report import render_report  # per command: pandas and matplotlib (~2 s)

    check_results_dir(Path(args.results))
    out = Path(args.out) if args.out else Path(args.results) / "report"
    if args.with_reference:  # the committed reference beside this machine's runs, as another machine
        from harness.report.model import build_report  # per command: pandas and matplotlib (~2 s)
        from harness.report.render import write_report  # per command: pandas and matplotlib (~2 s)

        warn = lambda m: _err(f"warning: {m}")  # noqa: E731
        runs = load_runs(Path(args.results), on_skip=warn)
        runs += as_reference(load_runs(reference_dir(), on_skip=warn))
        paths = write_report(build_report(runs, pool=args.pool), out, force=args.force)
    else:
        paths = render_report(
            Path(args.results), out, on_skip=lambda m: _err(f"warning: {m}"), force=args.force, pool=args.pool
        )
    print(f"report: {paths.get('html', out / 'index.html')}")
    print(f"markdown: {paths.get('markdown', out / 'REPORT.md')}")
    return 0


def cmd_drift(args: argparse.Namespace) -> int:
    from harness.drift import Thresholds, run_drift, run_history  # per command: the docker SDK

    if args.history:
        code, text = run_history(args.history, Path(args.results), json_out=args.json)
        print(text)
        return code
    thresholds = Thresholds(
        compressed_bytes=args.size_bytes,
        uncompressed_bytes=args.size_bytes,
        pct=args.size_pct,
        layers=args.layers,
        digest=args.digest,
    )
    code, text = run_drift(
        args.images or None, Path(args.results), json_out=args.json, thresholds=thresholds, local=args.local
    )
    print(text)
    return code


def cmd_gate(args: argparse.Namespace) -> int:
    from harness.gate import run_gate  # per command: numpy and scipy via analysis

    skipped = 0
    for label, folder in (("baseline", args.baseline), ("current", args.current)):
        for reason in scan_runs(check_results_dir(Path(folder), label)).skipped:
            skipped += 1
            _err(f"warning: {label}: skipped {reason}")
    if args.summary and Path(args.summary).is_dir():
        raise UsageError(f"--summary {args.summary} is a directory; name a file")
    code, text = run_gate(
        Path(args.baseline),
        Path(args.current),
        size_bytes=args.size_bytes,
        size_pct=args.size_pct,
        layers=args.layers,
        time_ratio=args.time_ratio,
        summary=Path(args.summary) if args.summary else None,
        json_out=args.json,
        across_machines=args.across_machines,
        whole_image=args.whole_image,
    )
    print(text)
    if skipped and code == 0:
        _err(f"gate: {skipped} run file(s) skipped (see above); not passing on partial input")
        return ExitStatus.SCHEMA
    return code


def cmd_export(args: argparse.Namespace) -> int:
    from harness.export import export_pytest_benchmark  # per command: numpy via analysis (~0.4 s)

    results = check_results_dir(Path(args.results))
    out = Path(args.out) if args.out else None
    if out is not None and (out.is_dir() or not out.parent.is_dir()):
        what = "is a directory" if out.is_dir() else f"needs an existing folder {out.parent}"
        raise UsageError(f"--out {out} {what}; name a file")
    runs = load_runs(results, on_skip=lambda m: _err(f"warning: {m}"))
    if not runs:
        raise UsageError(f"no valid run file under {results}; nothing to export")
    data = export_pytest_benchmark(runs=runs)
    text = json.dumps(data, indent=2)
    if out is not None:
        atomic_write_json(out, data)
        print(f"wrote {args.out}")
    else:
        print(text)
    return 0


# --------------------------------------------------------------------------- parser


def _add_run_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--trials",
        type=_trials_arg,
        default=None,
        help="trials per variant and scenario, or 'auto' (until the median's 95%% CI is within +/-3%%)",
    )
    p.add_argument(
        "--max-trials", type=cliargs.integer(1, 1000), default=15, help="cap for --trials auto (default 15)"
    )
    p.add_argument(
        "--seed",
        type=cliargs.integer(0, 2**32 - 1),
        default=None,
        help="seed of the per-trial variant shuffle (recorded)",
    )
    p.add_argument("--warmup", action="store_true", help="one uncounted build per variant first")
    p.add_argument("--keep-images", action="store_true", help="keep the images the run built")
    p.add_argument(
        "--builder",
        type=cliargs.text(256),
        default=None,
        help="buildx builder to use (any driver); default: the current one",
    )
    p.add_argument("--no-wait", action="store_true", help="exit at once if another run holds the daemon lock")
    p.add_argument("--experiments", default=None, help=argparse.SUPPRESS)
    p.add_argument(
        "--python-substitute",
        choices=("compatible", "nearest", "older", "refuse"),
        default="compatible",
        help="a FROM python:3.X the lab has no stand-in for: the tag's Debian release, else the minor "
        "measured to fail fewest pinned requirement sets (compatible, the default), closest minor, "
        "newest older one, or stop (always said before the first build, with the reason)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="imagebench", description="Measure Docker best practices with paired image variants."
    )
    parser.add_argument("--version", action="version", version=f"imagebench {__version__}")
    parser.add_argument(
        "--results",
        default=str(default_results_dir()),
        help=_RESULTS_HELP,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    _add_lab(sub)
    _add_list(sub)
    _add_run(sub)
    _add_compare(sub)
    _add_advise(sub)
    _add_table(sub)
    _add_report(sub)
    _add_drift(sub)
    _add_gate(sub)
    _add_export(sub)
    _accept_results_after_command(parser)
    return parser


def _add_lab(sub: Subparsers) -> None:
    """The `lab` subcommand's arguments."""
    p = sub.add_parser("lab", help="prepare, inspect or stop the controlled environment")
    lab_sub = p.add_subparsers(dest="lab_cmd", metavar="up|status|down", parser_class=_Parser)
    up = lab_sub.add_parser(
        "up", help="engine check, stand-in bases, package index, apt proxy, registry, network"
    )
    up.add_argument(
        "--profile",
        type=cliargs.text(64),
        default="unlimited",
        help="network profile: unlimited, 100mbit, 20mbit",
    )
    up.add_argument(
        "--bases",
        choices=("lab", "registry"),
        default="lab",
        help="lab stand-ins built offline (default) or public images pulled once and pinned",
    )
    up.add_argument("--json", action="store_true")
    st = lab_sub.add_parser("status", help="what runs, versions, bases with digests, measured network rate")
    st.add_argument("--json", action="store_true")
    dn = lab_sub.add_parser("down", help="stop what `lab up` started (images and wheelhouse are kept)")
    dn.add_argument("--json", action="store_true")


def _add_list(sub: Subparsers) -> None:
    """The `list` subcommand's arguments."""
    p = sub.add_parser("list", help="the experiment catalog")
    p.add_argument("--json", action="store_true")
    p.add_argument("--experiments", default=None, help=argparse.SUPPRESS)


def _add_run(sub: Subparsers) -> None:
    """The `run` subcommand's arguments."""
    p = sub.add_parser("run", help="measure experiments; one results file per run")
    p.add_argument("names", nargs="*", metavar="EXPERIMENT")
    p.add_argument("--all", action="store_true", help="the whole catalog")
    p.add_argument("--quick", action="store_true", help="one trial each, only the scenarios the claims need")
    p.add_argument(
        "--resume",
        metavar="RUN",
        type=cliargs.path,
        default=None,
        help="measure only the missing trials of RUN",
    )
    p.add_argument(
        "--shard", type=_shard_arg, default=None, help="i/n: run the i-th of n deterministic shares"
    )
    p.add_argument("--bases", choices=("lab", "registry"), default="lab")
    _add_run_flags(p)


def _add_compare(sub: Subparsers) -> None:
    """The `compare` subcommand's arguments."""
    p = sub.add_parser("compare", help="measure two Dockerfiles of your own")
    p.add_argument("a", metavar="A.Dockerfile")
    p.add_argument("b", metavar="B.Dockerfile")
    p.add_argument(
        "--context", type=cliargs.path, default=None, help="build context (default: the folder of A)"
    )
    p.add_argument(
        "--scenario",
        action="append",
        default=None,
        choices=("cold", "warm", "edit-source", "edit-deps", "base-bump"),
        help="cache scenario, repeatable (default: cold); edit-source/edit-deps edit a file between builds",
    )
    p.add_argument(
        "--edit", action="append", metavar="PATH", help="edit-source: file to edit (default: from COPY)"
    )
    p.add_argument("--deps", metavar="PATH", help="edit-deps: dependency file to edit (default: from COPY)")
    p.add_argument(
        "--probe", action="append", metavar="NAME", help="runtime probe, repeatable: stop, user, health, ..."
    )
    p.add_argument("--smoke", metavar="CMD", help="command each built image must pass (metric smoke_ok)")
    p.add_argument(
        "--claim",
        action="append",
        metavar="METRIC:lower|higher[:SCENARIO]",
        help="a claim about B against A to judge (without one, compare states differences, no verdict)",
    )
    p.add_argument("--json", action="store_true")
    _add_run_flags(p)


def _add_advise(sub: Subparsers) -> None:
    """The `advise` subcommand's arguments."""
    p = sub.add_parser("advise", help="rewrite your Dockerfile with each practice, measure what each buys")
    p.add_argument("dockerfile", metavar="Dockerfile")
    p.add_argument("--context", default=None, help="build context (default: the Dockerfile's folder)")
    p.add_argument("--smoke", default=None, metavar="CMD", help="shell command every image must pass")
    p.add_argument("--only", default=None, metavar="a,b", help="only these practices (comma-separated)")
    p.add_argument("--write", default=None, metavar="DIR", help="save each rewrite and its diff in DIR")
    p.add_argument("--dry-run", action="store_true", help="list the applicable rewrites, build nothing")
    p.add_argument("--json", action="store_true")
    _add_run_flags(p)


def _add_table(sub: Subparsers) -> None:
    """The `table` subcommand's arguments."""
    p = sub.add_parser("table", help="the tidy table of everything measured")
    p.add_argument("--format", choices=("csv", "md", "json"), default="csv")


def _add_report(sub: Subparsers) -> None:
    """The `report` subcommand's arguments."""
    p = sub.add_parser("report", help="render index.html, REPORT.md and plots")
    p.add_argument(
        "--out", type=cliargs.path, default=None, help="output directory (default: RESULTS/report)"
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="write into --out even if it holds files the report did not write",
    )
    p.add_argument(
        "--with-reference",
        action="store_true",
        help="also show the committed reference run (results/), labelled as another machine",
    )
    p.add_argument(
        "--pool",
        action="store_true",
        help="judge together runs that overlap in time or come from other harness commits, engines or "
        "network profiles (left out by default); a banner says what was pooled",
    )


def _add_drift(sub: Subparsers) -> None:
    """The `drift` subcommand's arguments."""
    p = sub.add_parser("drift", help="observe base images now, append to history, flag changes")
    p.add_argument(
        "--images",
        nargs="*",
        type=cliargs.image_ref,
        default=None,
        help="image references (default: the lab's bases and "
        "python:3.13-slim, 3.12-slim, 3.12-alpine, 3.12 where a registry answers)",
    )
    p.add_argument(
        "--size-bytes",
        type=cliargs.integer(0, 2**62),
        default=0,
        help="allowed size change in bytes (default 0)",
    )
    p.add_argument(
        "--size-pct",
        type=cliargs.number(0, 1e6),
        default=None,
        help="also require this percent change to flag",
    )
    p.add_argument(
        "--layers", type=cliargs.integer(0, 10_000), default=0, help="allowed change in layer count"
    )
    p.add_argument("--digest", action="store_true", help="flag a new digest even when nothing else changed")
    p.add_argument(
        "--local",
        action="store_true",
        help="observe images in the local engine (no registry, no network): id, bytes, layers, packages",
    )
    p.add_argument(
        "--history",
        metavar="IMAGE",
        type=cliargs.text(512),
        default=None,
        help="print IMAGE's history (published + observed) instead of observing",
    )
    p.add_argument("--json", action="store_true")


def _add_gate(sub: Subparsers) -> None:
    """The `gate` subcommand's arguments."""
    p = sub.add_parser("gate", help="exit non-zero on a regression between two results directories")
    p.add_argument("--baseline", type=cliargs.path, required=True)
    p.add_argument("--current", type=cliargs.path, required=True)
    p.add_argument(
        "--size-bytes",
        type=cliargs.integer(0, 2**62),
        default=0,
        help="allowed growth of exact sizes in bytes (default 0)",
    )
    p.add_argument(
        "--size-pct",
        type=cliargs.number(0, 1e6),
        default=None,
        help="allowed growth of exact sizes in percent",
    )
    p.add_argument(
        "--layers", type=cliargs.integer(0, 10_000), default=0, help="allowed growth of layer counts"
    )
    p.add_argument(
        "--time-ratio",
        type=cliargs.number(0, 1e6, lo_open=True),
        default=1.10,
        help="fail when the lower bound of current/baseline time exceeds this (default 1.10)",
    )
    p.add_argument("--summary", type=cliargs.path, default=None, help="also write the Markdown summary here")
    p.add_argument(
        "--across-machines",
        action="store_true",
        help="compare runs of different machines: exact metrics and within-run claims only, no times",
    )
    p.add_argument(
        "--whole-image",
        action="store_true",
        help="also gate whole-image sizes (default: own layers only; base changes are reported as drift)",
    )
    p.add_argument("--json", action="store_true")


def _add_export(sub: Subparsers) -> None:
    """The `export` subcommand's arguments."""
    p = sub.add_parser("export", help="results in a format CI trackers read")
    p.add_argument("--format", choices=("pytest-benchmark",), required=True)
    p.add_argument("--out", type=cliargs.path, default=None)


_RESULTS_HELP = "results directory (default: runs/ of the checkout, git-ignored; the reference is results/)"


def _accept_results_after_command(parser: argparse.ArgumentParser) -> None:
    """Every (sub)command also takes `--results DIR` after its name; SUPPRESS keeps the top-level value."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                if not any("--results" in a.option_strings for a in sub._actions):
                    sub.add_argument("--results", default=argparse.SUPPRESS, help=_RESULTS_HELP)
                _accept_results_after_command(sub)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return ExitStatus.USAGE
    handlers = {
        "lab": cmd_lab,
        "list": cmd_list,
        "table": cmd_table,
        "report": cmd_report,
        "drift": cmd_drift,
        "gate": cmd_gate,
        "export": cmd_export,
    }
    try:
        if args.command == "run":
            return int(cmd_run(args, argv))
        if args.command == "compare":
            return int(cmd_compare(args, argv))
        if args.command == "advise":
            return int(cmd_advise(args, argv))
        return int(handlers[args.command](args))
    except HarnessError as exc:
        _err(str(exc))
        return int(exc.exit_status)
    except KeyboardInterrupt:
        _err("interrupted")
        return int(ExitStatus.INTERRUPTED)
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
