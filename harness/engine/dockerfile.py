"""Just enough Dockerfile reading for the harness: the base images a Dockerfile names.

Parsing is BuildKit's own (the `dockerfile` package wraps its Go parser), so instructions, flags,
line continuations, comments, the `# escape=` directive, heredocs and line numbers are exactly
what the engine reads. On top of that this module does what the engine does with FROM: `ARG`
defaults (or build args) declared before the first FROM are substituted into it
(`FROM python:${PY}-slim`), `--platform=` is a flag and not the image, `AS name` names a stage,
and stage names and `scratch` are not bases.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import dockerfile as bk

from harness.errors import UsageError

# $NAME, ${NAME}, ${NAME:-word}, ${NAME-word}, ${NAME:+word}, ${NAME+word}
_VAR_RE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


class DockerfileError(UsageError):
    """A Dockerfile BuildKit's parser rejects, or a FROM without an image (one line, exit 2)."""


@dataclass(frozen=True)
class FromLine:
    image: str  # as written after substitution
    stage: str | None  # the `AS name`, as written
    line: int  # first line of the instruction (1-based)
    platform: str | None = None  # the `--platform=` value as written (not substituted)


def parse(text: str) -> tuple[bk.Command, ...]:
    """Every instruction as BuildKit's parser reads it; empty for a file with no instructions.

    A file the parser rejects (an unterminated heredoc, ...) raises DockerfileError."""
    text = text.removeprefix("\ufeff")
    try:
        return tuple(bk.parse_string(text))
    except bk.GoParseError as exc:
        if str(exc) == "file with no instructions":
            return ()
        raise DockerfileError(f"Dockerfile does not parse: {_one_line(str(exc))}") from None


def _one_line(text: str) -> str:
    lines = [s.strip() for s in text.strip().splitlines() if s.strip()]
    return lines[0] if lines else "no reason given"


def logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, instruction text) with continuations joined and comments dropped; a
    heredoc instruction's text includes its body, as the parser's `original` does."""
    return [(c.start_line, c.original) for c in parse(text)]


def _subst(value: str, args: dict[str, str | None]) -> str:
    """Substitute $NAME and ${NAME...} like the engine does for FROM (unset names become empty)."""

    def one(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(5)
        current = args.get(name)
        if m.group(1) is None or m.group(3) is None:  # $NAME or ${NAME}
            return current or ""
        is_set = current is not None and (current != "" or m.group(2) != ":")
        word = m.group(4)
        if m.group(3) == "-":
            return current if is_set and current is not None else word
        return word if is_set else ""

    return _VAR_RE.sub(one, value)


def _declare_args(cmd: bk.Command, args: dict[str, str | None], build_args: dict[str, str]) -> None:
    """`ARG NAME[=default] ...`: a build arg wins over the default; no default and no build arg is unset."""
    for item in cmd.value:
        name, eq, default = item.partition("=")
        if not name:
            continue
        if name in build_args:
            args[name] = build_args[name]
        elif eq:
            args[name] = _unquote(default)
        else:
            args[name] = None


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _from_line(cmd: bk.Command, args: dict[str, str | None]) -> FromLine:
    words = [w for w in cmd.value if w]
    if not words:
        raise DockerfileError(f"Dockerfile line {cmd.start_line}: FROM without an image")
    stage = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
    platform = next(
        (f.split("=", 1)[1] for f in cmd.flags if f.lower().startswith("--platform=")),
        None,
    )
    return FromLine(image=_subst(words[0], args), stage=stage, line=cmd.start_line, platform=platform)


def from_lines(text: str, build_args: dict[str, str] | None = None) -> list[FromLine]:
    """Every FROM in order, its image with the ARGs declared before the first FROM substituted."""
    args: dict[str, str | None] = {}
    build_args = build_args or {}
    froms: list[FromLine] = []
    for cmd in parse(text):
        word = cmd.cmd.upper()
        if word == "ARG" and not froms:
            _declare_args(cmd, args, build_args)
        elif word == "FROM":
            froms.append(_from_line(cmd, args))
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


def copy_sources(text: str) -> list[str]:
    """Sources of every COPY/ADD from the build context, in Dockerfile order (pure).

    Not from the context: `--from=` (a stage or an image), heredoc sources (`COPY <<EOF /x`), URLs
    and git addresses. JSON and shell forms alike, as BuildKit splits them."""
    out: list[str] = []
    for cmd in parse(text):
        if cmd.cmd.upper() not in ("COPY", "ADD"):
            continue
        if any(f.lower().startswith("--from") for f in cmd.flags):
            continue
        args = [a for a in cmd.value if a]
        out += [
            s for s in args[:-1] if not s.startswith("<<") and "://" not in s and not s.startswith("git@")
        ]
    return out


def read_dockerfile(path: Path) -> str:
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"Dockerfile not found: {path}")
    return path.read_text(encoding="utf-8", errors="replace")
