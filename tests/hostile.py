"""A generated corpus of hostile and careless inputs, and an in-process runner for it.

Four families (issue 15): corrupted run files, results directory layouts (FIFOs, symlinks,
devices), mutated experiment.toml folders, and command lines with bad flag values. Every case
is built from a known-good input and one mutation, deterministically, so a failure names the
case that caused it. `run_case` runs one case in-process with a per-case timeout and reports
what a user would have seen: exit code, stdout, stderr and any traceback.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import os
import shutil
import signal
import socket
import stat
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
GOOD_RUN_FILE = REPO / "tests" / "fixtures" / "results" / "synthetic-b" / "20260902T120000Z-000001.json"
GOOD_ID = "20260902T120000Z-000001"
BAD_ID = "20260903T120000Z-0000bd"
MACHINE = "synthetic-b"
CASE_TIMEOUT = 20.0  # seconds; a case still running then is a hang


class Hang(BaseException):
    """Raised by the per-case alarm: the case did not finish in CASE_TIMEOUT."""


@dataclass
class Outcome:
    code: int | None
    stdout: str
    stderr: str
    traceback: str | None = None
    hung: bool = False
    seconds: float = 0.0


@dataclass
class Case:
    """One hostile input: `build(tmp)` lays it out under tmp and returns the argv to run (or a callable)."""

    family: str
    name: str
    build: Callable[[Path], Any]
    expect: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.family}:{self.name}"


# --------------------------------------------------------------------------- running


@contextlib.contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    def fire(_signum, _frame):
        raise Hang()

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def run_callable(fn: Callable[[], Any], timeout: float = CASE_TIMEOUT) -> Outcome:
    """Run `fn` in-process capturing stdout/stderr; an exception escaping it is a traceback."""
    out, err = io.StringIO(), io.StringIO()
    t0 = time.perf_counter()
    code: int | None = None
    tb = None
    hung = False
    try:
        with _alarm(timeout), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = fn()
            except SystemExit as exc:  # argparse exits; that is a clean exit, not a traceback
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except Hang:
        hung = True
    except BaseException:  # noqa: BLE001 - anything escaping the case is the finding, kept as a traceback
        tb = traceback.format_exc()
    return Outcome(code, out.getvalue(), err.getvalue(), tb, hung, time.perf_counter() - t0)


def run_cli(argv: list[str], timeout: float = CASE_TIMEOUT) -> Outcome:
    from harness.cli import main

    return run_callable(lambda: main([str(a) for a in argv]), timeout)


# --------------------------------------------------------------------------- run files


class Raw:
    """A literal JSON/TOML token placed as is (NaN, 1e999, 10**400, ...)."""

    def __init__(self, text: str) -> None:
        self.text = text


def dumps_raw(data: Any) -> str:
    """json.dumps that writes Raw tokens verbatim (so a file can hold NaN or a 400-digit number)."""
    raws: dict[str, str] = {}

    def sub(node: Any) -> Any:
        if isinstance(node, Raw):
            key = f"__raw_{len(raws)}__"
            raws[key] = node.text
            return key
        if isinstance(node, dict):
            return {k: sub(v) for k, v in node.items()}
        if isinstance(node, list):
            return [sub(v) for v in node]
        return node

    text = json.dumps(sub(data), indent=1)
    for key, raw in raws.items():
        text = text.replace(f'"{key}"', raw)
    return text


def good_run(run_id: str = GOOD_ID) -> dict:
    data = json.loads(GOOD_RUN_FILE.read_text("utf-8"))
    data["run_id"] = run_id
    return data


HOSTILE_JSON: list[tuple[str, Any]] = [
    ("null", None),
    ("abc", "abc"),
    ("empty-string", ""),
    ("script", "<script>alert(1)</script>"),
    ("minus-one", -1),
    ("half", 0.5),
    ("big-int", Raw("1" + "0" * 400)),
    ("1e300", 1e300),
    ("1e999", Raw("1e999")),
    ("nan", Raw("NaN")),
    ("inf", Raw("Infinity")),
    ("list", [1, 2]),
    ("object", {"a": 1}),
    ("true", True),
    ("deep", Raw("[" * 5000 + "]" * 5000)),
]

# paths into the good run (keys; ints index lists); each gets every hostile value and a deletion
RUN_PATHS: list[tuple] = [
    ("schema",),
    ("schema_version",),
    ("run_id",),
    ("machine",),
    ("created_at",),
    ("updated_at",),
    ("status",),
    ("command",),
    ("seed",),
    ("options",),
    ("fingerprint",),
    ("experiments",),
    ("plan",),
    ("trials",),
    ("warnings",),
    ("bases",),
    ("plan", 0),
    ("plan", 0, "trial"),
    ("plan", 0, "variant"),
    ("trials", 0),
    ("trials", 0, "experiment"),
    ("trials", 0, "variant"),
    ("trials", 0, "scenario"),
    ("trials", 0, "trial"),
    ("trials", 0, "status"),
    ("trials", 0, "error"),
    ("trials", 0, "metrics"),
    ("trials", 0, "metrics", "build_seconds"),
    ("trials", 0, "metrics", "image_bytes"),
    ("trials", 0, "steps"),
    ("trials", 0, "steps", 0),
    ("trials", 0, "steps", 0, "seconds"),
    ("trials", 0, "steps", 0, "index"),
    ("trials", 0, "steps", 0, "name"),
    ("trials", 0, "probe_data"),
    ("trials", 0, "bases"),
    ("trials", 0, "image"),
    ("experiments", "multi-stage"),
    ("experiments", "multi-stage", "variants"),
    ("experiments", "multi-stage", "variants", 0),
    ("experiments", "multi-stage", "variants", 0, "name"),
    ("experiments", "multi-stage", "claims"),
    ("experiments", "multi-stage", "claims", 0),
    ("experiments", "multi-stage", "claims", 0, "metric"),
    ("experiments", "multi-stage", "claims", 0, "value"),
    ("experiments", "multi-stage", "claims", 0, "expect"),
    ("experiments", "multi-stage", "claims", 0, "baseline"),
    ("experiments", "multi-stage", "metrics"),
    ("experiments", "multi-stage", "claim"),
    ("experiments", "multi-stage", "name"),
]

# mutations the issue names as wrongly accepted or crashing: these must be rejected (named, skipped)
MUST_REJECT = {
    ("schema_version", "minus-one"),
    ("schema_version", "true"),
    ("schema_version", "half"),
    ("status", "delete"),
    ("trials", 0, "trial", "half"),
    ("trials", 0, "trial", "minus-one"),
    ("trials", 0, "trial", "abc"),
    ("trials", 0, "trial", "null"),
    ("trials", 0, "trial", "1e300"),
    ("trials", 0, "trial", "list"),
    ("trials", 0, "metrics", "abc"),
    ("trials", 0, "metrics", "build_seconds", "list"),
    ("trials", 0, "metrics", "build_seconds", "object"),
    ("trials", 0, "metrics", "build_seconds", "big-int"),
    ("trials", 0, "metrics", "build_seconds", "nan"),
    ("trials", 0, "metrics", "build_seconds", "inf"),
    ("trials", 0, "metrics", "build_seconds", "1e999"),
    ("experiments", "list"),
    ("experiments", "multi-stage", "claims", "abc"),
    ("trials", 0, "variant", "null"),
    ("trials", 0, "scenario", "null"),
    ("created_at", "list"),
    ("run_id", "deep"),
}


def mutate(data: dict, path: tuple, value: Any, *, delete: bool = False) -> dict:
    out = copy.deepcopy(data)
    node = out
    for key in path[:-1]:
        node = node[key]
    if delete:
        node.pop(path[-1], None) if isinstance(node, dict) else node.pop(path[-1])
    else:
        node[path[-1]] = value
    return out


def run_file_mutations() -> list[tuple[str, tuple, str]]:
    """(name, path+label, file text) for every path x hostile value, plus a deletion of each path."""
    base = good_run(BAD_ID)
    out = []
    for path in RUN_PATHS:
        for label, value in [*HOSTILE_JSON, ("delete", None)]:
            data = mutate(base, path, value, delete=label == "delete")
            name = "/".join(str(p) for p in path) + "=" + label
            out.append((name, (*path, label), dumps_raw(data)))
    # whole-file corruptions
    good_text = dumps_raw(base)
    for label, text in [
        ("empty-file", ""),
        ("truncated", good_text[: len(good_text) // 2]),
        ("not-json", "hello"),
        ("json-list", "[1, 2, 3]"),
        ("json-null", "null"),
        ("bom", "\ufeff" + good_text),
        ("nul-bytes", good_text[:100] + "\0" * 50 + good_text[100:]),
        ("deep-object", '{"a":' * 100_000 + "1" + "}" * 100_000),
        ("deep-list", "[" * 100_000 + "]" * 100_000),
        ("other-schema", json.dumps({"schema": "someone.else", "schema_version": 1})),
        ("future-version", dumps_raw(mutate(base, ("schema_version",), 99))),
        ("version-zero", dumps_raw(mutate(base, ("schema_version",), 0))),
        ("dup-trial", dumps_raw(mutate(base, ("trials",), base["trials"] + base["trials"][:1]))),
        ("run-id-newline", dumps_raw(mutate(base, ("run_id",), "a\nb"))),
        ("run-id-long", dumps_raw(mutate(base, ("run_id",), "x" * 5000))),
        ("trials-null-item", dumps_raw(mutate(base, ("trials",), [None, *base["trials"]]))),
        ("plan-null-item", dumps_raw(mutate(base, ("plan",), [None, *base["plan"]]))),
        ("variants-null-item", dumps_raw(mutate(base, ("experiments", "multi-stage", "variants", 0), None))),
        ("metric-name-script", dumps_raw(mutate(base, ("trials", 0, "metrics", "<script>x</script>"), 1))),
    ]:
        out.append((f"file={label}", ("file", label), text))
    return out


def write_results(root: Path, bad_text: str | bytes | None, *, bad_name: str = f"{BAD_ID}.json") -> Path:
    """A results dir holding the good run and (when given) one bad file beside it."""
    folder = root / MACHINE
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(GOOD_RUN_FILE, folder / f"{GOOD_ID}.json")
    if bad_text is not None:
        data = bad_text.encode("utf-8", "surrogatepass") if isinstance(bad_text, str) else bad_text
        (folder / bad_name).write_bytes(data)
    return folder / bad_name


# --------------------------------------------------------------------------- layouts


def _fifo(p: Path) -> None:
    os.mkfifo(p)


def _sock(p: Path) -> None:
    s = socket.socket(socket.AF_UNIX)
    cwd = Path.cwd()
    os.chdir(p.parent)  # AF_UNIX paths are limited to ~108 bytes: bind by a short relative name
    try:
        s.bind(p.name)
    finally:
        os.chdir(cwd)
        s.close()


def _chardev(p: Path) -> None:
    try:
        os.mknod(p, 0o644 | stat.S_IFCHR, os.makedev(1, 5))  # /dev/zero's numbers
    except PermissionError:
        p.symlink_to("/dev/zero")


def layouts() -> list[tuple[str, Callable[[Path], None]]]:
    """(name, make(path_of_bad_json)) - each lays out something hostile where a run file would be."""
    outside_dir = Path("/tmp") / "imagebench-hostile-outside"

    def outside_file(p: Path) -> None:
        outside_dir.mkdir(exist_ok=True)
        target = outside_dir / "run.json"
        target.write_text(dumps_raw(good_run("20260904T000000Z-0ut5de")), "utf-8")
        p.symlink_to(target)

    def inside_link(p: Path) -> None:
        (p.parent / "real.data").write_text(dumps_raw(good_run("20260905T000000Z-11111d")), "utf-8")
        p.symlink_to("real.data")

    def machine_dir_link(p: Path) -> None:
        outside_dir.mkdir(exist_ok=True)
        (outside_dir / "x.json").write_text(dumps_raw(good_run("20260906T000000Z-0ut5d2")), "utf-8")
        (p.parent.parent / "evil").symlink_to(outside_dir)

    def big_sparse(p: Path) -> None:
        with open(p, "wb") as fh:
            fh.truncate(300 * 1024 * 1024)

    def loop(p: Path) -> None:
        p.symlink_to(p.name)

    def dangling(p: Path) -> None:
        p.symlink_to("/nonexistent/imagebench/run.json")

    def directory(p: Path) -> None:
        p.mkdir()
        (p / "inner.json").write_text("{}", "utf-8")

    def dup_run_id(p: Path) -> None:
        shutil.copy(GOOD_RUN_FILE, p)

    def unreadable(p: Path) -> None:
        p.write_text("{}", "utf-8")
        p.chmod(0)

    def hidden_tmp(p: Path) -> None:
        (p.parent / f".{p.name}.tmp").write_text("{", "utf-8")

    return [
        ("fifo", _fifo),
        ("socket", _sock),
        ("chardev", _chardev),
        ("symlink-dev-zero", lambda p: p.symlink_to("/dev/zero")),
        ("symlink-dev-null", lambda p: p.symlink_to("/dev/null")),
        ("symlink-etc-shadow", lambda p: p.symlink_to("/etc/shadow")),
        ("symlink-outside-file", outside_file),
        ("symlink-inside", inside_link),
        ("machine-dir-symlink-outside", machine_dir_link),
        ("sparse-300mb", big_sparse),
        ("symlink-loop", loop),
        ("symlink-dangling", dangling),
        ("directory-named-json", directory),
        ("duplicate-run-id", dup_run_id),
        ("unreadable", unreadable),
        ("hidden-temp-file", hidden_tmp),
        ("symlink-proc-self-mem", lambda p: p.symlink_to("/proc/self/mem")),
    ]


# --------------------------------------------------------------------------- experiment.toml


GOOD_TOML: dict[str, Any] = {
    "schema_version": 1,
    "name": "good",
    "practice": "A practice",
    "section": "dockerfile",
    "claim": "Candidate is smaller.",
    "trials": 3,
    "scenarios": ["cold"],
    "metrics": ["image_bytes"],
    "probes": [],
    "requires": [],
    "variants": [
        {"name": "a", "dockerfile": "Dockerfile.a", "context": "context"},
        {"name": "b", "dockerfile": "Dockerfile.b", "context": "context"},
    ],
    "claims": [
        {
            "metric": "image_bytes",
            "expect": "lower",
            "baseline": "a",
            "candidate": "b",
            "article_section": "dockerfiles.3",
        },
        {"metric": "layers", "op": "<=", "value": 3, "variant": "b", "article_section": "dockerfiles.4"},
        {
            "metric": "build_seconds",
            "expect": "delta",
            "baseline": "a",
            "candidate": "b",
            "value": 0.5,
            "tolerance": 0.1,
            "source": "extension",
        },
    ],
}


def toml_value(v: Any) -> str:
    if isinstance(v, Raw):
        return v.text
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(type(v))


def toml_dumps(data: dict) -> str:
    lines = []
    tables = {
        k: v for k, v in data.items() if isinstance(v, list) and v and all(isinstance(x, dict) for x in v)
    }
    for k, v in data.items():
        if k not in tables:
            lines.append(f"{json.dumps(k)} = {toml_value(v)}")
    for k, items in tables.items():
        for item in items:
            lines.append(f"\n[[{k}]]")
            lines += [f"{json.dumps(ik)} = {toml_value(iv)}" for ik, iv in item.items()]
    return "\n".join(lines) + "\n"


def write_experiment(
    root: Path, data: dict | None = None, name: str = "good", text: str | None = None
) -> Path:
    folder = root / name
    (folder / "context").mkdir(parents=True, exist_ok=True)
    (folder / "context" / "app.txt").write_text("hello\n", "utf-8")
    for v in ("a", "b"):
        (folder / f"Dockerfile.{v}").write_text("FROM scratch\nCOPY app.txt /\n", "utf-8")
    body = text if text is not None else toml_dumps(dict(data or GOOD_TOML, name=name))
    (folder / "experiment.toml").write_text(body, "utf-8", errors="surrogatepass")
    return folder


HOSTILE_TOML: list[tuple[str, Any]] = [
    ("nan", float("nan")),
    ("inf", float("inf")),
    ("-inf", float("-inf")),
    ("minus-one", -1),
    ("zero", 0),
    ("huge-int", Raw("9223372036854775807")),
    ("1e308", 1e308),
    ("empty", ""),
    ("dot", "."),
    ("nul", "x\0y"),
    ("long", "a" * 5000),
    ("list", []),
    ("table", {}),
    ("true", True),
    ("dotdot", "../../../etc/passwd"),
    ("absolute", "/etc/passwd"),
    ("nested-500", Raw("[" * 500 + "]" * 500)),
    ("unknown-name", "no-such-thing"),
    ("script", "<script>alert(1)</script>"),
]

TOML_PATHS: list[tuple] = [
    ("schema_version",),
    ("name",),
    ("practice",),
    ("section",),
    ("claim",),
    ("trials",),
    ("scenarios",),
    ("metrics",),
    ("probes",),
    ("requires",),
    ("variants",),
    ("claims",),
    ("variants", 0, "name"),
    ("variants", 0, "dockerfile"),
    ("variants", 0, "context"),
    ("variants", 0, "scenarios"),
    ("variants", 0, "requires"),
    ("variants", 0, "build_args"),
    ("claims", 0, "metric"),
    ("claims", 0, "expect"),
    ("claims", 0, "baseline"),
    ("claims", 1, "value"),
    ("claims", 1, "op"),
    ("claims", 2, "value"),
    ("claims", 2, "tolerance"),
]

# the list: each must be refused with a one-line error naming file, line and key
TOML_MUST_REJECT = {
    ("variants", 0, "dockerfile", "empty"),
    ("variants", 0, "dockerfile", "dot"),
    ("variants", 0, "dockerfile", "nul"),
    ("variants", 0, "dockerfile", "long"),
    ("variants", 0, "context", "nul"),
    ("claims", 1, "value", "nan"),
    ("claims", 1, "value", "inf"),
    ("claims", 1, "value", "minus-one"),
    ("claims", 2, "value", "nan"),
    ("claims", 2, "tolerance", "minus-one"),
    ("claims", 2, "tolerance", "inf"),
    ("metrics", "unknown-name"),
    ("claims", 0, "metric", "unknown-name"),
    ("probes", "unknown-name"),
    ("requires", "unknown-name"),
    ("trials", "nested-500"),
}


def toml_mutations() -> list[tuple[str, tuple, dict | None, Callable[[Path], None] | None]]:
    out: list[tuple[str, tuple, dict | None, Callable[[Path], None] | None]] = []
    for path in TOML_PATHS:
        for label, value in [*HOSTILE_TOML, ("delete", None)]:
            if label == "unknown-name" and path[-1] in ("metrics", "probes", "requires", "scenarios"):
                value = ["no-such-thing"]
            data = mutate(GOOD_TOML, path, value, delete=label == "delete")
            out.append(("/".join(map(str, path)) + "=" + label, (*path, label), data, None))

    def fs(name: str, fn: Callable[[Path], None]) -> None:
        out.append((f"fs={name}", ("fs", name), None, fn))

    fs("dockerfile-dir", lambda f: ((f / "Dockerfile.a").unlink(), (f / "Dockerfile.a").mkdir()))
    fs("dockerfile-fifo", lambda f: ((f / "Dockerfile.a").unlink(), os.mkfifo(f / "Dockerfile.a")))
    fs("dockerfile-missing", lambda f: (f / "Dockerfile.a").unlink())
    fs(
        "dockerfile-link-shadow",
        lambda f: ((f / "Dockerfile.a").unlink(), (f / "Dockerfile.a").symlink_to("/etc/shadow")),
    )
    fs(
        "dockerfile-link-loop",
        lambda f: ((f / "Dockerfile.a").unlink(), (f / "Dockerfile.a").symlink_to("Dockerfile.a")),
    )
    fs("context-file", lambda f: (shutil.rmtree(f / "context"), (f / "context").write_text("x")))
    fs("context-link-shadow", lambda f: (f / "context" / "secret").symlink_to("/etc/shadow"))
    fs("context-link-outside-dir", lambda f: (f / "context" / "etc").symlink_to("/etc"))
    fs("context-link-loop", lambda f: (f / "context" / "loop").symlink_to("loop"))
    fs("context-dir-loop", lambda f: (f / "context" / "up").symlink_to(".."))
    fs("context-fifo", lambda f: os.mkfifo(f / "context" / "pipe"))
    fs("toml-fifo", lambda f: ((f / "experiment.toml").unlink(), os.mkfifo(f / "experiment.toml")))
    fs(
        "toml-dev-zero",
        lambda f: ((f / "experiment.toml").unlink(), (f / "experiment.toml").symlink_to("/dev/zero")),
    )
    fs("toml-binary", lambda f: (f / "experiment.toml").write_bytes(bytes(range(256)) * 4))
    fs("toml-empty", lambda f: (f / "experiment.toml").write_text(""))
    fs(
        "toml-deep-table",
        lambda f: (f / "experiment.toml").write_text("x = " + "{a = " * 2000 + "1" + "}" * 2000),
    )
    fs("toml-deep-array", lambda f: (f / "experiment.toml").write_text("trials = " + "[" * 5000 + "]" * 5000))
    fs(
        "toml-unknown-key-newline",
        lambda f: (f / "experiment.toml").write_text(
            toml_dumps(dict(GOOD_TOML, name="good")) + '"a\\nb" = 1\n'
        ),
    )
    fs(
        "duplicate-variant",
        lambda f: (f / "experiment.toml").write_text(
            toml_dumps(dict(GOOD_TOML, name="good", variants=[GOOD_TOML["variants"][0]] * 2))
        ),
    )
    return out
