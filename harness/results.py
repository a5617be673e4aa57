"""Results: one versioned JSON file per run, written atomically; a loader to a tidy DataFrame.

Layout: `<results>/<machine>/<run_id>.json`. A run file is rewritten (write to a temporary file
in the same directory, fsync, rename) after every trial, so a crash loses at most the trial in
flight, and a reader never sees a half-written file. A new run never overwrites another run's
file. See results/README.md for every field.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import secrets
import stat
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import machine as machine_ids
from harness.clock import utcnow
from harness.errors import EnvironmentProblem, SchemaError, UsageError
from harness.metrics import unit_of

SCHEMA = "imagebench.run"
SCHEMA_VERSION = 1
# Schema history (keep in step with results/README.md):
#   1 - first version: fingerprint, experiments, plan, trials with metrics and steps.

TIDY_COLUMNS = ["run_id", "machine", "experiment", "variant", "scenario", "trial", "metric", "value", "unit"]
TRIAL_STATES = ("ok", "failed", "interrupted", "skipped")


def machine_name() -> str:
    """This machine's run folder and label: host name plus a hash of its ids (harness/machine.py)."""
    return machine_ids.machine_name()


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


@dataclass
class Run:
    """One run: the plan, the environment, every trial so far. Serialised as one JSON file."""

    run_id: str
    machine: str
    path: Path
    data: dict[str, Any] = field(default_factory=dict)

    # -- construction -------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        results_dir: Path,
        *,
        command: list[str],
        seed: int,
        fingerprint: dict,
        experiments: dict[str, dict],
        plan: list[dict],
        options: dict,
    ) -> Run:
        ident = machine_ids.identity()
        machine = ident["name"]
        folder = Path(results_dir) / machine
        folder.mkdir(parents=True, exist_ok=True)
        while True:
            run_id = new_run_id()
            path = folder / f"{run_id}.json"
            if not path.exists():
                break
        now = utcnow()
        data = {
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "run_id": run_id,
            "machine": machine,
            "machine_identity": ident,
            "created_at": now,
            "updated_at": now,
            "status": "running",
            "command": command,
            "seed": seed,
            "options": options,
            "fingerprint": fingerprint,
            "experiments": experiments,
            "plan": plan,
            "trials": [],
            "warnings": [],
        }
        run = cls(run_id=run_id, machine=machine, path=path, data=data)
        run.save(create=True)
        return run

    @classmethod
    def open(cls, results_dir: Path, run_id: str) -> Run:
        """Open an existing run by id (searching every machine folder) or by path."""
        candidate = Path(run_id)
        if candidate.suffix == ".json" and candidate.is_file():
            path = candidate
        else:
            hits = sorted(Path(results_dir).glob(f"*/{run_id}.json"))
            if not hits:
                raise UsageError(f"no run {run_id!r} under {results_dir}")
            path = hits[0]
        data = read_run_file(path)
        return cls(run_id=data["run_id"], machine=data["machine"], path=path, data=data)

    # -- mutation -------------------------------------------------------------------------
    @property
    def trials(self) -> list[dict]:
        return self.data["trials"]

    def record_trial(self, trial: dict) -> None:
        """Add (or replace an interrupted attempt of) a trial and rewrite the file atomically."""
        key = trial_key(trial)
        self.data["trials"] = [t for t in self.trials if trial_key(t) != key]
        self.data["trials"].append(trial)
        self.save()

    def warn(self, message: str) -> None:
        if message not in self.data["warnings"]:
            self.data["warnings"].append(message)

    def finish(self, status: str) -> None:
        self.data["status"] = status
        self.save()

    def missing(self) -> list[dict]:
        """Plan entries without a finished (ok/failed/skipped) trial: what --resume measures."""
        done = {trial_key(t) for t in self.trials if t.get("status") in ("ok", "failed", "skipped")}
        return [p for p in self.data["plan"] if trial_key(p) not in done]

    def save(self, *, create: bool = False) -> None:
        self.data["updated_at"] = utcnow()
        atomic_write_json(self.path, self.data, exclusive=create)


def trial_key(t: dict) -> tuple:
    return (t["experiment"], t["variant"], t["scenario"], int(t["trial"]))


def atomic_write_json(path: Path, data: Any, *, exclusive: bool = False) -> None:
    """Write JSON to a temporary file beside `path`, fsync and rename: all or nothing.

    With `exclusive`, refuse to replace an existing file (a new run never overwrites another).
    A full disk raises EnvironmentProblem and leaves any previous file untouched.
    """
    path = Path(path)
    if exclusive and path.exists():
        raise UsageError(f"{path} exists; refusing to overwrite another run")
    payload = json.dumps(data, indent=1, sort_keys=False, allow_nan=False, default=json_default)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(payload)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        if exclusive:
            os.link(tmp, path)  # fails if path appeared meanwhile
            os.unlink(tmp)
        else:
            os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if exc.errno == 28:  # ENOSPC
            raise EnvironmentProblem(
                f"no space left on device writing {path}; previous results kept",
                hint="free disk space and rerun with --resume",
            ) from None
        raise EnvironmentProblem(f"cannot write {path}: {exc.strerror or exc}") from None


def json_default(obj: Any) -> Any:
    """The harness's one JSON encoder fallback: numpy scalars, paths, sets and tuples."""
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, set | tuple):
        return list(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


# --------------------------------------------------------------------------- reading


MAX_RUN_FILE_BYTES = 256 * 1024 * 1024  # a real run file of 10k trials is ~10 MB
MAX_NESTING = 64  # the schema nests about 8 deep; anything much deeper is not a run file
MAX_TEXT = 100_000  # longest string a reader relies on (ids, names, errors)
_SKIP_FOLDERS = ("drift", "report", "gate", "perf")


class _Bad(Exception):
    """Internal: why a run file is not valid (turned into a one-line SchemaError)."""


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _plain(text: str) -> str:
    """A string made safe for a one-line message: control characters escaped, length bounded."""
    out = text.encode("unicode_escape", "backslashreplace").decode("ascii")
    return out if len(out) <= 300 else out[:297] + "..."


def read_bounded(path: Path, *, root: Path | None = None, limit: int | None = None) -> bytes:
    """The bytes of a regular file, never more than `limit`; SchemaError (one line) otherwise.

    Never opens a FIFO, a socket or a device (a FIFO would block forever, /dev/zero would fill
    memory); a symlink is followed only when its target stays under `root`.
    """
    path = Path(path)
    limit = MAX_RUN_FILE_BYTES if limit is None else limit
    try:
        lst = os.lstat(path)
        real = Path(os.path.realpath(path))
        if root is not None and not real.is_relative_to(Path(os.path.realpath(root))):
            how = "symlink" if stat.S_ISLNK(lst.st_mode) else "path"
            raise SchemaError(f"{_plain(str(path))}: {how} leads outside {_plain(str(root))}; not read")
        st = real.stat()
        if not stat.S_ISREG(st.st_mode):
            raise SchemaError(f"{_plain(str(path))}: not a regular file ({_kind(st.st_mode)}); not read")
        if st.st_size > limit:
            raise SchemaError(
                f"{_plain(str(path))}: {st.st_size} bytes, more than the {limit} a run file may have"
            )
        fd = os.open(
            real, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_NOFOLLOW", 0)
        )
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped after the check
                raise SchemaError(f"{_plain(str(path))}: not a regular file; not read")
            chunks, total = [], 0
            while True:
                chunk = os.read(fd, min(1 << 20, limit + 1 - total))
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
                if total > limit:
                    raise SchemaError(f"{_plain(str(path))}: more than the {limit} bytes a run file may have")
            return b"".join(chunks)
        finally:
            os.close(fd)
    except SchemaError:
        raise
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise SchemaError(f"{_plain(str(path))}: cannot read ({_plain(reason)})") from None


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a file"


def _reject_constant(name: str) -> Any:
    raise _Bad(f"{name} is not a number a run file may hold")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Bad(f"number {text[:30]} is out of range")
    return value


def _depth_ok(data: Any, limit: int = MAX_NESTING) -> bool:
    stack = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return False
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node if isinstance(v, dict | list))
    return True


def parse_run_bytes(raw: bytes) -> Any:
    """JSON with only finite numbers and bounded nesting; _Bad otherwise."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Bad(f"not UTF-8 text (byte {exc.start})") from None
    try:
        data = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        raise _Bad(f"nested deeper than {MAX_NESTING} levels") from None
    except json.JSONDecodeError as exc:
        raise _Bad(f"not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except ValueError as exc:  # an integer with more digits than Python converts
        raise _Bad(f"not JSON ({_plain(str(exc).splitlines()[0])})") from None
    if not _depth_ok(data):
        raise _Bad(f"nested deeper than {MAX_NESTING} levels")
    return data


# -- lone surrogates: escaped at loading -------------------------------------------------------
# JSON may spell a lone UTF-16 surrogate ("\ud800"), which is no Unicode character: a Python
# string holding one cannot be written as UTF-8, so every reader that prints, plots or writes it
# (table, report, gate --summary) would crash. imagebench can write such files itself: json.dumps
# escapes the surrogates that Python puts in place of undecodable bytes (a non-UTF-8 byte in the
# command line, a file name, a build's output). So they are escaped, not refused: every string
# (object keys too) holding one gets it as the six characters `\udXXX`, the form error messages
# use, the same way wherever it occurs (a variant's name in the definition and in its trials still
# match), and the run keeps every measurement, with a warning naming the fields. `run_id` and
# `machine` are left as they are: the validator refuses them (they must be printable).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_KEEP_AS_IS = ("run_id", "machine")


def _utf8_safe(text: str) -> str | None:
    """`text` with each lone surrogate escaped as `\\udXXX`, or None when it has none."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return None


def _field(where: str, key: Any) -> str:
    return f"{where}[{key}]" if isinstance(key, int) else (f"{where}.{key}" if where else str(key))


def escape_lone_surrogates(data: Any) -> list[str]:
    """Escape every lone surrogate in `data`'s strings and keys, in place; the fields changed.

    Fields are named as the validator names them (`trials[0].steps[1].name`), in file order.
    """
    changed: list[str] = []
    stack: list[tuple[Any, str]] = [(data, "")]
    while stack:
        node, where = stack.pop()
        children: list[tuple[Any, str]] = []
        if isinstance(node, dict):
            items = list(node.items())
            renamed = False
            for i, (key, value) in enumerate(items):
                safe_key = _utf8_safe(key)
                if safe_key is not None:
                    changed.append(_field(where, safe_key) + " (key)")
                    items[i] = (safe_key, value)
                    renamed = True
                name = _field(where, items[i][0])
                if isinstance(value, str):
                    safe = None if (not where and key in _KEEP_AS_IS) else _utf8_safe(value)
                    if safe is not None:
                        changed.append(name)
                        items[i] = (items[i][0], safe)
                        node[key] = safe
                elif isinstance(value, dict | list):
                    children.append((value, name))
            if renamed:
                node.clear()
                node.update(items)
        elif isinstance(node, list):
            for i, value in enumerate(node):
                if isinstance(value, str):
                    safe = _utf8_safe(value)
                    if safe is not None:
                        changed.append(_field(where, i))
                        node[i] = safe
                elif isinstance(value, dict | list):
                    children.append((value, _field(where, i)))
        stack.extend(reversed(children))
    return changed


def _surrogate_warning(fields: list[str]) -> str:
    shown = ", ".join(_plain(f) for f in fields[:3]) + (
        f" and {len(fields) - 3} more" if len(fields) > 3 else ""
    )
    return (
        f"{len(fields)} string(s) held a lone surrogate (not Unicode text), shown escaped as \\udXXX: {shown}"
    )


# -- schema checks (only what the readers rely on; unknown keys are accepted and ignored) ------


def _need(cond: bool, where: str, what: str, value: Any = None) -> None:
    if not cond:
        raise _Bad(f"{where} {what}" + ("" if value is None else f", got {_short(value)}"))


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return (_is_int(v) and abs(v) < 2**63) or (isinstance(v, float) and math.isfinite(v))


def _text(d: dict, key: str, where: str, *, required: bool = True, empty: bool = True) -> None:
    if key not in d or d[key] is None:
        _need(not required, where, f"lacks {key!r}")
        return
    v = d[key]
    _need(isinstance(v, str), where, f"{key!r} must be a string", v)
    _need(len(v) <= MAX_TEXT, where, f"{key!r} is longer than {MAX_TEXT} characters")
    _need(empty or bool(v.strip()), where, f"{key!r} is empty")


def _opt(d: dict, key: str, typ: type | tuple, where: str) -> None:
    v = d.get(key)
    _need(v is None or isinstance(v, typ), where, f"{key!r} must be {_tname(typ)}", v)


def _tname(typ: type | tuple) -> str:
    names = {dict: "an object", list: "a list", str: "a string", int: "an integer", bool: "true/false"}
    typs = typ if isinstance(typ, tuple) else (typ,)
    return " or ".join(names.get(t, t.__name__) for t in typs)


def _str_list(d: dict, key: str, where: str) -> None:
    v = d.get(key)
    if v is None:
        return
    _need(isinstance(v, list), where, f"{key!r} must be a list", v)
    for item in v:
        _need(isinstance(item, str), where, f"{key!r} items must be strings", item)


def _num_or_null(d: dict, key: str, where: str) -> None:
    v = d.get(key)
    _need(v is None or _is_num(v), where, f"{key!r} must be a finite number", v)


def _definition(name: Any, defn: Any) -> None:
    where = f"experiments[{_short(name)}]"
    _need(isinstance(defn, dict), where, "must be an object", defn)
    for key in (
        "name",
        "practice",
        "section",
        "claim",
        "article",
        "summary",
        "cannot_show",
        "definition_hash",
    ):
        _text(defn, key, where, required=False)
    for key in ("requires", "probes", "metrics"):
        _str_list(defn, key, where)
    _opt(defn, "not_measured", dict, where)
    _text(defn, "name", where, empty=False)  # analysis keys verdicts by it
    variants = defn.get("variants")
    _need(variants is None or isinstance(variants, list), where, "'variants' must be a list", variants)
    for key in ("variants", "claims", "preconditions", "metrics", "probes", "requires", "not_measured"):
        _need(key not in defn or defn[key] is not None, where, f"{key!r} is null")
    for i, v in enumerate(variants or []):
        w = f"{where}.variants[{i}]"
        _need(isinstance(v, dict), w, "must be an object", v)
        _text(v, "name", w)
        for key in ("dockerfile", "target", "description"):
            _text(v, key, w, required=False)
        _str_list(v, "scenarios", w)
        _str_list(v, "requires", w)
    for table in ("claims", "preconditions"):
        claims = defn.get(table)
        _need(claims is None or isinstance(claims, list), where, f"{table!r} must be a list", claims)
        for i, c in enumerate(claims or []):
            _claim(c, f"{where}.{table}[{i}]")


_EXPECT = ("lower", "higher", "delta")
_OPS = ("<", "<=", ">", ">=", "==", "!=")


def _claim(c: Any, w: str) -> None:
    """A claim as analysis evaluates it: a ratio/delta between two variants or a check on one."""
    _need(isinstance(c, dict), w, "must be an object", c)
    _text(c, "metric", w, empty=False)
    for key in ("scenario", "label", "source"):
        _text(c, key, w, required=False)
    for key in ("value", "tolerance", "tolerance_rel"):
        _num_or_null(c, key, w)
    _opt(c, "primary", bool, w)
    if c.get("expect") is not None:
        _need(c["expect"] in _EXPECT, w, f"'expect' must be one of {', '.join(_EXPECT)}", c["expect"])
        for key in ("baseline", "candidate"):
            _text(c, key, w, empty=False)
        if c["expect"] == "delta":
            _need(c.get("value") is not None, w, "a delta claim needs 'value'")
    else:
        _need(c.get("op") in _OPS, w, f"needs 'expect' or an 'op' of {' '.join(_OPS)}", c.get("op"))
        _text(c, "variant", w, empty=False)
        _need(c.get("value") is not None, w, "a check needs 'value'")


def _base(b: Any, where: str) -> None:
    """A base image record as the report shows it (names and digests text, sizes numbers)."""
    _need(b is None or isinstance(b, dict), where, "items must be objects", b)
    b = b or {}
    for key in ("public", "lab_tag", "image_id", "registry_digest", "stands_in_for", "name", "tag"):
        _text(b, key, where, required=False)
    for key in ("bytes", "compressed_bytes", "official_compressed_bytes"):
        _num_or_null(b, key, where)


def _entry(t: Any, where: str) -> tuple:
    _need(isinstance(t, dict), where, "must be an object", t)
    for key in ("experiment", "variant", "scenario"):
        _text(t, key, where, empty=False)
    n = t.get("trial")
    _need(_is_int(n) and 0 <= n < 1_000_000, where, "'trial' must be a whole number from 0", n)
    return (t["experiment"], t["variant"], t["scenario"], n)


def _trial(t: Any, where: str) -> tuple:
    ident = _entry(t, where)
    status = t.get("status")
    _need(status in TRIAL_STATES, where, f"'status' must be one of {', '.join(TRIAL_STATES)}", status)
    _text(t, "error", where, required=False)
    metrics = t.get("metrics")
    _need(metrics is None or isinstance(metrics, dict), where, "'metrics' must be an object", metrics)
    for name, value in (metrics or {}).items():
        ok = value is None or isinstance(value, bool | str) or _is_num(value)
        _need(ok, where, f"metric {_short(name)} must be a finite number, true/false, text or null", value)
    steps = t.get("steps")
    _need(steps is None or isinstance(steps, list), where, "'steps' must be a list", steps)
    for i, s in enumerate(steps or []):
        w = f"{where}.steps[{i}]"
        _need(isinstance(s, dict), w, "must be an object", s)
        _need(
            "index" not in s or (_is_int(s["index"]) and abs(s["index"]) < 2**31),
            w,
            "bad 'index'",
            s.get("index"),
        )
        for key in ("seconds", "start_offset", "end_offset"):
            _num_or_null(s, key, w)
    for key in ("probe_data", "bases", "image"):
        _opt(t, key, dict, where)
    image = t.get("image") or {}
    for key in ("layer_bytes", "layer_compressed_bytes"):
        sizes = image.get(key)
        _need(sizes is None or isinstance(sizes, list), where, f"image {key!r} must be a list", sizes)
        for size in sizes or []:
            _need(_is_num(size), where, f"image {key!r} items must be finite numbers", size)
    for key in ("bytes", "layers"):
        _num_or_null(image, key, f"{where}.image")
    for key in ("id", "user", "tag", "manifest_digest", "storage_driver"):
        _text(image, key, f"{where}.image", required=False)
    for public, image_id in (t.get("bases") or {}).items():
        _need(
            isinstance(image_id, str | None), where, f"'bases'[{_short(public)}] must be a string", image_id
        )
    return ident


def validate_run(data: Any) -> dict:
    """`data` if it is a run this imagebench reads; _Bad naming the first problem otherwise."""
    _run_header(data)
    _run_fields(data)
    _run_fingerprint(data)
    for base in (data.get("bases") or {}).values():
        _base(base, "bases")
    _need(
        data.get("seed") is None or _is_int(data["seed"]),
        "field",
        "'seed' must be an integer",
        data.get("seed"),
    )
    for name, defn in data["experiments"].items():
        _definition(name, defn)
    for i, p in enumerate(data["plan"]):
        _entry(p, f"plan[{i}]")
    seen: set[tuple] = set()
    for i, t in enumerate(data["trials"]):
        trial_key = _trial(t, f"trials[{i}]")
        _need(trial_key not in seen, f"trials[{i}]", f"repeats trial {_short(trial_key)}")
        seen.add(trial_key)
    return data


def _run_header(data: Any) -> None:
    """A JSON object, an imagebench run file, a schema_version this imagebench reads."""
    _need(isinstance(data, dict), "the file", "is not a JSON object")
    _need(
        data.get("schema") == SCHEMA, "the file", f'is not an imagebench run file (no "schema": "{SCHEMA}")'
    )
    version = data.get("schema_version")
    if _is_int(version) and version > SCHEMA_VERSION:
        raise _Bad(
            f"schema_version {version} is newer than this imagebench reads ({SCHEMA_VERSION}); upgrade imagebench"
        )
    _need(
        _is_int(version) and 1 <= version <= SCHEMA_VERSION,
        "field",
        f"'schema_version' must be 1..{SCHEMA_VERSION}",
        version,
    )


def _run_fields(data: dict) -> None:
    """The run's own fields: ids, status, times, the top-level tables, command, warnings, options."""
    for key in ("run_id", "machine"):
        _text(data, key, "field", empty=False)
        _need(
            len(data[key]) <= 200 and data[key].isprintable(),
            "field",
            f"{key!r} must be printable, <= 200 characters",
        )
    _text(data, "status", "field", empty=False)
    for key in ("created_at", "updated_at"):
        _text(data, key, "field", required=False)
    for key, typ in (("trials", list), ("plan", list), ("experiments", dict), ("fingerprint", dict)):
        _need(isinstance(data.get(key), typ), "field", f"{key!r} missing or not {_tname(typ)}", data.get(key))
    _str_list(data, "command", "field")
    _str_list(data, "warnings", "field")
    _opt(data, "options", dict, "field")
    _opt(data, "bases", dict, "field")
    _opt(data, "machine_identity", dict, "field")
    _text(data.get("machine_identity") or {}, "name", "machine_identity", required=False)


def _run_fingerprint(data: dict) -> None:
    """The fingerprint's parts, the lab's network profile and bases, the machine identity's lists."""
    for key in ("engine", "harness", "host", "lab"):
        _opt(data["fingerprint"], key, dict, "fingerprint")
    profile = (data["fingerprint"].get("lab") or {}).get("profile")
    _need(
        profile is None or isinstance(profile, dict),
        "fingerprint.lab",
        "'profile' must be an object",
        profile,
    )
    _text(profile or {}, "name", "fingerprint.lab.profile", required=False)
    for key in ("rate_bps", "measured_bps", "latency_ms"):
        _num_or_null(profile or {}, key, "fingerprint.lab.profile")
    for key, value in (data.get("machine_identity") or {}).items():
        ok = not isinstance(value, list) or all(isinstance(x, str) for x in value)
        _need(ok, "machine_identity", f"{key!r} items must be strings", value)
    lab_bases = (data["fingerprint"].get("lab") or {}).get("bases")
    _need(
        lab_bases is None or isinstance(lab_bases, list | dict),
        "fingerprint.lab",
        "'bases' must be a list or object",
    )
    for base in lab_bases.values() if isinstance(lab_bases, dict) else lab_bases or []:
        _base(base, "fingerprint.lab.bases")


def read_run_file(path: Path, *, root: Path | None = None) -> dict:
    """Read and validate one run file; SchemaError with a one-line reason naming the file otherwise.

    Opens only regular files (see `read_bounded`), bounds size and nesting, and accepts only
    finite numbers, known schema versions and the types every reader relies on.
    """
    raw = read_bounded(path, root=root)
    try:
        data = parse_run_bytes(raw)
        escaped = escape_lone_surrogates(data) if _SURROGATE_ESCAPE.search(raw) else []
        run = validate_run(data)
        if escaped:
            run["warnings"] = [*(run.get("warnings") or []), _surrogate_warning(escaped)]
        return run
    except _Bad as exc:
        raise SchemaError(f"{_plain(str(path))}: {exc}") from None
    except RecursionError:
        raise SchemaError(f"{_plain(str(path))}: nested deeper than {MAX_NESTING} levels") from None


def iter_run_files(results_dir: Path) -> Iterator[Path]:
    """Candidate run files: `<results>/<machine>/*.json` (hidden names and tool folders left out).

    Yields paths only; never opens them (a FIFO here must not block the listing).
    """
    root = Path(results_dir)
    try:
        folders = sorted(root.iterdir()) if root.is_dir() else []
    except OSError:
        return
    for folder in folders:
        if folder.name in _SKIP_FOLDERS or folder.name.startswith("."):
            continue
        try:
            if not folder.is_dir():
                continue
            names = sorted(folder.iterdir())
        except OSError:
            continue
        for p in names:
            if p.suffix == ".json" and not p.name.startswith("."):
                yield p


@dataclass
class Loaded:
    """What a results directory held: the valid runs and one message per skipped file."""

    runs: list[dict]
    skipped: list[str]


def scan_runs(results_dir: Path) -> Loaded:
    """Every valid run under `results_dir` and a one-line reason for each file skipped.

    A run id met a second time (one run in two files) is skipped there: pooling it would count
    its trials twice.
    """
    root = Path(results_dir)
    runs: list[dict] = []
    skipped: list[str] = []
    where: dict[str, Path] = {}
    for p in iter_run_files(root):
        try:
            data = read_run_file(p, root=root)
        except SchemaError as exc:
            skipped.append(str(exc))
            continue
        first = where.get(data["run_id"])
        if first is not None:
            skipped.append(
                f"{_plain(str(p))}: run id {_plain(data['run_id'])} is also in {_plain(str(first))}"
            )
            continue
        where[data["run_id"]] = p
        runs.append(data)
    return Loaded(runs, skipped)


def check_results_dir(results_dir: Path, label: str = "results") -> Path:
    """`results_dir` if it is a readable directory; UsageError (one line) otherwise."""
    root = Path(results_dir)
    try:
        exists, is_dir = root.exists(), root.is_dir()
        readable = is_dir and os.access(root, os.R_OK | os.X_OK)
    except (OSError, ValueError) as exc:  # NUL byte, name too long
        raise UsageError(
            f"{label} directory {_plain(str(root))} is not a usable path ({_plain(str(exc))})"
        ) from None
    if not exists:
        raise UsageError(f"{label} directory {_plain(str(root))} does not exist")
    if not is_dir:
        raise UsageError(f"{label} {_plain(str(root))} is not a directory")
    if not readable:
        raise UsageError(f"{label} directory {_plain(str(root))} is not readable")
    return root


def load_runs(results_dir: Path, *, on_skip=None) -> list[dict]:
    """Every valid run under `results_dir`; corrupt or foreign files are skipped with a warning."""
    loaded = scan_runs(results_dir)
    for reason in loaded.skipped:
        msg = f"skipped {reason}"
        if on_skip:
            on_skip(msg)
        else:
            warnings.warn(msg, stacklevel=2)
    return loaded.runs


def tidy_rows(runs: Iterable[dict]) -> Iterator[tuple]:
    for run in runs:
        for t in run["trials"]:
            if t.get("status") != "ok":
                continue
            for metric, value in (t.get("metrics") or {}).items():
                if value is None or isinstance(value, bool | str):
                    continue
                yield (
                    run["run_id"],
                    run["machine"],
                    t["experiment"],
                    t["variant"],
                    t["scenario"],
                    int(t["trial"]),
                    metric,
                    float(value),
                    unit_of(metric),
                )


def load_table(results_dir: Path | None = None, *, runs: list[dict] | None = None, on_skip=None):
    """The tidy table of everything measured: run_id, machine, experiment, variant, scenario, trial, metric,
    value, unit (one row per successful trial and metric)."""
    import pandas as pd  # heavy: loaded only when a table is asked for

    if runs is None:
        assert results_dir is not None, "load_table needs results_dir or runs"
        runs = load_runs(results_dir, on_skip=on_skip)
    df = pd.DataFrame.from_records(list(tidy_rows(runs)), columns=TIDY_COLUMNS)
    df["trial"] = df["trial"].astype("int64")
    df["value"] = df["value"].astype("float64")
    return df
