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

import io
import re
import warnings
from pathlib import Path
from typing import Any

import jinja2
import markupsafe
import matplotlib

from harness.report import plots
from harness.report.model import Link, PlotSpec, Report, Table, build_report

TEMPLATES = Path(__file__).resolve().parent / "templates"
SVG_METADATA = {"Date": None, "Creator": None}
PNG_METADATA = {"Software": None}


def render_report(results_dir: Path, out_dir: Path | None = None, *, on_skip=None) -> dict[str, Any]:
    """Render the report of every run under `results_dir` into `out_dir` (default results_dir/report).

    Corrupt or foreign JSON files are skipped with a warning (passed to `on_skip` when given).
    Returns {"html": Path, "markdown": Path, "plots": [Path, ...], "skipped": [message, ...]}.
    """
    from harness.results import load_runs

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
    report = build_report(runs)
    return write_report(report, out_dir) | {"skipped": skipped}


def write_report(report: Report, out_dir: Path) -> dict[str, Any]:
    """Write index.html, REPORT.md and plots/ for an already built report model."""
    out_dir = Path(out_dir)
    plot_dir = out_dir / "plots"
    plot_dir.mkdir(parents=True, exist_ok=True)
    svgs: dict[str, str] = {}
    written: list[Path] = []
    for spec in _all_plots(report):
        svg, png = _draw(spec)
        svgs[spec.name] = _inline_svg(svg, spec.name)
        for suffix, payload in ((".svg", svg.encode("utf-8")), (".png", png)):
            path = plot_dir / f"{spec.name}{suffix}"
            _write_bytes(path, payload)
            written.append(path)
    keep = {p.name for p in written}
    for stale in sorted(plot_dir.glob("*")):
        if stale.suffix in (".png", ".svg") and stale.name not in keep:
            stale.unlink()
    md_path, html_path = out_dir / "REPORT.md", out_dir / "index.html"
    _write_bytes(md_path, markdown(report).encode("utf-8"))
    _write_bytes(html_path, html(report, svgs).encode("utf-8"))
    return {"html": html_path, "markdown": md_path, "plots": written}


def _write_bytes(path: Path, payload: bytes) -> None:
    """Write only when the content changed (keeps mtimes, and git, quiet on a re-render)."""
    if path.exists() and path.read_bytes() == payload:
        return
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(payload)
    tmp.replace(path)


def _all_plots(report: Report) -> list[PlotSpec]:
    specs = [p for p in (report.trust.get("recovery"), report.forest) if p]
    for s in report.sections:
        specs += s.plots
        if s.waterfall:
            specs.append(s.waterfall)
    return specs


def _draw(spec: PlotSpec) -> tuple[str, bytes]:
    with matplotlib.rc_context(plots.RC):
        fig = spec.make()
        svg_buf, png_buf = io.StringIO(), io.BytesIO()
        fig.savefig(png_buf, format="png", metadata=PNG_METADATA)
        fig.set_layout_engine("none")  # keep the layout the PNG computed: the SVG needs no second pass
        fig.savefig(svg_buf, format="svg", metadata=SVG_METADATA)
    return svg_buf.getvalue(), png_buf.getvalue()


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
    return f'{head}{style} role="img" aria-label="{name}">{rest}'


# --------------------------------------------------------------------------- Markdown


def _md_cell(cell: str | Link) -> str:
    text = f"[{cell.text}]({cell.href})" if isinstance(cell, Link) else str(cell)
    return text.replace("|", "\\|").replace("\n", " ")


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
    return f"![{spec.name}](plots/{spec.name}.png)\n\n*{spec.caption}*\n\n"


def markdown(report: Report) -> str:
    out = [
        f"# {report.title}\n",
        "Rendered by `imagebench report` from the run files; no number below was typed by hand. "
        "Regenerate with `imagebench report --results <dir>`.\n",
    ]
    if report.notes:
        out.append("\n".join(f"> **Note:** {n}" for n in report.notes) + "\n")
    out.append("## How far to trust these numbers\n")
    out.append("\n".join(f"- {line}" for line in report.trust["lines"]) + "\n")
    out.append(_md_plot(report.trust.get("recovery")))
    if report.trust["findings"]:
        out.append(
            "Sizes that varied between trials:\n\n"
            + "\n".join(f"- {f}" for f in report.trust["findings"])
            + "\n"
        )
    if report.trust["noisy"]:
        out.append("Noisy build times (CV above 10 %):\n\n" + md_table(report.trust["noisy"]))
    out.append("## Claims\n")
    out.append(
        "Ratios are candidate / baseline of medians with a 95 % bootstrap interval; a verdict is "
        "*inconclusive* when the interval crosses 1.\n"
    )
    out.append(md_table(report.claims))
    out.append(_md_plot(report.forest))
    if report.article:
        out.append("## The article vs measured here\n")
        out.append(report.article.intro + "\n")
        out += [md_table(t) for t in report.article.tables]
        out.append("\n".join(f"- {x}" for x in report.article.lines) + "\n")
    for s in report.sections:
        out.append(
            f'<a id="{s.anchor}"></a>\n\n## {s.title}'
            + (f" · {s.machine}" if len(report.machines) > 1 else "")
            + "\n"
        )
        out.append(
            f"**Verdict: {s.verdict}.** Claim: {_sentence(s.claim)}"
            + (f" Article: {_sentence(s.article)}" if s.article else "")
            + "\n"
        )
        if s.summary:
            out.append(s.summary + "\n")
        for line in ([s.reason] if s.reason else []) + s.failures:
            out.append(f"> {line}\n")
        if s.not_measured:
            out.append("Not measured here:\n\n" + "\n".join(f"- {x}" for x in s.not_measured) + "\n")
        if s.claims.rows:
            out.append(md_table(s.claims))
        for spec in s.plots:
            out.append(_md_plot(spec))
        out.append(_md_plot(s.waterfall))
        if s.probe_findings:
            out.append("Probe findings:\n\n" + "\n".join(f"- `{x}`" for x in s.probe_findings) + "\n")
        if s.metrics.rows:
            out.append(
                f"<details><summary>All metrics of {s.experiment}</summary>\n\n{md_table(s.metrics)}\n"
                "</details>\n"
            )
    out.append("## Environment\n")
    for env in report.environment:
        out.append(f"### {env['machine']} (run {env['run_id']})\n")
        if env["bases"]:
            out.append(
                "Base images. Lab sizes are uncompressed, as the engine reports them; published sizes are "
                f"compressed transfer sizes from {env['source']}: compare with care.\n\n"
                + md_table(env["bases"])
            )
        for line in env["drift"]:
            out.append(f"> Base image moved during the run: {line}\n")
        out.append(f"<details><summary>Fingerprint</summary>\n\n{md_table(env['fingerprint'])}\n</details>\n")
    out.append("## Runs\n")
    out.append(md_table(report.runs))
    text = "\n".join(part.rstrip("\n") + "\n" for part in out if part)
    return re.sub(r"\n{3,}", "\n\n", text)


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
