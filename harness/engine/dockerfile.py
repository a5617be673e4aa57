"""Just enough Dockerfile reading for the harness: the base images a Dockerfile names.

Stage names and `scratch` are not bases; `ARG` defaults before the first FROM are substituted
(`FROM python:${PY}-slim`). Parsing is line based and follows the Dockerfile rules that matter
here: comments, line continuations, `--platform=` flags and `AS name`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UsageError

_ARG_RE = re.compile(r"^ARG\s+([A-Za-z_][A-Za-z0-9_]*)(?:=(.*))?$", re.IGNORECASE)
_VAR_RE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-+][^}]*)?\}|([A-Za-z_][A-Za-z0-9_]*))")


@dataclass(frozen=True)
class FromLine:
    image: str  # as written after substitution
    stage: str | None
    line: int


def logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, instruction text) with continuations joined and comments dropped."""
    out: list[tuple[int, str]] = []
    buf: list[str] = []
    start = 0
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if buf and line.lstrip().startswith("#"):
            continue
        if not buf:
            start = no
        if line.endswith("\\"):
            buf.append(line[:-1])
            continue
        buf.append(line)
        out.append((start, " ".join(s.strip() for s in buf).strip()))
        buf = []
    if buf:
        out.append((start, " ".join(s.strip() for s in buf).strip()))
    return out


def _subst(value: str, args: dict[str, str]) -> str:
    return _VAR_RE.sub(lambda m: args.get(m.group(1) or m.group(2), ""), value)


def from_lines(text: str, build_args: dict[str, str] | None = None) -> list[FromLine]:
    args: dict[str, str] = {}
    build_args = build_args or {}
    seen_from = False
    froms: list[FromLine] = []
    for no, line in logical_lines(text):
        word = line.split(None, 1)[0].upper()
        if word == "ARG" and not seen_from:
            m = _ARG_RE.match(line)
            if m:
                name, default = m.group(1), (m.group(2) or "").strip().strip('"').strip("'")
                args[name] = build_args.get(name, default)
        elif word == "FROM":
            seen_from = True
            parts = [p for p in line.split()[1:] if not p.startswith("--")]
            if not parts:
                raise UsageError(f"Dockerfile line {no}: FROM without an image")
            stage = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            froms.append(FromLine(image=_subst(parts[0], args), stage=stage, line=no))
    return froms


def base_images(text: str, build_args: dict[str, str] | None = None) -> list[str]:
    """Distinct external images named by FROM (not stages, not scratch), in order of appearance."""
    stages: set[str] = set()
    bases: list[str] = []
    for f in from_lines(text, build_args):
        name = f.image
        if name.lower() != "scratch" and name.lower() not in stages and name not in bases:
            bases.append(name)
        if f.stage:
            stages.add(f.stage.lower())
    return bases


def read_dockerfile(path: Path) -> str:
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"Dockerfile not found: {path}")
    return path.read_text(encoding="utf-8", errors="replace")
