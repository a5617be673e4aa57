"""The hostile-input corpus (issue 15): >= 1,000 generated inputs - corrupted run files, results
layouts with FIFOs, symlinks and devices, mutated experiment.toml folders, bad command lines - run
in-process with a per-case timeout. Zero tracebacks, zero hangs, every good file's data still in
the output, every bad one named. A summary (counts, seconds) is written to $HOSTILE_SUMMARY when set.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import hostile as H
import pytest

pytestmark = pytest.mark.filterwarnings("ignore")

TOTALS: dict[str, dict] = {}


@pytest.fixture(autouse=True)
def _no_engine(monkeypatch):
    """No case may reach a real Docker engine: point the client at a socket that does not exist."""
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/imagebench-hostile.sock")


def _record(family: str, n: int, seconds: float, problems: list[str], tracebacks: int, hangs: int) -> None:
    TOTALS[family] = {
        "cases": n,
        "seconds": round(seconds, 1),
        "problems": len(problems),
        "tracebacks": tracebacks,
        "hangs": hangs,
    }
    out = os.environ.get("HOSTILE_SUMMARY")
    if out:
        Path(out).write_text(json.dumps(TOTALS, indent=1) + "\n")


def _check_clean(case: str, o: H.Outcome, problems: list[str]) -> None:
    if o.hung:
        problems.append(f"{case}: HANG (> {H.CASE_TIMEOUT} s)")
    if o.traceback:
        problems.append(f"{case}: TRACEBACK {o.traceback.strip().splitlines()[-1]}")
    if "Traceback" in o.stderr:
        problems.append(f"{case}: traceback text on stderr")
    for line in o.stderr.splitlines():
        if line and not line.startswith("imagebench") and not line.startswith("usage:"):
            problems.append(f"{case}: stderr line not from imagebench: {line[:120]!r}")
            break


def _summary(problems: list[str]) -> str:
    if os.environ.get("HOSTILE_PROBLEMS"):
        Path(os.environ["HOSTILE_PROBLEMS"]).write_text("\n".join(problems) + "\n")
    return f"{len(problems)} problems:\n" + "\n".join(problems[:40])


# --------------------------------------------------------------------------- run files


def _consume(kind: str, results: Path, tmp: Path) -> H.Outcome:
    if kind == "report-model":

        def model() -> int:
            import sys

            from harness.report.model import build_report
            from harness.report.render import html, markdown
            from harness.results import load_runs

            runs = load_runs(results, on_skip=lambda m: print(f"imagebench: warning: {m}", file=sys.stderr))
            report = build_report(runs, n_boot=200)
            sys.stdout.write(markdown(report))
            html(report, _AnySvg())
            return 0

        return H.run_callable(model)
    if kind == "gate":
        good = tmp / "current"
        H.write_results(good, None)
        return H.run_cli(["gate", "--baseline", results, "--current", good])
    if kind == "export":
        return H.run_cli(["export", "--results", results, "--format", "pytest-benchmark"])
    fmt = {"table": "csv", "table-md": "md", "table-json": "json"}[kind]
    return H.run_cli(["table", "--results", results, "--format", fmt])


class _AnySvg(dict):
    def __missing__(self, key):
        return ""


CONSUMERS = [  # report-model bootstraps every claim: one case in twenty (hypothesis covers it too)
    *(
        "table",
        "export",
        "table-md",
        "table-json",
        "export",
        "gate",
        "table",
        "table-json",
        "export",
        "table",
    ),
    *(
        "report-model",
        "table-md",
        "export",
        "table",
        "table-json",
        "gate",
        "table",
        "export",
        "table-md",
        "table",
    ),
]


def test_corrupt_run_files_never_take_the_good_ones_down(tmp_path):
    """Every corrupted run file: no traceback or hang; rejected ones named on stderr; the good run still in the output."""
    from harness.results import scan_runs

    cases = H.run_file_mutations()
    assert len(cases) >= 700
    problems: list[str] = []
    tracebacks = hangs = 0
    t0 = time.perf_counter()
    for i, (name, key, text) in enumerate(cases):
        root = tmp_path / f"c{i}"
        results = root / "results"
        bad = H.write_results(results, text)
        probe = H.run_callable(lambda results=results: scan_runs(results))
        _check_clean(f"{name} [reader]", probe, problems)
        if probe.traceback or probe.hung:
            tracebacks += bool(probe.traceback)
            hangs += probe.hung
            continue
        loaded = scan_runs(results)
        rejected = any(bad.name in s for s in loaded.skipped)
        if key in H.MUST_REJECT and not rejected:
            problems.append(f"{name}: must be rejected, was accepted")
        for s in loaded.skipped:
            if "\n" in s:
                problems.append(f"{name}: reason is not one line: {s[:120]!r}")
        kind = CONSUMERS[i % len(CONSUMERS)]
        o = _consume(kind, results, root)
        tracebacks += bool(o.traceback)
        hangs += o.hung
        _check_clean(f"{name} [{kind}]", o, problems)
        if o.traceback or o.hung:
            continue
        if rejected and bad.name not in o.stderr:
            problems.append(f"{name} [{kind}]: rejected file not named on stderr")
        if kind == "gate":
            if rejected and o.code == 0:
                problems.append(f"{name} [gate]: passed with a skipped baseline file")
        elif o.code != 0 or (H.GOOD_ID not in o.stdout and (rejected or kind != "export")):
            # export shows the latest run of each experiment: an accepted newer run replaces the good one
            problems.append(
                f"{name} [{kind}]: good run missing from the output (exit {o.code}) {o.stderr[:200]!r}"
            )
        shutil.rmtree(root, ignore_errors=True)
    _record("run files", len(cases), time.perf_counter() - t0, problems, tracebacks, hangs)
    assert not problems, _summary(problems)


# --------------------------------------------------------------------------- layouts


NOT_A_RUN = {"hidden-temp-file", "symlink-inside"}  # hidden: never listed; inside link: a valid run


def test_results_layouts_fifos_symlinks_devices(tmp_path):
    """FIFOs, devices, sockets, symlinks out of the results dir, loops, huge files: named and skipped, never read."""
    problems: list[str] = []
    tracebacks = hangs = n = 0
    t0 = time.perf_counter()
    for name, make in H.layouts():
        for kind in ("table", "export", "gate", "report-model"):
            n += 1
            root = tmp_path / f"{name}-{kind}"
            results = root / "results"
            bad = H.write_results(results, None)
            make(bad)
            o = _consume(kind, results, root)
            tracebacks += bool(o.traceback)
            hangs += o.hung
            _check_clean(f"{name} [{kind}]", o, problems)
            if o.traceback or o.hung:
                continue
            named = bad.name in o.stderr or ("evil" in o.stderr and name.startswith("machine-dir"))
            if name not in NOT_A_RUN and not named:
                problems.append(f"{name} [{kind}]: bad entry not named on stderr: {o.stderr[:200]!r}")
            if kind == "gate":
                if name not in NOT_A_RUN and o.code == 0:
                    problems.append(f"{name} [gate]: passed with a skipped baseline file")
            elif o.code != 0 or (H.GOOD_ID not in o.stdout and not (kind == "export" and name in NOT_A_RUN)):
                problems.append(f"{name} [{kind}]: good run missing (exit {o.code}) {o.stderr[:200]!r}")
            if o.seconds > 5:
                problems.append(f"{name} [{kind}]: took {o.seconds:.1f} s")
            with_mode = [p for p in root.rglob("*") if p.exists() and not p.is_symlink()]
            for p in with_mode:
                p.chmod(0o755)
            shutil.rmtree(root, ignore_errors=True)
    for name, argv_of in _dir_cases():
        n += 1
        root = tmp_path / f"dir-{name}"
        root.mkdir()
        argv, want = argv_of(root)
        o = H.run_cli(argv)
        tracebacks += bool(o.traceback)
        hangs += o.hung
        _check_clean(f"dir {name}", o, problems)
        if not o.traceback and not o.hung and not want(o):
            problems.append(f"dir {name}: exit {o.code}, stderr {o.stderr[:200]!r}")
    _record("layouts", n, time.perf_counter() - t0, problems, tracebacks, hangs)
    assert not problems, _summary(problems)


def _dir_cases():
    """Missing, empty or non-directory inputs: an error (non-zero, one line) or a clear warning."""

    def missing(cmd):
        return lambda r: ([*cmd(r / "nope")], lambda o: o.code == 2 and "does not exist" in o.stderr)

    def empty(cmd):
        def build(r):
            (r / "empty").mkdir()
            return [*cmd(r / "empty")], lambda o: o.code != 0 or "warning: no" in o.stderr

        return build

    def is_file(cmd):
        def build(r):
            (r / "file").write_text("x")
            return [*cmd(r / "file")], lambda o: o.code == 2 and "not a directory" in o.stderr

        return build

    cmds = {
        "table": lambda d: ["table", "--results", d],
        "report": lambda d: ["report", "--results", d, "--out", d.parent / "out"],
        "export": lambda d: ["export", "--results", d, "--format", "pytest-benchmark"],
        "list": lambda d: ["list", "--experiments", d],
        "gate-baseline": lambda d: ["gate", "--baseline", d, "--current", H.GOOD_RUN_FILE.parent.parent],
        "gate-current": lambda d: ["gate", "--baseline", H.GOOD_RUN_FILE.parent.parent, "--current", d],
    }
    out = []
    for name, cmd in cmds.items():
        out += [
            (f"{name}-missing", missing(cmd)),
            (f"{name}-empty", empty(cmd)),
            (f"{name}-file", is_file(cmd)),
        ]
    return out


# --------------------------------------------------------------------------- experiment.toml


def test_mutated_experiments_give_one_line_errors(tmp_path):
    """Every mutated experiment.toml: an Experiment or a one-line error naming file, line and key; never a
    traceback or hang; the issue's list always refused; a broken experiment never hides the others."""
    from harness.errors import SchemaError, UsageError
    from harness.experiment import load_experiment

    cases = H.toml_mutations()
    problems: list[str] = []
    tracebacks = hangs = 0
    t0 = time.perf_counter()
    for i, (name, key, data, fs) in enumerate(cases):
        root = tmp_path / f"e{i}"
        folder = H.write_experiment(root, data)
        if fs is not None:
            fs(folder)
        o = H.run_callable(lambda folder=folder: _load(folder))
        tracebacks += bool(o.traceback)
        hangs += o.hung
        _check_clean(name, o, problems)
        if o.traceback or o.hung:
            continue
        try:
            load_experiment(folder)
            rejected, message = False, ""
        except (SchemaError, UsageError) as exc:
            rejected, message = True, str(exc)
        if rejected and ("\n" in message or "experiment.toml" not in message):
            problems.append(f"{name}: error is not one line naming the file: {message[:160]!r}")
        if key in H.TOML_MUST_REJECT and not rejected:
            problems.append(f"{name}: must be refused, was accepted")
        if key in H.TOML_MUST_REJECT and rejected and "key '" not in message:
            problems.append(f"{name}: error does not name the key: {message[:160]!r}")
        if i % 8 == 0:  # through the CLI, beside a good experiment
            H.write_experiment(root, None, name="other")
            lo = H.run_cli(["list", "--experiments", root])
            tracebacks += bool(lo.traceback)
            hangs += lo.hung
            _check_clean(f"{name} [list]", lo, problems)
            if "other" not in lo.stdout:
                problems.append(f"{name} [list]: the good experiment is missing (exit {lo.code})")
            if rejected and (lo.code != 4 or "good" not in lo.stderr):
                problems.append(f"{name} [list]: broken experiment not reported with exit 4 (exit {lo.code})")
        for p in root.rglob("*"):
            if p.is_fifo():
                p.unlink()
        shutil.rmtree(root, ignore_errors=True)
    _record("experiment.toml", len(cases), time.perf_counter() - t0, problems, tracebacks, hangs)
    assert not problems, _summary(problems)


def _load(folder: Path) -> int:
    from harness.errors import HarnessError
    from harness.experiment import load_experiment

    try:
        exp = load_experiment(folder)
        exp.definition_hash()
        exp.to_dict()
    except HarnessError:
        return 4
    return 0


# --------------------------------------------------------------------------- command lines

NUMERIC_FLAGS = {
    # command -> (flag, valid values)
    "gate": [
        ("--size-bytes", {"0", "10"}),
        ("--size-pct", {"0", "1.5"}),
        ("--layers", {"0", "2"}),
        ("--time-ratio", {"1.5", "1e3"}),
    ],
    "drift": [("--size-bytes", set()), ("--size-pct", set()), ("--layers", set())],
    "run": [("--max-trials", set()), ("--trials", set()), ("--seed", set()), ("--shard", set())],
    "compare": [("--max-trials", set()), ("--trials", set())],
}
BAD_VALUES = [
    "nan",
    "NaN",
    "inf",
    "-inf",
    "-1",
    "1e309",
    "",
    "abc",
    "0x10",
    "99999999999999999999999",
    "1/0",
    "\x00",
    "-0.5",
    " ",
]


def _cli_cases() -> list[tuple[str, list[str], bool]]:
    """(name, argv, parse_only): parse_only for commands that would otherwise start work on the engine."""
    good = H.GOOD_RUN_FILE.parent.parent
    out: list[tuple[str, list[str], bool]] = []
    for cmd, flags in NUMERIC_FLAGS.items():
        for flag, valid in flags:
            for value in BAD_VALUES:
                if value in valid:
                    continue
                if cmd == "gate":
                    argv = ["gate", "--baseline", str(good), "--current", str(good), flag, value]
                elif cmd == "compare":
                    argv = ["compare", "a.Dockerfile", "b.Dockerfile", flag, value]
                else:
                    argv = [cmd, flag, value]
                out.append((f"{cmd} {flag} {value!r}", argv, cmd != "gate"))
    text_flags = [
        ["run", "--resume"],
        ["run", "--builder"],
        ["compare", "a", "b", "--context"],
        ["lab", "up", "--profile"],
        ["report", "--out"],
        ["export", "--format", "pytest-benchmark", "--out"],
        ["drift", "--history"],
        ["gate", "--baseline", "x", "--current", "x", "--summary"],
    ]
    for head in text_flags:
        for value in ("a\x00b", "a\nb", "x" * 5000):
            out.append((f"{' '.join(head)} {value[:8]!r}", [*head, value], True))
    for ref in ["UPPER:case", "a b", "", "x" * 600, "http://evil/x", "name@sha256:zz", "-x", "a//b", "\x00"]:
        out.append((f"drift --images {ref!r}", ["drift", "--images", ref], True))
    for argv in (
        ["nosuch"],
        ["table", "--format", "xml"],
        ["export"],
        ["export", "--format", "csv"],
        ["gate"],
        ["gate", "--baseline"],
        ["lab"],
        ["lab", "explode"],
        ["run", "--shard", "3/2"],
        ["run", "--trials", "0"],
        ["report", "--unknown"],
        ["--results"],
        ["table", "extra"],
    ):
        out.append((" ".join(argv) or "(none)", argv, argv[:1] == ["run"] or argv == ["lab", "explode"]))
    return out


def test_bad_command_lines_are_usage_errors(tmp_path):
    """Every bad flag value or command line: exit 2 with one line on stderr, nothing on stdout, no traceback."""
    from harness.cli import build_parser

    problems: list[str] = []
    tracebacks = hangs = 0
    t0 = time.perf_counter()
    cases = _cli_cases()
    for name, argv, parse_only in cases:
        if parse_only:
            o = H.run_callable(lambda argv=argv: build_parser().parse_args(argv) and 0)
        else:
            o = H.run_cli(argv)
        tracebacks += bool(o.traceback)
        hangs += o.hung
        _check_clean(name, o, problems)
        if o.code != 2:
            problems.append(f"{name}: exit {o.code}, want 2")
        if len(o.stderr.strip().splitlines()) != 1:
            problems.append(f"{name}: stderr is not one line: {o.stderr[:200]!r}")
    n = len(cases)
    extra = _output_cases(tmp_path)
    for name, fn in extra:
        o = fn()
        n += 1
        tracebacks += bool(o.traceback)
        hangs += o.hung
        _check_clean(name, o, problems)
        if o.code != 2:
            problems.append(f"{name}: exit {o.code}, want 2 ({o.stderr[:200]!r})")
    _record("command lines", n, time.perf_counter() - t0, problems, tracebacks, hangs)
    assert not problems, _summary(problems)


def _output_cases(tmp: Path):
    good = H.GOOD_RUN_FILE.parent.parent
    f = tmp / "a-file"
    f.write_text("x")
    d = tmp / "a-dir"
    d.mkdir()
    return [
        ("report --out FILE", lambda: H.run_cli(["report", "--results", good, "--out", f])),
        (
            "report --out /proc/x",
            lambda: H.run_cli(["report", "--results", good, "--out", "/proc/imagebench/x"]),
        ),
        (
            "export --out DIR",
            lambda: H.run_cli(["export", "--results", good, "--format", "pytest-benchmark", "--out", d]),
        ),
        (
            "export --out missing parent",
            lambda: H.run_cli(
                ["export", "--results", good, "--format", "pytest-benchmark", "--out", tmp / "no" / "x.json"]
            ),
        ),
        (
            "gate --summary DIR",
            lambda: H.run_cli(["gate", "--baseline", good, "--current", good, "--summary", d]),
        ),
        ("drift --history NUL", lambda: H.run_cli(["drift", "--history", "a\x00b", "--results", tmp])),
    ]
