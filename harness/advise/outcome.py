"""What a variant's trials say about it (passes, fails to build, fails its smoke check) and how a rewrite
compares with the original. Pure: reads recorded run data, runs nothing.

A failure's *signature* is what two failures must share to be "the same": the kind (build or smoke),
the smoke command's exit status, and the key line (the Python exception line of a traceback, or the
compiler's / pip's error line of a build) with what legitimately differs between two images of one
project normalised away: absolute paths up to site-packages, the Python minor in paths, memory
addresses and ids. A rewrite that fails with the original's signature is "as the original": it did
not change the outcome, so what it buys still counts. Only a rewrite that makes the outcome worse
(the original passes and it fails, or both fail differently) is "broken".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypedDict

from harness.records import RunRecord, TrialRecord

# a Python exception line: "NameError: name 'x' is not defined", "werkzeug.exceptions.NotFound: 404 ..."
_EXC_RE = re.compile(
    r"^(?:[A-Za-z_][\w.]*\.)?[A-Za-z_]\w*(?:Error|Exception|Exit|Interrupt|Warning)\b(?::|$)"
)
_BUILDKIT_PREFIX = re.compile(r"^#\d+\s+[\d.]+\s+")
_GENERIC = ("failed to solve", "subprocess-exited-with-error")


def normalise(line: str) -> str:
    """The part of a failing line two images of one project share. Pure.

    /usr/local/lib/python3.13/site-packages/werkzeug/urls.py -> …/werkzeug/urls.py (and any other
    python3.N -> python3.N), 0x7f3a... -> 0x…, long hex ids -> <id>, runs of blanks -> one space."""
    s = line.strip()
    s = re.sub(r"(?:/[^\s'\"()]*)?/(?:site|dist)-packages/", "…/", s)
    s = re.sub(r"python3\.\d+", "python3.N", s)
    s = re.sub(r"\b0x[0-9a-fA-F]+\b", "0x…", s)
    s = re.sub(r"\b(?:sha256:)?[0-9a-f]{12,64}\b", "<id>", s)
    return re.sub(r"\s+", " ", s)


def key_line(output: str) -> str:
    """The line that says why a run failed: the last Python exception line of a traceback, else the last
    non-empty line (at most 200 characters). Pure."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if _EXC_RE.match(ln):
            return ln[:200]
    return lines[-1][:200] if lines else "(no output)"


def build_line(trial: TrialRecord) -> str:
    """The line that says why a build failed: the compiler's or pip's error line when there is one. Pure."""
    text = trial.get("error_text") or ""
    lines = [_BUILDKIT_PREFIX.sub("", ln.strip()) for ln in text.splitlines() if ln.strip()]
    for pat in (
        r"error: command '.*' failed",
        r"(?i)error: .*(No such file or directory|not found)",
        r"^error: ",
        r"(?i)\berror\b",
    ):
        hits = [ln for ln in lines if re.search(pat, ln) and not any(g in ln for g in _GENERIC)]
        if hits:
            return hits[0][:200]
    return (trial.get("error") or "build failed")[:200]


class OutcomeRecord(TypedDict):
    """An `Outcome` as the advise summary's JSON states it."""

    kind: str
    line: str
    exit_code: int | None


class StandInVerdict(TypedDict):
    """Whether the original's failure depends on the Python substitution (`stand_in_verdict`)."""

    verdict: str
    message: str
    passes_with: str | None


@dataclass(frozen=True)
class Outcome:
    """One variant's result: kind is pass, build (the build failed), smoke (the smoke check failed) or none."""

    kind: str
    line: str = ""
    exit_code: int | None = None

    @property
    def fails(self) -> bool:
        return self.kind in ("build", "smoke")

    @property
    def signature(self) -> tuple[str, int | None, str]:
        return (self.kind, self.exit_code, normalise(self.line))

    def same_as(self, other: Outcome) -> bool:
        return self.fails and other.fails and self.signature == other.signature

    def describe(self) -> str:
        """ "smoke check failed (exit 1): ImportError: ..." or "build failed: error: ..."."""
        if self.kind == "build":
            return f"build failed: {self.line}"
        if self.kind == "smoke":
            code = "timed out or did not start" if self.exit_code is None else f"exit {self.exit_code}"
            return f"smoke check failed ({code}): {self.line}"
        return "passes" if self.kind == "pass" else "not measured"

    def record(self) -> OutcomeRecord:
        return {"kind": self.kind, "line": self.line, "exit_code": self.exit_code}


def variant_outcome(run: RunRecord, variant: str) -> Outcome:
    """The first failure among the variant's trials (a build failure before a smoke failure), else pass.
    Pure."""
    trials = [t for t in run.get("trials", []) if t.get("variant") == variant]
    for t in trials:
        if t.get("status") == "failed":
            return Outcome("build", build_line(t))
    for t in trials:
        if (t.get("metrics") or {}).get("smoke_ok") == 0:
            smoke = t.get("smoke") or {}
            text = smoke.get("output_tail") or smoke.get("last_line") or ""
            return Outcome("smoke", key_line(text), smoke.get("exit_code"))
    if not any(t.get("status") == "ok" for t in trials):
        return Outcome("none", (trials[0].get("error") or "") if trials else "")
    return Outcome("pass")


AS_ORIGINAL = "as the original"
WORKING = ("ok", "built", AS_ORIGINAL)  # statuses whose gains count


def classify(original: Outcome, mine: Outcome, smoke: str | None) -> tuple[str, str | None, str | None]:
    """(status, failure line, relation to the original) of a rewrite. Pure.

    status: ok / built (passes), "as the original" (fails exactly as the original does), broken (fails
    where the original passes, or fails differently), not measured. relation: same, fixes, worse,
    different or None."""
    if mine.kind == "none":
        return "not measured", mine.line or None, None
    if mine.kind == "pass":
        return ("ok" if smoke else "built"), None, ("fixes" if original.fails else None)
    if mine.same_as(original):
        return AS_ORIGINAL, mine.describe(), "same"
    if original.fails:
        return "broken", f"fails differently from the original: {mine.describe()}", "different"
    return "broken", mine.describe(), "worse"


def _versions(vs: list[str]) -> str:
    return vs[0] if len(vs) == 1 else ", ".join(vs[:-1]) + " and " + vs[-1]


class StandInEntry(TypedDict):
    """The original tried on another stand-in: the rule, the Python it ran, its outcome, its run."""

    rule: str
    python: str
    outcome: Outcome
    run_id: str | None


def stand_in_verdict(original: Outcome, used: str | None, tried: list[StandInEntry]) -> StandInVerdict:
    """Whether the original's failure depends on the Python substitution. Pure.

    used: the Python minor the original ran on when its base was a substitution (None: no substitution,
    the stand-in is the Python its tag asks for). tried: the other stand-ins, each
    {"python": "3.11", "rule": "older", "outcome": Outcome}. Returns {"verdict", "message" (a clause that
    follows "It "), "passes_with"}:
    verdict is "every" (fails under every stand-in tried), "substitution" (passes on another stand-in),
    "unsubstituted" (no substitution was made) or "untried" (no other stand-in to try)."""
    if used is None:
        return {
            "verdict": "unsubstituted",
            "message": "ran with no Python substitution: the failure is not the lab's choice of Python",
            "passes_with": None,
        }
    tried = [t for t in tried if t["outcome"].kind != "none"]
    if not tried:
        return {
            "verdict": "untried",
            "message": f"fails on Python {used}; no other stand-in could be tried",
            "passes_with": None,
        }
    good = [t for t in tried if t["outcome"].kind == "pass"]
    if good:
        g = good[0]
        failed = [used] + [t["python"] for t in tried if t["outcome"].fails]
        return {
            "verdict": "substitution",
            "message": f"fails on {_versions(failed)}, passes on {g['python']}: "
            f"pass --python-substitute {g['rule']}",
            "passes_with": g["rule"],
        }
    versions = [used] + [t["python"] for t in tried]
    same = all(t["outcome"].same_as(original) for t in tried)
    how = "the same way" if same else "though not always the same way"
    return {
        "verdict": "every",
        "message": f"fails under every stand-in (Python {_versions(versions)}), {how}: "
        "the project fails, not the substitution",
        "passes_with": None,
    }
