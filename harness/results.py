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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import msgspec

from harness import machine as machine_ids
from harness import schemas
from harness.clock import utcnow
from harness.errors import EnvironmentProblem, SchemaError, UsageError
from harness.metrics import unit_of

if TYPE_CHECKING:
    import pandas as pd

    from harness.records import ExperimentDef, JSONObject, PlanEntry, RunRecord, RunStatus, TrialRecord


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
    data: RunRecord

    # -- construction -------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        results_dir: Path,
        *,
        command: list[str],
        seed: int,
        fingerprint: JSONObject,
        experiments: dict[str, ExperimentDef],
        plan: list[PlanEntry],
        options: JSONObject,
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
        data: RunRecord = {
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "run_id": run_id,
            "machine": machine,
            # MachineIdentity holds only JSON values, but mypy takes no TypedDict for a dict[str, JSONValue]
            "machine_identity": cast("JSONObject", ident),
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
    def trials(self) -> list[TrialRecord]:
        return self.data["trials"]

    def record_trial(self, trial: TrialRecord) -> None:
        """Add (or replace an interrupted attempt of) a trial and rewrite the file atomically."""
        key = trial_key(trial)
        self.data["trials"] = [t for t in self.trials if trial_key(t) != key]
        self.data["trials"].append(trial)
        self.save()

    def warn(self, message: str) -> None:
        if message not in self.data["warnings"]:
            self.data["warnings"].append(message)

    def finish(self, status: RunStatus) -> None:
        self.data["status"] = status
        self.save()

    def missing(self) -> list[PlanEntry]:
        """Plan entries without a finished (ok/failed/skipped) trial: what --resume measures."""
        done = {trial_key(t) for t in self.trials if t.get("status") in ("ok", "failed", "skipped")}
        return [p for p in self.data["plan"] if trial_key(p) not in done]

    def save(self, *, create: bool = False) -> None:
        self.data["updated_at"] = utcnow()
        atomic_write_json(self.path, self.data, exclusive=create)


def trial_key(t: TrialRecord | PlanEntry) -> tuple[str, str, str, int]:
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
MAX_TEXT = schemas.MAX_TEXT  # longest string a reader relies on (ids, names, errors)
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
    """No object or list nested deeper than `limit` (the top level is 1), one level at a time.

    Parsed JSON holds plain dicts and lists only, so `type(v) is` suffices (3-12 ms on the committed
    runs against 25-28 ms for a stack of (node, depth) pairs, median of 5).
    """
    level: list[Any] = [data] if type(data) is dict or type(data) is list else []
    depth = 1
    while level:
        if depth > limit:
            return False
        below: list[Any] = []
        for node in level:
            for v in node.values() if type(node) is dict else node:
                if type(v) is dict or type(v) is list:
                    below.append(v)
        level, depth = below, depth + 1
    return True


def parse_run_bytes(raw: bytes) -> Any:
    """JSON with only finite numbers and bounded nesting; _Bad otherwise.

    msgspec parses a good file (the 1.4 MB of committed runs in 5-9 ms, against 20-22 ms for
    json.loads with the finite-float hook, median of 5); it refuses everything json.loads refuses
    here (invalid UTF-8, NaN, out-of-range numbers, lone surrogates, trailing data, deep nesting),
    and then the json path below parses again, so the message is today's.
    """
    try:
        data = msgspec.json.decode(raw)
    except (msgspec.MsgspecError, RecursionError, ValueError):
        return _parse_checked(raw)
    if not _depth_ok(data):
        raise _Bad(f"nested deeper than {MAX_NESTING} levels")
    return data


def _parse_checked(raw: bytes) -> Any:
    """The json module's parse, which names what is wrong (line, column, the bad number)."""
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


# -- schema checks: the model `harness.schemas.RunFile` (unknown keys are accepted and ignored) -----
# msgspec checks every type the readers rely on; its message (`Expected `str | null`, got `int` -
# at `$.trials[0].image.tag``) is turned into today's one line (`trials[0].image 'tag' must be a
# string or null, got 3`). What a type cannot say stays here: the header's messages, printable ids,
# a claim's expect-or-op rule and repeated trials.

_EXPECT = ("lower", "higher", "delta")
_OPS = ("<", "<=", ">", ">=", "==", "!=")
_CHOICES = {"status": TRIAL_STATES, "expect": _EXPECT, "op": _OPS}  # below the top level
_TABLES = {"trials": "a list", "plan": "a list", "experiments": "an object", "fingerprint": "an object"}
_PLURAL = {"a string": "strings", "a finite number": "finite numbers", "an integer": "finite numbers"}
_NOT_NULL = ("variants", "claims", "preconditions", "metrics", "probes", "requires", "not_measured")
_INT64 = ("<= 9223372036854775807", ">= -9223372036854775807")
_TYPE_WORDS = {
    "str": "a string",
    "int": "an integer",
    "float": "a finite number",
    "bool": "true/false",
    "object": "an object",
    "array": "a list",
    "null": "null",
}
# the dicts whose values have a model: where msgspec says `[...]`, the key is found by trying each
_DICT_VALUES: dict[str, Any] = {
    "experiments": schemas.DefinitionFile,
    "bases": schemas.BaseFile | None,
    "fingerprint.lab.bases": schemas.BaseFile | None,
    "trials[].metrics": schemas.MetricValue,
    "trials[].bases": str | None,
    "machine_identity": schemas.IdentityValue,
}
_SEGMENT = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+|\.\.\.)\]")
_MODEL_ERROR = re.compile(r"^(?P<what>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)


def _need(cond: bool, where: str, what: str, value: Any = None) -> None:
    if not cond:
        raise _Bad(f"{where} {what}" + ("" if value is None else f", got {_short(value)}"))


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _type_words(expr: str) -> str:
    """msgspec's `str | int | float | null` as today's words: "a string or a finite number" (null,
    always allowed beside the others where it is, is not named)."""
    words = [_TYPE_WORDS.get(t.strip(), t.strip()) for t in expr.split("|")]
    if "a finite number" in words and "an integer" in words:
        words.remove("an integer")
    named = [w for w in words if w != "null"] or words
    return " or ".join(dict.fromkeys(named))


def _resolve(data: Any, path: str) -> tuple[list[str | int], Any]:
    """The path's segments with each `[...]` replaced by the failing key, and the value found there."""
    segments: list[str | int] = []
    node: Any = data
    pattern: list[str] = []
    for m in _SEGMENT.finditer(path):
        name, index = m.group(1), m.group(2)
        if name is not None:
            segments.append(name)
            pattern.append(("." if pattern else "") + name)
            node = node.get(name) if isinstance(node, dict) else None
        elif index == "...":
            key = _failing_key(node, _DICT_VALUES.get("".join(pattern)))
            segments.append(key if key is not None else "...")
            node = node.get(key) if isinstance(node, dict) and key is not None else None
        else:
            segments.append(int(index))
            pattern.append("[]")
            node = node[int(index)] if isinstance(node, list) and int(index) < len(node) else None
    return segments, node


def _failing_key(node: Any, value_type: Any) -> str | None:
    if not isinstance(node, dict) or value_type is None:
        return None
    for key, value in node.items():
        try:
            msgspec.convert(value, value_type)
        except msgspec.ValidationError:
            return str(key)
    return None


def _pattern(segments: list[str | int]) -> str:
    """The segments as _DICT_VALUES names a place: `trials[].metrics` (indexes and keys left out)."""
    out = ""
    for seg in segments:
        if isinstance(seg, int):
            out += "[]"
        elif out in _DICT_VALUES:
            out += "{}"
        else:
            out += "." + seg if out else seg
    return out


def _where(segments: list[str | int]) -> str:
    """Segments as today's messages name a place: `trials[0].image`, `experiments['pip-cache']`."""
    out, pattern = "", ""
    for seg in segments:
        if isinstance(seg, int):
            out, pattern = out + f"[{seg}]", pattern + "[]"
        elif pattern in _DICT_VALUES:  # a key of an open dict, not a field name
            out, pattern = out + f"[{_short(seg)}]", pattern + "{}"
        else:
            out, pattern = (out + "." + seg if out else seg), (pattern + "." + seg if pattern else seg)
    return out or "field"


def _model_error(data: Any, exc: msgspec.ValidationError) -> _Bad:
    """msgspec's message as today's one line: where, which key, what it must be, what it was."""
    m = _MODEL_ERROR.match(str(exc))
    what, path = (m.group("what"), m.group("path") or "") if m else (str(exc), "")
    segments, value = _resolve(data, path)
    missing = re.match(r"Object missing required field `(.+)`$", what)
    if missing:  # said as if the key were there and null, as today's checks read a missing key
        return _field_error(_where(segments), missing.group(1), None, "", "", "lacks")
    expected = re.match(r"Expected `([^`]+)`(.*?)(?:, got `[^`]+`)?$", what)
    words, rule = (_type_words(expected.group(1)), expected.group(2).strip()) if expected else ("", "")
    if what.startswith("Invalid enum value"):
        rule = "enum"
    if len(segments) >= 2 and isinstance(segments[-1], int):  # an item of a list
        if words == "an object":
            return _Bad(f"{_where(segments)} must be an object{_got(value)}")
        plural = _PLURAL.get(words, words)
        return _Bad(f"{_where(segments[:-2])} {segments[-2]!r} items must be {plural}{_got(value)}")
    parent = _pattern(segments[:-1])
    if parent in _DICT_VALUES:  # a value of an open object: experiments['x'], trials[0].metrics['y']
        name = _short(segments[-1])
        if parent == "trials[].metrics":
            return _Bad(
                f"{_where(segments[:-2])} metric {name} must be a finite number, true/false, text or null"
                f"{_got(value)}"
            )
        if parent == "trials[].bases":
            return _Bad(f"{_where(segments[:-2])} 'bases'[{name}] must be a string{_got(value)}")
        if parent in ("bases", "fingerprint.lab.bases"):
            return _Bad(f"{parent} items must be objects{_got(value)}")
        if words == "an object":
            return _Bad(f"{_where(segments)} must be an object{_got(value)}")
    if not segments:
        return _Bad(f"the file: {_plain(what)}")
    return _field_error(_where(segments[:-1]), str(segments[-1]), value, words, rule, what)


def _got(value: Any) -> str:
    return "" if value is None else f", got {_short(value)}"


def _field_error(where: str, key: str, value: Any, words: str, rule: str, what: str) -> _Bad:
    """One field's problem, worded as results.py's checks worded it before the model."""
    got = _got(value)
    if where == "field" and key in _TABLES:
        return _Bad(f"field {key!r} missing or not {_TABLES[key]}{got}")
    if key == "trial":
        return _Bad(f"{where} 'trial' must be a whole number from 0{got}")
    if key == "index":
        return _Bad(f"{where} bad 'index'{got}")
    if value is None and where.startswith("experiments[") and key in _NOT_NULL:
        return _Bad(f"{where} {key!r} is null")
    choices = _CHOICES.get(key) if where != "field" else None
    if choices and (rule == "enum" or value is None or words == "a string"):
        return _Bad(f"{where} {key!r} must be one of {', '.join(choices)}{got}")
    if what == "lacks" or (value is None and words == "a string"):
        return _Bad(f"{where} lacks {key!r}")
    if rule.startswith("matching regex"):
        return _Bad(f"{where} {key!r} is empty")
    if rule.startswith("of length <="):
        return _Bad(f"{where} {key!r} is longer than {rule.rsplit(' ', 1)[-1]} characters")
    if rule in _INT64:  # an integer of more than 64 bits where a number goes
        words, rule = "a finite number", ""
    if not words:
        return _Bad(f"{where} {key!r}: {_plain(what)}")
    return _Bad(f"{where} {key!r} must be {words}{(' ' + rule) if rule else ''}{got}")


def _claim_rule(c: schemas.ClaimFile, w: str) -> None:
    """A claim is a ratio/delta between two variants (expect) or a check on one (op)."""
    if c.get("expect") is not None:
        for key in ("baseline", "candidate"):
            v = c.get(key)
            _need(
                isinstance(v, str) and bool(v.strip()),
                w,
                f"lacks {key!r}" if v is None else f"{key!r} is empty",
            )
        if c.get("expect") == "delta":
            _need(c.get("value") is not None, w, "a delta claim needs 'value'")
    else:
        _need(c.get("op") is not None, w, f"needs 'expect' or an 'op' of {' '.join(_OPS)}")
        v = c.get("variant")
        _need(
            isinstance(v, str) and bool(v.strip()),
            w,
            "lacks 'variant'" if v is None else "'variant' is empty",
        )
        _need(c.get("value") is not None, w, "a check needs 'value'")


def validate_run(data: Any) -> RunRecord:
    """`data` if it is a run this imagebench reads; _Bad naming the first problem otherwise."""
    _run_header(data)
    for key in ("run_id", "machine"):
        v = data.get(key)
        _need(
            not isinstance(v, str) or (len(v) <= 200 and v.isprintable()),
            "field",
            f"{key!r} must be printable, <= 200 characters",
        )
    try:
        run: schemas.RunFile = msgspec.convert(data, schemas.RunFile)
    except msgspec.ValidationError as exc:
        raise _model_error(data, exc) from None
    name = (run.get("machine_identity") or {}).get("name")
    _need(name is None or isinstance(name, str), "machine_identity", "'name' must be a string", name)
    for exp_name, defn in run["experiments"].items():
        for table, claims in (("claims", defn.get("claims")), ("preconditions", defn.get("preconditions"))):
            for i, c in enumerate(claims or []):
                _claim_rule(c, f"experiments[{_short(exp_name)}].{table}[{i}]")
    seen: set[tuple[str, str, str, int]] = set()
    for i, t in enumerate(run["trials"]):
        ident = (t["experiment"], t["variant"], t["scenario"], t["trial"])
        _need(ident not in seen, f"trials[{i}]", f"repeats trial {_short(ident)}")
        seen.add(ident)
    return cast("RunRecord", data)  # every type a reader relies on is checked (schemas.RunFile)


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


def read_run_file(path: Path, *, root: Path | None = None) -> RunRecord:
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

    runs: list[RunRecord]
    skipped: list[str]


def scan_runs(results_dir: Path) -> Loaded:
    """Every valid run under `results_dir` and a one-line reason for each file skipped.

    A run id met a second time (one run in two files) is skipped there: pooling it would count
    its trials twice.
    """
    root = Path(results_dir)
    runs: list[RunRecord] = []
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


def load_runs(results_dir: Path, *, on_skip: Callable[[str], object] | None = None) -> list[RunRecord]:
    """Every valid run under `results_dir`; corrupt or foreign files are skipped with a warning."""
    loaded = scan_runs(results_dir)
    for reason in loaded.skipped:
        msg = f"skipped {reason}"
        if on_skip:
            on_skip(msg)
        else:
            warnings.warn(msg, stacklevel=2)
    return loaded.runs


TidyRow = tuple[str, str, str, str, str, int, str, float, str]


def tidy_rows(runs: Iterable[RunRecord]) -> Iterator[TidyRow]:
    """One row per successful trial and numeric metric (true/false, text and null left out)."""
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


def load_table(
    results_dir: Path | None = None,
    *,
    runs: list[RunRecord] | None = None,
    on_skip: Callable[[str], object] | None = None,
) -> pd.DataFrame:
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
