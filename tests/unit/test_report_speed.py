"""The report's plot cache and parallel drawing (harness/report/plotcache.py): a warm cache renders the
same bytes as a cold one and as no cache at all, a changed input is drawn again, and a corrupt or
unwritable cache only costs a redraw. Rendered from the synthetic fixture (tests/fixtures/results)."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib
import pytest

from harness.report import plotcache, plots, render_report
from harness.report.model import build_report
from harness.report.render import _all_plots
from harness.results import load_runs

REPO = Path(__file__).resolve().parent.parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "results"


def _files(out: Path) -> dict[str, bytes]:
    return {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.name != ".imagebench-report"
    } | {".imagebench-report": (out / ".imagebench-report").read_bytes()}


@pytest.fixture(scope="module")
def uncached(tmp_path_factory) -> dict[str, bytes]:
    """The fixture's report rendered with the cache off (the files, by path)."""
    out = tmp_path_factory.mktemp("nocache") / "report"
    mp = pytest.MonkeyPatch()
    mp.setenv(plotcache.ENV_VAR, "off")
    try:
        render_report(FIXTURE, out)
    finally:
        mp.undo()
    assert plotcache.last.hits == 0 and plotcache.last.drawn > 10
    return _files(out)


@pytest.fixture(scope="module")
def specs():
    return _all_plots(build_report(load_runs(FIXTURE)))


@pytest.fixture(scope="module")
def cold(tmp_path_factory) -> tuple[Path, dict[str, bytes], plotcache.Stats]:
    """The fixture's report rendered into an empty cache: (the cache, the files, what was drawn)."""
    base = tmp_path_factory.mktemp("cold")
    mp = pytest.MonkeyPatch()
    mp.setenv(plotcache.ENV_VAR, str(base / "cache"))
    try:
        render_report(FIXTURE, base / "report")
    finally:
        mp.undo()
    return base / "cache", _files(base / "report"), plotcache.last


def test_cold_and_warm_cache_render_the_same_bytes(uncached, cold, tmp_path, monkeypatch):
    """A cold cache draws every plot and stores it; a warm one draws none; both write exactly the
    files rendering without a cache writes."""
    cache, cold_files, stats = cold
    assert stats.hits == 0 and stats.drawn == len(list(cache.glob("*.plot"))) > 10
    assert stats.uncacheable == 0 and stats.errors == []
    monkeypatch.setenv(plotcache.ENV_VAR, str(cache))
    render_report(FIXTURE, tmp_path / "warm")
    warm = plotcache.last
    assert warm.hits == stats.drawn and warm.drawn == 0 and warm.errors == []
    assert cold_files == uncached
    assert _files(tmp_path / "warm") == uncached


def test_corrupt_entries_are_redrawn(uncached, cold, tmp_path, monkeypatch):
    """Truncated, bit-flipped or foreign cache files are misses: the plots are drawn again, the
    report is unchanged, and the entries are rewritten whole."""
    cache = tmp_path / "cache"
    shutil.copytree(cold[0], cache)
    monkeypatch.setenv(plotcache.ENV_VAR, str(cache))
    entries = sorted(cache.glob("*.plot"))
    entries[0].write_bytes(entries[0].read_bytes()[:100])  # truncated
    blob = bytearray(entries[1].read_bytes())
    blob[-1] ^= 0xFF  # one bit flipped in the PNG
    entries[1].write_bytes(bytes(blob))
    entries[2].write_bytes(b"not a plot")
    render_report(FIXTURE, tmp_path / "b")
    stats = plotcache.last
    assert stats.drawn == 3 and stats.hits == len(entries) - 3
    assert sum("corrupt" in e for e in stats.errors) == 3, stats.errors
    assert _files(tmp_path / "b") == uncached
    render_report(FIXTURE, tmp_path / "c")  # rewritten: all hits now
    assert plotcache.last.drawn == 0 and plotcache.last.errors == []


def test_unwritable_cache_dir_only_costs_a_redraw(specs, tmp_path):
    """A cache path that cannot be a directory (a file is there) gives the plots drawn without a cache."""
    blocker = tmp_path / "cache"
    blocker.write_text("a file, not a directory")
    makes = [s.make for s in specs[:4]]
    drawn = plotcache.draw_all(makes, cache=blocker / "plots")
    assert plotcache.last.hits == 0 and plotcache.last.drawn == 4
    assert len(plotcache.last.errors) == 1 and plotcache.last.errors[0].startswith("write:")
    assert drawn == [plotcache.draw(m) for m in makes]
    assert blocker.read_text() == "a file, not a directory"


def test_key_changes_with_the_data_and_only_then(specs):
    """The same results give the same key in a fresh model; one changed value gives another key."""
    again = _all_plots(build_report(load_runs(FIXTURE)))
    keys = [plotcache.spec_key(s.make) for s in specs]
    assert None not in keys and len(set(keys)) == len(keys)  # every plot cacheable, no two alike
    assert [plotcache.spec_key(s.make) for s in again] == keys
    spec = next(s for s in again if "--" in s.name and "waterfall" not in s.name)
    frame = next(c.cell_contents for c in spec.make.__closure__ if hasattr(c.cell_contents, "columns"))
    frame.loc[frame.index[0], "value"] = frame["value"].iloc[0] + 1e-9
    assert plotcache.spec_key(spec.make) != keys[[s.name for s in again].index(spec.name)]


def test_key_is_the_same_in_another_process(specs):
    """Keys do not depend on the process (hash seed, import order): a new interpreter computes the same."""
    code = (
        "from pathlib import Path\n"
        "from harness.report import plotcache\n"
        "from harness.report.model import build_report\n"
        "from harness.report.render import _all_plots\n"
        "from harness.results import load_runs\n"
        f"specs = _all_plots(build_report(load_runs(Path({str(FIXTURE)!r}))))\n"
        "print('\\n'.join(plotcache.spec_key(s.make) for s in specs))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == [plotcache.spec_key(s.make) for s in specs]
    # a process that chose the backend by name ('Agg', no fallback) draws the same files
    resolved = "import matplotlib\nmatplotlib.use('Agg')\n" + code  # as tests/unit/test_drift.py does
    out2 = subprocess.run(
        [sys.executable, "-c", resolved], capture_output=True, text=True, env=env, check=True
    )
    assert out2.stdout.split() == out.stdout.split()


def test_a_closure_over_an_unknown_object_is_drawn_and_not_cached(specs, tmp_path):
    """A plot whose inputs cannot be hashed exactly is never cached (a stale plot is worse than a slow one)."""
    inner = specs[0].make
    opaque = object()

    def make():
        assert opaque is not None
        return inner()

    assert plotcache.spec_key(make) is None
    drawn = plotcache.draw_all([make], cache=tmp_path)
    assert plotcache.last.uncacheable == 1 and plotcache.last.drawn == 1
    assert drawn == [plotcache.draw(inner)]
    assert list(tmp_path.iterdir()) == []


def test_parallel_drawing_gives_the_serial_bytes(specs):
    """Plots drawn in forked workers are byte-identical to plots drawn in this process."""
    makes = [s.make for s in specs[:6]]
    parallel = plotcache.draw_all(makes, cache=None)
    if (os.cpu_count() or 1) > 1 and sys.platform.startswith("linux"):
        assert plotcache.last.workers >= 2
    assert parallel == [plotcache.draw(m) for m in makes]


def test_a_failing_plot_raises_its_own_error(specs):
    """A plot that fails in a worker is drawn again here, so its error surfaces as it would without workers."""

    def broken():
        raise ValueError("no such metric: nope")

    with pytest.raises(ValueError, match="no such metric"):
        plotcache.draw_all([specs[0].make, broken], cache=None)


def test_prune_keeps_the_most_recently_used(tmp_path):
    """Beyond the limit, the least recently used entries go; other files stay."""
    for i in range(5):
        (tmp_path / f"{i}.plot").write_bytes(b"x")
        os.utime(tmp_path / f"{i}.plot", (1000 + i, 1000 + i))
    (tmp_path / "notes.txt").write_text("kept")
    plotcache._prune(tmp_path, plotcache.Stats(), keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["3.plot", "4.plot", "notes.txt"]


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    """$IMAGEBENCH_PLOT_CACHE wins ('off' disables), then $XDG_CACHE_HOME (absolute only), then ~/.cache."""
    monkeypatch.setenv(plotcache.ENV_VAR, str(tmp_path / "c"))
    assert plotcache.cache_dir() == tmp_path / "c"
    for off in ("off", "0", ""):
        monkeypatch.setenv(plotcache.ENV_VAR, off)
        assert plotcache.cache_dir() is None
    monkeypatch.delenv(plotcache.ENV_VAR)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert plotcache.cache_dir() == tmp_path / "xdg" / "imagebench" / "plots"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/dir")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert plotcache.cache_dir() == tmp_path / "home" / ".cache" / "imagebench" / "plots"


def test_draw_gives_the_bytes_of_a_plain_savefig(specs):
    """draw() skips savefig's second layout pass for the SVG; the bytes are those of the plain two
    savefig calls with the layout frozen after the PNG (as the report drew them before the cache)."""
    for spec in specs[:: max(1, len(specs) // 5)]:
        with matplotlib.rc_context(plots.RC):
            fig = spec.make()
            svg, png = io.StringIO(), io.BytesIO()
            fig.savefig(png, format="png", metadata=plotcache.PNG_METADATA)
            fig.set_layout_engine("none")
            fig.savefig(svg, format="svg", metadata=plotcache.SVG_METADATA)
        assert plotcache.draw(spec.make) == (svg.getvalue(), png.getvalue()), spec.name


def test_a_worker_that_dies_does_not_hang_the_report(specs):
    """A worker process killed mid-plot (as the OOM killer would) breaks the pool with an error, and every
    plot is then drawn here: the report finishes with the same bytes."""
    parent = os.getpid()
    inner = specs[1].make

    def dies_in_a_worker():
        if os.getpid() != parent:
            os._exit(9)
        return inner()

    makes = [specs[0].make, dies_in_a_worker]
    drawn = plotcache.draw_all(makes, cache=None)
    if (os.cpu_count() or 1) > 1 and sys.platform.startswith("linux"):  # drawn in workers here
        assert any(e.startswith("pool:") for e in plotcache.last.errors), plotcache.last.errors
    assert drawn == [plotcache.draw(specs[0].make), plotcache.draw(inner)]
