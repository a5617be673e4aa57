"""Drawing the report's plots: each PlotSpec to SVG text and PNG bytes, cached by content, misses in parallel.

A plot is drawn again only when what it would draw changed. Its cache key is a SHA-256 over
  - the spec's `make` closure: its code, its defaults, the values it captured (the data frame, the
    metric, the variant order...) and the globals it names; for a harness module or function named
    there, the source of that module and of every harness module reachable from its globals;
  - the drawing itself: this module's source, Python's minor version, matplotlib's and FreeType's
    versions, numpy's and pandas', every rc setting in effect while drawing and the font files
    matplotlib resolves for the report's text.
A closure holding a value this module cannot hash exactly (an arbitrary object) is never cached.

The cache lives outside the checkout: $IMAGEBENCH_PLOT_CACHE if set ("off" disables it), else
$XDG_CACHE_HOME/imagebench/plots, else ~/.cache/imagebench/plots. One file per plot: a magic line,
the SHA-256 of the rest, the SVG's length, the SVG, the PNG. A file that fails that check, an
unreadable entry or an unwritable directory is a miss: the plot is drawn as if there were no cache.
At most MAX_ENTRIES files are kept (least recently used go first).

Misses are drawn in forked worker processes, one per core this process may use (Linux; elsewhere,
in a threaded process, or for a single miss they are drawn here). A plot draws the same bytes in a
worker as here; a worker that fails or dies only means its plots are drawn here.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import struct
import sys
import tempfile
import threading
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd

from harness.report import plots

SVG_METADATA = {"Date": None, "Creator": None}
PNG_METADATA = {"Software": None}
ENV_VAR = "IMAGEBENCH_PLOT_CACHE"
MAGIC = b"imagebench-plot 1\n"
MAX_ENTRIES = 3000  # about 40 kB each (PNG + SVG): some 120 MB at most
SUFFIX = ".plot"

Drawn = tuple[str, bytes]  # (SVG text, PNG bytes)


@dataclass
class Stats:
    """What the last draw_all did (for tests and the benchmark)."""

    hits: int = 0
    drawn: int = 0
    uncacheable: int = 0
    workers: int = 0
    errors: list[str] = field(default_factory=list)


last = Stats()


# --------------------------------------------------------------------------- drawing


def draw(make: Callable[[], Any]) -> Drawn:
    """One figure, drawn once with its layout: PNG first, then the SVG with the layout the PNG computed."""
    with matplotlib.rc_context(plots.RC):
        fig = make()
        svg_buf, png_buf = io.StringIO(), io.BytesIO()
        fig.savefig(png_buf, format="png", metadata=PNG_METADATA)
        # keep the layout the PNG computed: the SVG needs no second pass. No engine at all rather than
        # "none" (a placeholder engine), else savefig makes a layout pass with drawing disabled that
        # changes nothing (same bytes, measured on every plot of results/ and the fixture) and costs
        # about 13 % of the CPU of drawing a plot
        with matplotlib.rc_context({"figure.autolayout": False, "figure.constrained_layout.use": False}):
            fig.set_layout_engine(None)
        fig.savefig(svg_buf, format="svg", metadata=SVG_METADATA)
    return svg_buf.getvalue(), png_buf.getvalue()


def draw_all(makes: Sequence[Callable[[], Any]], *, cache: Path | bool | None = True) -> list[Drawn]:
    """Every plot's (SVG, PNG), in the order given: cached ones read, the others drawn (in parallel
    where possible) and stored. `cache`: True = cache_dir(), None/False = no cache, or a directory."""
    global last
    stats = Stats()
    last = stats
    where: Path | None = cache_dir() if cache is True else (cache or None)
    keys = [spec_key(m) if where else None for m in makes]
    out: list[Drawn | None] = [None] * len(makes)
    for i, key in enumerate(keys):
        if where is not None and key is None:
            stats.uncacheable += 1
        elif where is not None and key is not None:
            out[i] = _read(where, key, stats)
    stats.hits = sum(x is not None for x in out)
    missing = [i for i, x in enumerate(out) if x is None]
    for i, drawn in zip(missing, _draw_many([makes[i] for i in missing], stats), strict=True):
        out[i] = drawn
        key = keys[i]
        if where is not None and key is not None and not _write(where, key, drawn, stats):
            where = None  # cannot write there: no point trying again for every plot
    stats.drawn = len(missing)
    if where is not None and missing:
        _prune(where, stats)
    return [x for x in out if x is not None]


def _draw_many(makes: list[Callable[[], Any]], stats: Stats) -> list[Drawn]:
    """Draw every plot: in forked workers when there is more than one plot and more than one core."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    workers = min(len(makes), cores)
    if workers < 2 or not _can_fork():
        return [draw(m) for m in makes]
    global _PENDING
    _PENDING = makes  # the workers inherit it at fork: closures need not be pickled
    try:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # an executor, not a multiprocessing.Pool: a worker that dies (OOM) breaks it with an error
        # instead of leaving map() waiting forever; with fork it starts every worker before its thread
        ctx = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            got: list[Drawn | None] = list(pool.map(_draw_pending, range(len(makes))))
        stats.workers = workers
    except Exception as exc:  # noqa: BLE001 - any pool failure: draw here instead
        stats.errors.append(f"pool: {exc}")
        got = [None] * len(makes)
    finally:
        _PENDING = []
    # a plot a worker could not draw is drawn here (so its error, if any, is raised here with its traceback)
    return [g if g is not None else draw(m) for g, m in zip(got, makes, strict=True)]


_PENDING: list[Callable[[], Any]] = []


def _draw_pending(i: int) -> Drawn | None:
    try:
        return draw(_PENDING[i])
    except Exception:  # noqa: BLE001 - redrawn in the parent, which raises it
        return None


def _can_fork() -> bool:
    """Forking is safe only on a POSIX system, from a process with no other thread (locks held by
    another thread would stay held in the child) that may itself have children."""
    import multiprocessing

    return (
        sys.platform.startswith("linux")
        and threading.active_count() == 1
        and not multiprocessing.current_process().daemon
    )


# --------------------------------------------------------------------------- the cache on disk


def cache_dir() -> Path | None:
    """Where plots are cached, or None when the cache is off."""
    env = os.environ.get(ENV_VAR)
    if env is not None:
        return None if env.strip().lower() in ("", "0", "off", "no", "false") else Path(env).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or "")
    root = base if base.is_absolute() else Path.home() / ".cache"  # the XDG spec: a relative value is ignored
    return root / "imagebench" / "plots"


def _read(where: Path, key: str, stats: Stats) -> Drawn | None:
    path = where / (key + SUFFIX)
    try:
        blob = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None  # not cached (yet), or no cache directory there: the write will say why
    except OSError as exc:
        stats.errors.append(f"read {path.name}: {exc.strerror or exc}")
        return None
    head = len(MAGIC) + 32 + 8
    if len(blob) < head or not blob.startswith(MAGIC):
        stats.errors.append(f"corrupt {path.name}")
        return None
    digest, rest = blob[len(MAGIC) : len(MAGIC) + 32], blob[len(MAGIC) + 32 :]
    if hashlib.sha256(rest).digest() != digest:
        stats.errors.append(f"corrupt {path.name}")
        return None
    (svg_len,) = struct.unpack(">Q", rest[:8])
    if svg_len > len(rest) - 8:
        stats.errors.append(f"corrupt {path.name}")
        return None
    try:
        svg = rest[8 : 8 + svg_len].decode("utf-8")
    except UnicodeDecodeError:
        stats.errors.append(f"corrupt {path.name}")
        return None
    try:
        os.utime(path)  # recently used: pruned last
    except OSError:
        pass
    return svg, rest[8 + svg_len :]


def _write(where: Path, key: str, drawn: Drawn, stats: Stats) -> bool:
    """Store one plot (atomically); False when the cache directory cannot be written."""
    svg, png = drawn
    svg_bytes = svg.encode("utf-8")
    rest = struct.pack(">Q", len(svg_bytes)) + svg_bytes + png
    blob = MAGIC + hashlib.sha256(rest).digest() + rest
    tmp = None
    try:
        where.mkdir(mode=0o700, parents=True, exist_ok=True)  # private: its SVGs are inlined into reports
        fd, tmp = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=where)
        with os.fdopen(fd, "wb") as fh:
            fh.write(blob)
        os.replace(tmp, where / (key + SUFFIX))  # atomic: a reader sees the old entry or the whole new one
        tmp = None
        return True
    except OSError as exc:
        stats.errors.append(f"write: {exc.strerror or exc}")
        return False
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _prune(where: Path, stats: Stats, keep: int | None = None) -> None:
    """Keep the `keep` (default MAX_ENTRIES) most recently used entries; drop leftover temp files."""
    keep = MAX_ENTRIES if keep is None else keep
    try:
        entries = []
        for e in os.scandir(where):
            if e.name.endswith(SUFFIX) and e.is_file(follow_symlinks=False):
                entries.append((e.stat(follow_symlinks=False).st_mtime, e.name))
        if len(entries) <= keep:
            return
        entries.sort(reverse=True)
        for _, name in entries[keep:]:
            os.unlink(where / name)
    except OSError as exc:
        stats.errors.append(f"prune: {exc.strerror or exc}")


# --------------------------------------------------------------------------- the key


class Uncacheable(Exception):
    """A value the key cannot capture exactly."""


# rc settings that never change a saved file (savefig names its format, so the interactive backend and
# its GUI settings do not draw anything): left out of the key, which would otherwise differ between a
# fresh process ('agg') and one that called matplotlib.use('Agg') ('Agg', backend_fallback False)
_NOT_DRAWN = frozenset({"backend", "backend_fallback", "interactive", "toolbar", "savefig.directory"})
_NOT_DRAWN_PREFIXES = ("keymap.", "webagg.", "macosx.", "tk.")


def spec_key(make: Callable[[], Any]) -> str | None:
    """The cache key of the plot `make` draws, or None when it cannot be computed exactly."""
    h = hashlib.sha256(environment_digest())
    try:
        _feed_callable(h, make, 0)
    except (Uncacheable, RecursionError):
        return None
    return h.hexdigest()


@functools.lru_cache(maxsize=1)
def environment_digest() -> bytes:
    """What every plot depends on besides its closure: the drawing code, library versions, rc settings."""
    from matplotlib import font_manager, ft2font

    h = hashlib.sha256()
    h.update(Path(__file__).read_bytes())
    h.update(_module_digest(plots.__name__))
    for part in (
        f"{sys.version_info[0]}.{sys.version_info[1]}",
        matplotlib.__version__,
        getattr(ft2font, "__freetype_version__", "?"),
        np.__version__,
        pd.__version__,
    ):
        h.update(part.encode() + b"\0")
    with matplotlib.rc_context(plots.RC):
        for k, v in sorted(matplotlib.rcParams.items()):
            if k in _NOT_DRAWN or k.startswith(_NOT_DRAWN_PREFIXES):
                continue
            h.update(f"{k}={v!r}\0".encode())
        # the font files text is drawn with (matplotlib may find the family installed on the system)
        for weight in ("normal", "bold"):
            try:
                path = font_manager.findfont(
                    font_manager.FontProperties(weight=weight), fallback_to_default=True
                )
                h.update(Path(path).read_bytes())
            except (OSError, ValueError) as exc:
                h.update(f"font {weight}: {exc!r}\0".encode())
    return h.digest()


@functools.cache
def _module_digest(name: str) -> bytes:
    """SHA-256 of a harness module's source and of every harness module its globals come from."""
    h = hashlib.sha256()
    for mod in sorted(_harness_deps(name)):
        file = getattr(sys.modules[mod], "__file__", None)
        if not file:
            raise Uncacheable(mod)
        h.update(mod.encode() + b"\0" + Path(file).read_bytes())
    return h.digest()


def _harness_deps(name: str) -> set[str]:
    seen: set[str] = set()
    todo = [name]
    while todo:
        mod = todo.pop()
        if mod in seen or mod not in sys.modules:
            continue
        seen.add(mod)
        for value in list(vars(sys.modules[mod]).values()):
            try:
                owner = (
                    value.__name__
                    if isinstance(value, types.ModuleType)
                    else getattr(value, "__module__", None)
                )
            except Exception:  # noqa: BLE001 - an object whose attributes cannot be read names no module
                continue
            if isinstance(owner, str) and _is_harness(owner):
                todo.append(owner)
    return seen


def _is_harness(name: str | None) -> bool:
    return bool(name) and (name == "harness" or str(name).startswith("harness."))


def _feed_callable(h: Any, fn: Any, depth: int) -> None:
    if depth > 8:
        raise Uncacheable("nested too deep")
    if isinstance(fn, functools.partial):
        h.update(b"partial\0")
        _feed_callable(h, fn.func, depth + 1)
        _feed(h, fn.args, depth + 1)
        _feed(h, fn.keywords, depth + 1)
        return
    if not isinstance(fn, types.FunctionType):
        raise Uncacheable(type(fn).__name__)
    if (
        fn.__module__
        and _is_harness(fn.__module__)
        and fn.__closure__ is None
        and "<lambda>" not in fn.__qualname__
    ):
        # a named harness function: its module's source (and its dependencies') stands for its code
        h.update(f"fn {fn.__module__}.{fn.__qualname__}\0".encode())
        h.update(_module_digest(fn.__module__))
        _feed(h, fn.__defaults__, depth + 1)
        _feed(h, fn.__kwdefaults__, depth + 1)
        return
    h.update(b"closure\0")
    _feed_code(h, fn.__code__)
    _feed(h, fn.__defaults__, depth + 1)
    _feed(h, fn.__kwdefaults__, depth + 1)
    for cell in fn.__closure__ or ():
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell
            raise Uncacheable("empty cell") from None
        _feed(h, value, depth + 1)
    for name in _global_names(fn.__code__):
        if name in fn.__globals__:
            h.update(f"global {name}\0".encode())
            _feed(h, fn.__globals__[name], depth + 1)


def _global_names(code: types.CodeType) -> list[str]:
    names = list(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names += _global_names(const)
    return sorted(set(names))


def _feed_code(h: Any, code: types.CodeType) -> None:
    h.update(code.co_code)
    h.update(repr((code.co_names, code.co_varnames, code.co_freevars, code.co_cellvars)).encode())
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _feed_code(h, const)
        else:
            h.update(f"{type(const).__name__}:{const!r}\0".encode())


_PLAIN = (str, int, float, bool, type(None))


def _feed(h: Any, value: Any, depth: int) -> None:
    if depth > 12:
        raise Uncacheable("nested too deep")
    t = type(value)
    if value is None or t is bool:
        h.update(f"{value!r}\0".encode())
    elif t is str:
        b = value.encode("utf-8", "surrogatepass")
        h.update(b"s" + struct.pack(">Q", len(b)) + b)
    elif t is int:
        h.update(f"i{value}\0".encode())
    elif t is float:
        h.update(f"f{value.hex()}\0".encode())
    elif t is bytes:
        h.update(b"b" + struct.pack(">Q", len(value)) + value)
    elif t in (list, tuple):
        h.update(f"{t.__name__}{len(value)}\0".encode())
        _feed_items(h, value, depth)
    elif t is dict:
        h.update(f"dict{len(value)}\0".encode())
        for k, v in value.items():
            _feed(h, k, depth + 1)
            _feed(h, v, depth + 1)
    elif t in (set, frozenset):
        h.update(f"set{len(value)}\0".encode())
        _feed_items(h, sorted(value, key=repr), depth)
    elif isinstance(value, pd.DataFrame):
        h.update(b"DataFrame\0")
        _feed(h, value.index, depth + 1)
        _feed(h, value.columns, depth + 1)
        for i in range(value.shape[1]):
            _feed(h, value.iloc[:, i], depth + 1)
    elif isinstance(value, pd.Series):
        h.update(b"Series\0")
        _feed(h, value.name, depth + 1)
        _feed(h, value.index, depth + 1)
        h.update(f"{value.dtype}\0".encode())
        _feed(h, value.to_numpy(), depth + 1)
    elif isinstance(value, pd.Index):
        h.update(f"Index {type(value).__name__} {value.dtype}\0".encode())
        _feed(h, list(value.names), depth + 1)
        _feed(h, value.to_numpy(), depth + 1)
    elif isinstance(value, np.ndarray):
        h.update(f"ndarray {value.dtype.str} {value.shape}\0".encode())
        if value.dtype.hasobject:
            _feed_items(h, value.ravel().tolist(), depth)
        else:
            h.update(np.ascontiguousarray(value).tobytes())
    elif isinstance(value, np.generic):
        h.update(f"np {value.dtype.str}\0".encode() + value.tobytes())
    elif isinstance(value, pd.Timestamp | pd.Timedelta) or value is pd.NaT or value is pd.NA:
        h.update(f"{t.__name__} {value!r}\0".encode())
    elif isinstance(value, types.ModuleType):
        if not _is_harness(value.__name__):
            h.update(f"module {value.__name__}\0".encode())  # a library: its version is in the environment
        else:
            h.update(f"module {value.__name__}\0".encode() + _module_digest(value.__name__))
    elif isinstance(value, types.FunctionType | functools.partial):
        _feed_callable(h, value, depth + 1)
    elif isinstance(value, str):  # a StrEnum member (a verdict): keyed as the text it renders as
        _feed(h, str.__str__(value), depth)
    else:
        raise Uncacheable(t.__name__)


def _feed_items(h: Any, items: Sequence[Any], depth: int) -> None:
    if any(isinstance(x, str) and type(x) is not str for x in items):
        items = [str.__str__(x) if isinstance(x, str) else x for x in items]  # enum members as their text
    if all(type(x) in _PLAIN for x in items):
        # fast path for the common case, exact: repr of these types round-trips (floats included)
        h.update(repr([(type(x).__name__, x) for x in items]).encode() + b"\0")
        return
    for x in items:
        _feed(h, x, depth + 1)
