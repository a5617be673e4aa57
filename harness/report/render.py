"""Write the report: the one place in harness/report that touches files.

`render_report(results_dir, out_dir)` writes
  out_dir/index.html   one self-contained page: CSS inline, plots as inline SVG, no script,
                       no external request; readable on a phone, printable
  out_dir/REPORT.md    the same content for a code host, with PNG plots beside it
  out_dir/plots/       <name>.png and <name>.svg for every plot (stale ones removed)

Output is deterministic: identical results render byte-identical REPORT.md, PNGs and SVGs
(fixed SVG hash salt, no dates in metadata, no rendering timestamp anywhere).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TypedDict

import jinja2
import markupsafe

from harness.errors import SchemaError, UsageError
from harness.report import plotcache
from harness.report.model import Link, PlotSpec, Report, Section, Table, build_report
from harness.results import load_runs

TEMPLATES = Path(__file__).resolve().parent / "templates"
SVG_METADATA = plotcache.SVG_METADATA
PNG_METADATA = plotcache.PNG_METADATA


MANIFEST = (
    ".imagebench-report"  # the files a render wrote, one path a line: all it may ever replace or remove
)
_LEGACY_MARK = "Rendered by `imagebench report`"


class Written(TypedDict):
    """What `write_report` wrote."""

    html: Path
    markdown: Path
    plots: list[Path]


class Rendered(Written):
    """What `render_report` wrote, and the files it skipped (one message each)."""

    skipped: list[str]


def render_report(
    results_dir: Path,
    out_dir: Path | None = None,
    *,
    on_skip: Callable[[str], object] | None = None,
    force: bool = False,
    pool: bool = False,
) -> Rendered:
    """Render the report of every run under `results_dir` into `out_dir` (default results_dir/report).

    Corrupt or foreign JSON files are skipped with a warning (passed to `on_skip` when given).
    With no valid run at all, nothing is written (SchemaError): an existing report is never
    replaced by an empty one. Returns {"html", "markdown", "plots", "skipped"}.
    """
    results_dir = Path(results_dir)
    out_dir = Path(out_dir) if out_dir is not None else results_dir / "report"
    skipped: list[str] = []

    def skip(message: str) -> None:
        skipped.append(message)
        if on_skip:
            on_skip(message)
        else:
            warnings.warn(message, stacklevel=3)

    runs = load_runs(results_dir, on_skip=skip)
    if not runs:
        raise SchemaError(
            f"no valid run file under {results_dir}"
            + (f" ({len(skipped)} skipped)" if skipped else "")
            + f"; {out_dir} left as it was"
        )
    report = build_report(runs, pool=pool)
    return {**write_report(report, out_dir, force=force), "skipped": skipped}


def write_report(report: Report, out_dir: Path, *, force: bool = False) -> Written:
    """Write index.html, REPORT.md and plots/ for an already built report model.

    Everything is rendered into a fresh temporary directory beside `out_dir` first, then moved
    in: a failed render leaves `out_dir` as it was. Only files an earlier render wrote (listed
    in its manifest) are replaced or removed; an `out_dir` holding anything else is refused
    unless `force` (and even then the foreign files are left alone). A report of no runs is
    refused: it would replace a real report with an empty one.
    """
    if not report.runs.rows:
        raise SchemaError(f"no valid run to report; {out_dir} left as it was")
    out_dir = Path(out_dir)
    ours = _owned(out_dir, force=force)
    parent = out_dir.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=parent))
    except OSError as exc:
        raise UsageError(f"cannot write the report under {parent}: {exc.strerror or exc}") from None
    try:
        rel = _render_into(report, stage)
        (stage / MANIFEST).write_text("".join(f"{r}\n" for r in sorted(rel)), encoding="utf-8")
        _swap_in(stage, out_dir, set(rel) | {MANIFEST}, ours)
    except OSError as exc:
        raise UsageError(f"cannot write the report to {out_dir}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    plots_written = sorted(out_dir / r for r in rel if r.startswith("plots/"))
    return {"html": out_dir / "index.html", "markdown": out_dir / "REPORT.md", "plots": plots_written}


def _render_into(report: Report, stage: Path) -> list[str]:
    """Render every file into `stage`; their paths relative to it."""
    (stage / "plots").mkdir()
    svgs: dict[str, str] = {}
    rel: list[str] = []
    specs = _all_plots(report)
    # cached by content, misses drawn in parallel (harness/report/plotcache.py); same bytes either way
    for spec, (svg, png) in zip(specs, plotcache.draw_all([s.make for s in specs]), strict=True):
        svgs[spec.name] = _inline_svg(svg, spec.name)
        for suffix, payload in ((".svg", svg.encode("utf-8")), (".png", png)):
            name = f"plots/{spec.name}{suffix}"
            (stage / name).write_bytes(payload)
            rel.append(name)
    (stage / "REPORT.md").write_bytes(markdown(report).encode("utf-8"))
    (stage / "index.html").write_bytes(html(report, svgs).encode("utf-8"))
    return [*rel, "REPORT.md", "index.html"]


def _owned(out_dir: Path, *, force: bool) -> set[str]:
    """The files in `out_dir` an earlier render wrote; UsageError when it holds anything else (unless force)."""
    if not out_dir.exists() and not out_dir.is_symlink():
        return set()
    if out_dir.is_symlink() or not out_dir.is_dir():
        raise UsageError(f"--out {out_dir} exists and is not a directory")
    try:
        present = {p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*") if not p.is_dir()}
        present |= {p.relative_to(out_dir).as_posix() + "/" for p in out_dir.rglob("*") if p.is_dir()}
    except OSError as exc:
        raise UsageError(f"cannot read --out {out_dir}: {exc.strerror or exc}") from None
    ours: set[str] = set()
    manifest = out_dir / MANIFEST
    if manifest.is_file() and not manifest.is_symlink():
        listed = manifest.read_text(encoding="utf-8", errors="replace").splitlines()
        ours = {r for r in listed if _safe_rel(r)} | {MANIFEST}
    elif (out_dir / "REPORT.md").is_file() and _LEGACY_MARK in _head(out_dir / "REPORT.md"):
        # a report rendered before manifests existed: its own names only
        ours = {"REPORT.md", "index.html"} | {
            r for r in present if re.fullmatch(r"plots/[A-Za-z0-9_.-]+\.(png|svg)", r)
        }
    foreign = sorted(r for r in present - ours - {"plots/"} if not r.endswith("/") or not _under(r, ours))
    ours &= present
    if foreign and not force:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise UsageError(
            f"--out {out_dir} holds files imagebench did not write ({shown}); "
            "choose an empty directory or pass --force (those files are left alone)"
        )
    return ours


def _under(folder: str, files: set[str]) -> bool:
    return any(f.startswith(folder) for f in files)


def _safe_rel(rel: str) -> bool:
    parts = rel.split("/")
    return bool(rel) and not rel.startswith("/") and ".." not in parts and "" not in parts


def _head(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            return fh.read(4096).decode("utf-8", "replace")
    except OSError:
        return ""


def _swap_in(stage: Path, out_dir: Path, new: set[str], ours: set[str]) -> None:
    """Move the staged files into `out_dir`; remove only files an earlier render wrote and this one did not."""
    if not out_dir.exists():
        stage.rename(out_dir)  # atomic: the whole report appears at once
        stage.mkdir()  # for the caller's cleanup
        return
    for rel in sorted(new):
        src, dst = stage / rel, out_dir / rel
        if dst.is_file() and not dst.is_symlink() and dst.read_bytes() == src.read_bytes():
            continue  # unchanged: keep mtimes (and git) quiet on a re-render
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.is_symlink() or (dst.exists() and not dst.is_file()):
            raise OSError(f"{dst} is not a regular file")
        os.replace(src, dst)
    for rel in sorted(ours - new):
        stale = out_dir / rel
        if stale.is_file() and not stale.is_symlink():
            stale.unlink()


def _all_plots(report: Report) -> list[PlotSpec]:
    specs = [p for p in (report.trust.get("recovery"), report.forest) if p]
    for s in report.sections:
        specs += s.plots
        if s.waterfall:
            specs.append(s.waterfall)
    return specs


def _draw(spec: PlotSpec) -> tuple[str, bytes]:
    """One plot's (SVG, PNG), drawn now (no cache)."""
    return plotcache.draw(spec.make)


_ID_REF = re.compile(r'(\bid="|url\(#|href="#)([A-Za-z_][\w.:-]*)')


def _inline_svg(svg: str, name: str) -> str:
    """An SVG document made fit to inline: no XML prolog, ids unique per figure, scales to its box."""
    svg = svg[svg.index("<svg") :]
    prefix = re.sub(r"[^A-Za-z0-9]+", "-", name) + "-"
    svg = _ID_REF.sub(lambda m: m.group(1) + prefix + m.group(2), svg)
    head, rest = svg.split(">", 1)
    width = re.search(r'\swidth="([\d.]+)pt"', head)
    head = re.sub(r'\s(width|height)="[^"]*"', "", head)
    style = f' style="max-width:{width.group(1)}pt"' if width else ""
    return f'{head}{style} role="img" aria-label="{markupsafe.escape(name)}">{rest}'


# --------------------------------------------------------------------------- Markdown


def md_text(text: object, *, one_line: bool = True) -> str:
    """A string (often from a run file) made inert in Markdown: no raw HTML tag, one line."""
    out = str(text).replace("<", "&lt;").replace(">", "&gt;")
    return " ".join(out.splitlines()) if one_line else out


def _md_code(text: object) -> str:
    """`text` as a code span that no backtick in it can end early."""
    return "`" + " ".join(str(text).replace("`", "'").splitlines()) + "`"


def _md_cell(cell: str | Link) -> str:
    if isinstance(cell, Link):
        label, href = md_text(cell.text).replace("]", "\\]"), md_text(cell.href).replace(")", "%29")
        text = f"[{label}]({href})"
    else:
        text = md_text(cell)
    return text.replace("|", "\\|")


def md_table(table: Table) -> str:
    align = table.align or ["l"] * len(table.headers)
    lines = [
        "| " + " | ".join(table.headers) + " |",
        "| " + " | ".join("---:" if a == "r" else "---" for a in align) + " |",
    ]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in table.rows]
    return "\n".join(lines) + "\n"


def _md_plot(spec: PlotSpec | None) -> str:
    if spec is None:
        return ""
    return f"![{md_text(spec.name)}](plots/{spec.name}.png)\n\n*{md_text(spec.caption)}*\n\n"


def markdown(report: Report) -> str:
    out = [
        f"# {md_text(report.title)}\n",
        "Rendered by `imagebench report` from the run files; no number below was typed by hand. "
        f"Regenerate with `imagebench report --results <dir>{' --pool' if report.pooled else ''}`.\n",
    ]
    if report.notes:
        out.append("\n".join(f"> **Note:** {md_text(n)}" for n in report.notes) + "\n")
    out.append("How a verdict is reached:\n\n" + "\n".join(f"- {md_text(r)}" for r in report.rules) + "\n")
    out += _md_trust(report)
    out += _md_claims(report)
    for s in report.sections:
        out += _md_section(s, len(report.machines) > 1)
    out += _md_environment(report)
    out.append("## Runs\n")
    out.append(md_table(report.runs))
    text = "\n".join(part.rstrip("\n") + "\n" for part in out if part)
    return re.sub(r"\n{3,}", "\n\n", text)


def _md_trust(report: Report) -> list[str]:
    """How far to trust these numbers: the lines, recovery plot, size findings, noisy cells."""
    out: list[str] = []
    out.append("## How far to trust these numbers\n")
    out.append("\n".join(f"- {md_text(line)}" for line in report.trust["lines"]) + "\n")
    out.append(_md_plot(report.trust.get("recovery")))
    if report.trust["findings"]:
        out.append(
            "Sizes that varied between trials:\n\n"
            + "\n".join(f"- {md_text(f)}" for f in report.trust["findings"])
            + "\n"
        )
    if report.trust["noisy"]:
        out.append("Noisy build times (CV above 10 %):\n\n" + md_table(report.trust["noisy"]))
    return out


def _md_claims(report: Report) -> list[str]:
    """The claims table and forest plot, then the article against what was measured."""
    out: list[str] = []
    out.append("## Claims\n")
    out.append(
        "Each row shows the claim that decided its verdict and that claim's figure; every claim of a practice "
        "is in its section (last column).\n"
    )
    out.append(md_table(report.claims))
    out.append(_md_plot(report.forest))
    if report.article:
        out.append("## The article vs measured here\n")
        out.append(md_text(report.article.intro) + "\n")
        out += [md_table(t) for t in report.article.tables]
        out.append("\n".join(f"- {md_text(x)}" for x in report.article.lines) + "\n")
    return out


def _md_section(s: Section, multi_machine: bool) -> list[str]:
    """One experiment's section: verdict, claim, reasons, provenance, tables and plots."""
    out: list[str] = []
    out.append(
        f'<a id="{md_text(s.anchor).replace(chr(34), "")}"></a>\n\n## {md_text(s.title)}'
        + (f" · {md_text(s.machine)}" if multi_machine else "")
        + "\n"
    )
    out.append(
        f"**Verdict: {md_text(s.verdict)}.** Claim: {md_text(_sentence(s.claim))}"
        + (f" Article: {md_text(_sentence(s.article))}" if s.article else "")
        + "\n"
    )
    if s.summary:
        out.append(md_text(s.summary, one_line=False) + "\n")
    if s.deciding:
        out.append(f"Decided by: {md_text(s.deciding)}\n")
    if s.cannot_show:
        out.append(f"What this cannot show: {md_text(s.cannot_show)}\n")
    for line in ([s.reason] if s.reason else []) + s.failures:
        out.append(f"> {md_text(line)}\n")
    if s.also_found:
        out.append(
            "Also found (our extensions, not in the article; they do not change the verdict):\n\n"
            + "\n".join(f"- {md_text(x)}" for x in s.also_found)
            + "\n"
        )
    for line in s.provenance:
        out.append(f"Provenance: {md_text(line)}\n")
    if s.calibration:
        out.append("\n".join(f"- {md_text(x)}" for x in s.calibration) + "\n")
    if s.not_measured:
        out.append("Not measured here:\n\n" + "\n".join(f"- {md_text(x)}" for x in s.not_measured) + "\n")
    if s.claims.rows:
        out.append(md_table(s.claims))
    for spec in s.plots:
        out.append(_md_plot(spec))
    out.append(_md_plot(s.waterfall))
    if s.probe_findings:
        out.append("Probe findings:\n\n" + "\n".join(f"- {_md_code(x)}" for x in s.probe_findings) + "\n")
    if s.metrics.rows:
        out.append(
            f"<details><summary>All metrics of {md_text(s.experiment)}</summary>\n\n{md_table(s.metrics)}\n"
            "</details>\n"
        )
    return out


def _md_environment(report: Report) -> list[str]:
    """Per machine: its base images, drift during the run, and the fingerprint."""
    out: list[str] = []
    out.append("## Environment\n")
    for env in report.environment:
        out.append(f"### {md_text(env['machine'])} (run {md_text(env['run_id'])})\n")
        if env["bases"]:
            out.append(
                "Base images. Lab sizes are uncompressed, as the engine reports them; published sizes are "
                f"compressed transfer sizes from {md_text(env['source'])}: compare with care.\n\n"
                + md_table(env["bases"])
            )
        for line in env["drift"]:
            out.append(f"> Base image moved during the run: {md_text(line)}\n")
        out.append(f"<details><summary>Fingerprint</summary>\n\n{md_table(env['fingerprint'])}\n</details>\n")
    return out


def _sentence(text: str) -> str:
    text = str(text).strip()
    return text if not text or text[-1] in ".!?" else text + "."


# --------------------------------------------------------------------------- HTML


def inline_md(text: str) -> markupsafe.Markup:
    """The little Markdown the model's prose uses (`code`, **bold**, *em*), as safe HTML."""
    out = str(markupsafe.escape(text))
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)
    out = re.sub(r"(?<![\w*])\*([^*\s][^*]*)\*(?![\w*])", r"<em>\1</em>", out)
    return markupsafe.Markup(out)


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["verdict_class"] = lambda v: "v-" + re.sub(r"[^a-z]+", "-", str(v).lower()).strip("-")
    env.tests["link"] = lambda c: isinstance(c, Link)
    env.filters["sentence"] = _sentence
    env.filters["inline_md"] = inline_md
    return env


def html(report: Report, svgs: dict[str, str]) -> str:
    css = (TEMPLATES / "report.css").read_text(encoding="utf-8")
    return _env().get_template("report.html.j2").render(report=report, svgs=svgs, css=css)
