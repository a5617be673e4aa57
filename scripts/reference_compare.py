#!/usr/bin/env python3
"""Do two references agree? The verdict of every practice and of every claim, side by side.

    make reference && cp -a results /tmp/ref-a        # the first reference, kept aside
    git checkout -- README.md notebooks results && git clean -fdq results
    make reference                                    # the second, of the same commit
    python scripts/reference_compare.py /tmp/ref-a results    # exit 0: every practice agrees

Each folder is judged exactly as `imagebench report` judges it (`build_report`, same runs left out,
same calibration gate). Prints one line per practice (both verdicts, and the deciding figures when
they differ), then every claim whose verdict differs. Exit 1 when a practice's verdict differs,
2 when a folder has no run files. A test runs `compare` on generated runs.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from harness import analysis  # noqa: E402
from harness.report.model import Report, build_report  # noqa: E402
from harness.results import load_runs  # noqa: E402


class Judged(NamedTuple):
    """One practice as a reference judged it: its verdict, the deciding figure, and each claim's verdict."""

    verdict: str
    deciding: str
    claims: dict[str, str]


def judged(report: Report) -> dict[str, Judged]:
    """{experiment: Judged} for every section of a report (machines folded: a reference has one)."""
    out = {}
    for sec in report.sections:
        headers = sec.claims.headers
        col = headers.index("verdict") if "verdict" in headers else len(headers) - 1
        claims = {
            " | ".join(str(c) for c in row[:3]): str(row[col]) for row in sec.claims.rows if len(row) > col
        }
        out[sec.experiment] = Judged(sec.verdict.split(":")[0], sec.deciding, claims)
    return out


def compare(runs_a: list[dict], runs_b: list[dict], *, n_boot: int = analysis.N_BOOT) -> list[str]:
    """Lines: a summary, one per practice, one per claim whose verdict differs."""
    a = judged(build_report(runs_a, n_boot=n_boot))
    b = judged(build_report(runs_b, n_boot=n_boot))
    pairs = {n: (a.get(n, _NONE), b.get(n, _NONE)) for n in sorted(set(a) | set(b))}
    same = [n for n, (ja, jb) in pairs.items() if ja.verdict == jb.verdict != "absent"]
    keys = [(n, k) for n, (ja, jb) in pairs.items() for k in sorted(set(ja.claims) | set(jb.claims))]
    differ = [(n, k) for n, k in keys if pairs[n][0].claims.get(k) != pairs[n][1].claims.get(k)]
    lines = [
        f"practices: {len(same)} of {len(pairs)} give the same verdict; "
        f"claims: {len(keys) - len(differ)} of {len(keys)} give the same verdict"
    ]
    for n, (ja, jb) in pairs.items():
        lines.append(
            f"  {n}: {ja.verdict} / {jb.verdict}" + ("" if ja.verdict == jb.verdict else "  DIFFERS")
        )
        if ja.verdict != jb.verdict:
            lines += [f"    first:  {ja.deciding}", f"    second: {jb.deciding}"]
    for n, k in differ:
        ja, jb = pairs[n]
        lines.append(
            f"  claim differs: {n}: {k}: {ja.claims.get(k, 'absent')} / {jb.claims.get(k, 'absent')}"
        )
    return lines


_NONE = Judged("absent", "", {})


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: reference_compare.py FIRST_RESULTS SECOND_RESULTS", file=sys.stderr)
        return 2
    loaded = []
    for folder in map(Path, argv):
        runs = [r for r in load_runs(folder) if not str(r.get("machine", "")).startswith("reference-")]
        if not runs:
            print(f"reference-compare: no run files under {folder}", file=sys.stderr)
            return 2
        loaded.append(runs)
    lines = compare(*loaded)
    print("\n".join(lines))
    return 1 if any(line.endswith("DIFFERS") for line in lines) else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
